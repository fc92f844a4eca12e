"""Running a benchmark: plan the cells, train (or load) what they depend on, run each
method, evaluate it and write its result file.

Dependencies, each cached under ``<out>/cache`` by the hash of what produced it:
dataset (per source) -> original model (per dataset, model, recipe, seed) -> cells
(per method, task, seed; gold methods first so that every cell can be compared at once).
"""

from __future__ import annotations

import copy
import functools
import platform
import resource
import time
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Callable

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

from benchmark.metrics import scorecard
from benchmark.atomic import atomic_path
from benchmark.data.dataset import GroupDataset
from benchmark.errors import BenchmarkError
from benchmark.hashing import stable_hash
from benchmark.method import UnlearningMethod, default_hparams, resolve_hparams, reweights
from benchmark.metrics.groups import speedup
from benchmark.model import Classifier, build_model, frozen_copy
from benchmark.metrics.mutual_info import MIEstimate, feature_group_mi
from benchmark.registry import MethodRef
from benchmark.run.store import CELL_SCHEMA_VERSION, cell_path, predictions_path, read_cell, write_cell
from benchmark.run.spec import Spec
from benchmark.task import Task, TaskData
from benchmark.training import ERM

Report = Callable[[str, int, int], None]  # (what, done, total) for progress displays


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in ("unlearn-bench", "torch", "lightning", "timm", "torchmetrics"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            pass
    return found


@dataclass(frozen=True)
class Cell:
    method: MethodRef
    task: Task
    seed: int

    @property
    def label(self) -> str:
        return f"{self.method.name} · {self.task.id} · seed {self.seed}"


@dataclass
class Outcome:
    cell: Cell
    status: str  # "done", "cached" or "failed"
    record: dict[str, Any] | None = None
    error: str = ""


class _EpochReport(Callback):
    """Forwards epoch progress of a Trainer to the runner's progress display."""

    def __init__(self, report: Report, what: str) -> None:
        self.report, self.what = report, what

    def on_train_epoch_end(self, trainer: L.Trainer, module: Any) -> None:
        self.report(self.what, trainer.current_epoch + 1, int(trainer.max_epochs or 0))


def _fit(spec: Spec, module: Any, report: Report, what: str) -> None:
    arguments = dict(module.trainer_arguments())
    callbacks = list(arguments.pop("callbacks", [])) + [_EpochReport(report, what)]
    spec.runtime.trainer(callbacks=callbacks, **arguments).fit(module)


class Runner:
    def __init__(self, spec: Spec, report: Report | None = None) -> None:
        self.spec = spec
        self.report: Report = report or (lambda what, done, total: None)
        self.cache = spec.out / "cache"
        self._datasets: dict[str, GroupDataset] = {}
        self._originals: dict[str, Classifier] = {}

    # -- plan -----------------------------------------------------------------------
    def plan(self) -> list[Cell]:
        """Every method x task x seed, gold methods first within each (task, seed)."""
        return [Cell(m, t, s) for t in self.spec.tasks for s in self.spec.seeds for m in self.spec.methods]

    def validate(self) -> None:
        """Fail before any training on what would fail later: bad task settings (a forget set
        the data cannot supply) and unknown hyper-parameters."""
        for task in self.spec.tasks:
            dataset = self.dataset(task)
            task.split(dataset, self.spec.seeds[0])
            self.spec.recipe_for(task), self.spec.model_for(task)
            for ref in self.spec.methods:
                resolve_hparams(ref.cls, task, self.spec.hparams_for(ref), ref.name)

    # -- dependencies ---------------------------------------------------------------
    def dataset(self, task: Task) -> GroupDataset:
        key = task.source.fingerprint()
        if key not in self._datasets:
            self.report(f"preparing {task.source.name}", 0, 1)
            self._datasets[key] = task.source.load(self.cache / "datasets", self.report)
        return self._datasets[key]

    def original_mi(self, task: Task, seed: int) -> MIEstimate:
        """mi_feature_group of the original model, from its TEST features (cached beside it)."""
        path = self.cache / "models" / f"original-{self.original_key(task, seed)}.features.npz"
        if not path.exists():
            dataset, settings = self.dataset(task), self.spec.metrics_for(task)
            features = scorecard.test_features(self.original(task, seed), dataset, settings, self.spec.runtime)
            groups = dataset.groups("test").numpy()[scorecard.mi_rows(dataset, settings)]
            save_features(path, features, groups)
        return original_mi_from(path, self.dataset(task).num_groups)

    def original_key(self, task: Task, seed: int) -> str:
        dataset = self.dataset(task)
        return stable_hash(
            {
                "dataset": dataset.fingerprint,
                "model": self.spec.model_for(task),
                "recipe": self.spec.recipe_for(task),
                "classes": dataset.num_classes,
                "seed": seed,
            }
        )

    def original(self, task: Task, seed: int) -> Classifier:
        """ERM on all of TRAIN with the dataset's recipe; trained once, then loaded from cache."""
        key = self.original_key(task, seed)
        if key in self._originals:
            return self._originals[key]
        dataset = self.dataset(task)
        model = build_model(self.spec.model_for(task), dataset.num_classes, seed)
        path = self.cache / "models" / f"original-{key}.pt"
        if path.exists():
            model.load_state_dict(torch.load(path, weights_only=True))
        else:
            L.seed_everything(seed, verbose=False)
            module = ERM(model, dataset, torch.arange(len(dataset.train)), self.spec.recipe_for(task), seed)
            _fit(self.spec, module, self.report, f"original · {dataset.name} · seed {seed}")
            model = module.model.cpu()
            _save(path, model.state_dict())
        self._originals[key] = model.cpu().eval()
        return self._originals[key]

    # -- cells ----------------------------------------------------------------------
    def cell_hash(self, cell: Cell) -> str:
        dataset = self.dataset(cell.task)
        return stable_hash(
            {
                "schema": CELL_SCHEMA_VERSION,
                "task": cell.task.describe(dataset),
                "method": cell.method.name,
                "source": cell.method.source,
                "hparams": self.resolved_hparams(cell),
                "original": self.original_key(cell.task, cell.seed),
                "seed": cell.seed,
                "runtime": self.spec.runtime,
                "metrics": self.spec.metrics_for(cell.task),
            }
        )

    def resolved_hparams(self, cell: Cell) -> dict[str, Any]:
        """Every hyper-parameter the cell's method will run with (defaults included, so that a
        changed default invalidates old results)."""
        ref = cell.method
        chosen = resolve_hparams(ref.cls, cell.task, self.spec.hparams_for(ref), ref.name)
        return {**default_hparams(ref.cls), **chosen, **({"reweight": True} if ref.reweight else {})}

    def path(self, cell: Cell) -> Path:
        return cell_path(self.spec.out, cell.task.id, cell.method.name, cell.seed)

    def reweights(self, cell: Cell) -> bool:
        """Whether the cell's method runs with REWEIGHT (``+rw``, or its own defaults)."""
        ref = cell.method
        return ref.reweight or reweights(ref.cls, cell.task, self.spec.hparams_for(ref))

    def gold_name(self, cell: Cell) -> str:
        """The gold this cell is scored against: itself if gold, else the gold with its REWEIGHT setting."""
        if cell.method.cls.is_gold:
            return cell.method.name
        golds = [m for m in self.spec.methods if m.cls.is_gold and m.reweight == self.reweights(cell)]
        return golds[0].name if golds else ""

    def task_data(self, task: Task, seed: int) -> TaskData:
        dataset = self.dataset(task)
        forget_idx, retain_idx = task.split(dataset, seed)
        model_spec = self.spec.model_for(task)
        return TaskData(
            dataset=dataset,
            task=task,
            forget_idx=forget_idx,
            retain_idx=retain_idx,
            seed=seed,
            recipe=self.spec.recipe_for(task),
            initial_model=lambda: build_model(model_spec, dataset.num_classes, seed),
        )

    def build_method(self, cell: Cell) -> UnlearningMethod:
        """The cell's method around a copy of the original, with a frozen copy beside it."""
        data = self.task_data(cell.task, cell.seed)
        original = self.original(cell.task, cell.seed)
        ref = cell.method
        overrides = resolve_hparams(ref.cls, cell.task, self.spec.hparams_for(ref), ref.name)
        if ref.reweight:
            overrides["reweight"] = True
        return ref.cls(copy.deepcopy(original), frozen_copy(original), data, **overrides)

    def unlearn(self, cell: Cell) -> tuple[UnlearningMethod, float]:
        """Build and run the cell's method; returns it and its wall time in seconds (the
        method's ``unlearn`` hook and its Trainer fit, set-up included; the original model
        is trained or loaded before, outside the timing and the seeded section)."""
        self.original(cell.task, cell.seed)
        L.seed_everything(cell.seed, verbose=False)
        started = time.perf_counter()
        try:
            method = self.build_method(cell).to(self.spec.runtime.device)
            method.unlearn()
            if method.trains():
                _fit(self.spec, method, self.report, cell.label)
        except BenchmarkError:
            raise
        except Exception as err:  # a method's own failure: reported for this cell, the run goes on
            raise BenchmarkError(f"{type(err).__name__}: {err}") from err
        return method, time.perf_counter() - started

    def run_cell(self, cell: Cell) -> dict[str, Any]:
        task, seed, ref = cell.task, cell.seed, cell.method
        if self.spec.runtime.uses_cuda:
            torch.cuda.reset_peak_memory_stats()
        method, seconds = self.unlearn(cell)
        data, dataset = method.data, method.data.dataset
        settings = self.spec.metrics_for(task)
        started = time.perf_counter()
        model = method.model.to(self.spec.runtime.device)
        predictions, metrics, details = scorecard.measure(model, data, settings, self.spec.runtime)
        metrics.update(original_mi_metrics(self.original_mi(task, seed)))
        evaluated = time.perf_counter()
        metrics["unlearn_seconds"] = seconds
        gold_name = self.gold_name(cell)
        gold = read_cell(cell_path(self.spec.out, task.id, gold_name, seed)) if gold_name else None
        if ref.cls.is_gold:
            metrics["speedup_vs_gold"] = 1.0
        elif gold is not None:
            metrics["speedup_vs_gold"] = speedup(seconds, gold["metrics"]["unlearn_seconds"])
        path = self.path(cell)
        predictions.save(predictions_path(path))
        if ref.cls.is_gold:
            _save(self.cache / "models" / f"gold-{self.cell_hash(cell)}.pt", model.cpu().state_dict())
        return {
            "schema_version": CELL_SCHEMA_VERSION,
            "cell_hash": self.cell_hash(cell),
            "method": ref.name,
            "method_source": ref.source,
            "is_gold": ref.cls.is_gold,
            "reweight": self.reweights(cell),
            "gold_method": gold_name,
            "task": task.describe(dataset),
            "seed": seed,
            "hparams": dict(method.hparams),
            "metrics": metrics,
            "details": details,
            "metric_settings": scorecard.record(settings, dataset, len(predictions.norm_std)),
            "timings": {"unlearn_seconds": seconds, "evaluate_seconds": evaluated - started},
            **_peak_memory(self.spec.runtime.uses_cuda),
            "model": asdict(self.spec.model_for(task)),
            "recipe": asdict(data.recipe),
            "original_key": self.original_key(task, seed),
            "runtime": {**asdict(self.spec.runtime), "precision": self.spec.runtime.resolved_precision},
            "versions": versions(),
            "predictions": predictions_path(path).name,
        }

    # -- the run --------------------------------------------------------------------
    def execute(self, cell: Cell) -> Outcome:
        try:
            existing = read_cell(self.path(cell))
            if existing is not None and existing.get("cell_hash") == self.cell_hash(cell):
                return Outcome(cell, "cached", existing)
            record = self.run_cell(cell)
            write_cell(self.path(cell), record)
            return Outcome(cell, "done", record)
        except BenchmarkError as err:
            return Outcome(cell, "failed", error=str(err))


def save_features(path: Path, features: np.ndarray, groups: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        np.savez_compressed(tmp, features=features, groups=groups)


@functools.lru_cache(maxsize=None)
def original_mi_from(path: Path, num_groups: int) -> MIEstimate:
    """The MI estimate of an original's saved TEST features; computed once per process, as every
    cell of the original's dataset and seed reports it (the file of a key never changes)."""
    with np.load(path) as z:
        return feature_group_mi(z["features"], z["groups"], num_groups)


def original_mi_metrics(estimate: MIEstimate) -> dict[str, float]:
    """The original model's MI estimate under the names a result file gives it."""
    return {"mi_feature_group_original": estimate.value, "mi_feature_group_original_se": estimate.se}


def _save(path: Path, state: dict[str, torch.Tensor]) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def _peak_memory(cuda: bool) -> dict[str, Any]:
    if cuda:
        return {"peak_memory_mb": torch.cuda.max_memory_allocated() / 2**20, "peak_memory_source": "cuda_max_allocated"}
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"peak_memory_mb": rss_kb / 1024, "peak_memory_source": "process_max_rss"}
