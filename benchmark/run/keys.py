"""Cache keys and provenance, as plain functions of what they are given (no store, no caches).

The store keeps each artefact under the hash of what produced it: an original model under
``original_key`` (dataset, model, recipe, runtime, seed), a cell under ``cell_key`` (its task,
method, source, hyper-parameters, original, seed, runtime and metric settings), so that a
change to any of them means a fresh artefact instead of a stale one.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from benchmark.hashing import stable_hash
from benchmark.method import default_hparams
from benchmark.registry import PLUGIN_MODULE
from benchmark.run.record import CELL_SCHEMA_VERSION

if TYPE_CHECKING:
    from benchmark.dataset import GroupDataset
    from benchmark.run.grid import Cell
    from benchmark.run.runtime import Runtime
    from benchmark.run.spec import Spec
    from benchmark.task import Task


def versions() -> dict[str, str]:
    """The software behind a number, and the CPU kernels torch picked (AVX2, AVX512, ...):
    trained models differ in their last digits between them, so seeds agree only within one."""
    found = {"python": platform.python_version(), "cpu": f"{platform.machine()} {torch.backends.cpu.get_cpu_capability()}"}
    for package in ("unlearn-bench", "torch", "lightning", "timm", "torchmetrics"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            pass
    return found


@functools.lru_cache(maxsize=None)
def source_hash(cls: type) -> str:
    """sha256 of the source an edited method changes, so that an edit invalidates its cells:
    the file the class is defined in, and for a plugin imported from its file also the
    Python files beside it (the helper modules it may import)."""
    try:
        file = Path(inspect.getfile(cls))
        if not cls.__module__.startswith(PLUGIN_MODULE):
            return hashlib.sha256(file.read_bytes()).hexdigest()[:16]
        digest = hashlib.sha256()
        for path in sorted(file.parent.glob("*.py")):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
        return digest.hexdigest()[:16]
    except (TypeError, OSError):
        return ""


def runtime_identity(runtime: Runtime) -> dict[str, Any]:
    """What decides the numbers of a model's run: resolved accelerator, precision, devices,
    device kind and, under DDP, the strategy (its processes take shares of each batch:
    BatchNorm statistics over the shares, other augmentation draws); not the strings as typed
    ('32-true' and 'auto' on the CPU are one). One process adds no key, so that the keys
    from before strategies stay valid."""
    kind = torch.cuda.get_device_name() if runtime.uses_cuda else "cpu"
    identity = {"accelerator": runtime.device.type, "precision": runtime.resolved_precision, "devices": runtime.devices, "device": kind}
    return identity | ({"strategy": runtime.resolved_strategy} if runtime.spawns else {})


def resolved_hparams(spec: Spec, cell: Cell) -> dict[str, Any]:
    """Every hyper-parameter the cell's method will run with (defaults included, so that a
    changed default invalidates old results)."""
    return {**default_hparams(cell.method.cls), **spec.method_arguments(cell.method, cell.task)}


def original_key(spec: Spec, task: Task, dataset: GroupDataset, seed: int) -> str:
    """The key of the original model of ``task`` (read as ``dataset``) and ``seed``."""
    return stable_hash(
        {
            "dataset": dataset.fingerprint,
            "model": spec.model_for(task).identity(),
            "recipe": spec.recipe_for(task),
            "classes": dataset.num_classes,
            "seed": seed,
            "runtime": runtime_identity(spec.runtime),
        }
    )


def cell_key(spec: Spec, cell: Cell, dataset: GroupDataset, original: str) -> str:
    """The key of ``cell`` (its task read as ``dataset``, its original model keyed ``original``)."""
    tuning = spec.tuning_of(cell.method, cell.task)
    return stable_hash(
        {
            **({"tuning": tuning} if tuning["from"] != "defaults" else {}),  # keys of hand-set cells as before
            "schema": CELL_SCHEMA_VERSION,
            "task": cell.task.describe(dataset),
            "method": cell.method.name,
            "source": cell.method.source,
            "source_hash": source_hash(cell.method.cls),
            "hparams": resolved_hparams(spec, cell),
            "original": original,
            "seed": cell.seed,
            "runtime": runtime_identity(spec.runtime),
            "metrics": spec.metrics_for(cell.task),
        }
    )
