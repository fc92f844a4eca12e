"""Tuned hyper-parameters as part of the record: one committed YAML file per task suite
(``configs/tuned/<suite>.yaml``), written by ``unlearn-bench tune`` and read by every run.

A file holds, per task id, the tuning ``context`` (a hash of the task, its dataset, model and
recipe: the settings were found for exactly that) and per method the chosen ``hparams`` with the
study's provenance (trials, failures, best objective, search space and its hash, wall time,
versions). A run takes a method's tuned settings only where the context matches its own, so a
changed dataset, model or recipe runs the hand-set defaults, and says so, rather than settings
found for something else.
"""

from __future__ import annotations

import copy
import fcntl
import functools
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator

import yaml

from benchmark.errors import BenchmarkError
from benchmark.hashing import stable_hash
from benchmark.model import ModelSpec
from benchmark.run.store import write_text
from benchmark.task import Task
from benchmark.training import Recipe

DEFAULT_DIRECTORY = Path("configs/tuned")
TUNED, DEFAULTS = "tuned", "defaults"  # where a run's hyper-parameters come from (``--hparams``)
HEADER = (
    "# Tuned hyper-parameters, written by `unlearn-bench tune` (docs/tuning.md); `unlearn-bench run`\n"
    "# uses them where the context (task, dataset, model, recipe) matches, `--hparams defaults` does not.\n"
)


@dataclass(frozen=True)
class TuneSettings:
    """``unlearn-bench tune``'s budget: ``trials`` per method x task (the same for every method)
    on the tuning ``seeds``, which no reported run may use (>= ``FIRST_TUNING_SEED``)."""

    trials: int = 16
    seeds: tuple[int, ...] = (1000,)

    @classmethod
    def parse(cls, config: dict[str, Any]) -> TuneSettings:
        from benchmark.settings import Range, check_settings

        check_settings(cls, config, "tune", {"trials": Range(1)})
        seeds = tuple(config.get("seeds", cls.seeds))
        if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < FIRST_TUNING_SEED:
            raise BenchmarkError(f"tune.seeds must be distinct seeds >= {FIRST_TUNING_SEED} (never a reported run's), not {list(seeds)!r}")
        return cls(int(config.get("trials", cls.trials)), seeds)


FIRST_TUNING_SEED = 1000


def context(task: Task, model: ModelSpec, recipe: Recipe) -> str:
    """What tuned settings were found for: the task, its dataset's settings, the model and the recipe."""
    return stable_hash({"task": task.id, "dataset": task.source.fingerprint(), "model": model.identity(), "recipe": asdict(recipe)})


def suite_of(task: Task) -> str:
    return task.id.split("/")[0]


def path_for(directory: Path, task: Task) -> Path:
    return Path(directory) / f"{suite_of(task)}.yaml"


def read(path: Path) -> dict[str, Any]:
    """A tuned file's contents ({} when there is none; shared: read it, do not change it); a
    malformed one is one error line."""
    try:
        stat = path.stat()
    except OSError:
        return {}
    return _parsed(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=16)
def _parsed(path: str, mtime_ns: int, size: int) -> dict[str, Any]:
    """The file parsed once per version of it (a run asks for every cell's settings)."""
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except yaml.YAMLError as err:
        raise BenchmarkError(f"tuned settings file {path} is not valid YAML: {str(err).splitlines()[0]}") from None
    except OSError as err:
        raise BenchmarkError(f"cannot read the tuned settings file {path}: {err.strerror or err}") from None
    if not isinstance(data, dict) or not isinstance(data.get("tasks", {}), dict):
        raise BenchmarkError(f"tuned settings file {path} must hold a mapping with a 'tasks' mapping")
    return data


def lookup(directory: Path, task: Task, task_context: str, method: str) -> dict[str, Any] | None:
    """The tuned entry of ``method`` on ``task`` (its ``hparams`` and provenance), if one was
    found for this ``task_context``."""
    found = read(path_for(directory, task)).get("tasks", {}).get(task.id)
    if not isinstance(found, dict) or found.get("context") != task_context:
        return None
    entry = (found.get("methods") or {}).get(method)
    if entry is None:
        return None
    if not isinstance(entry, dict) or not isinstance(entry.get("hparams"), dict):
        raise BenchmarkError(f"{path_for(directory, task)}: tasks.{task.id}.methods.{method} needs an 'hparams' mapping")
    return entry


def write(directory: Path, task: Task, task_context: str, protocol: dict[str, Any], method: str, entry: dict[str, Any]) -> Path:
    """Record ``entry`` for ``method`` on ``task`` (replacing an entry of another context)."""
    path = path_for(directory, task)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path):  # several tune processes may finish studies of one suite at once
        return _write(path, task, task_context, protocol, method, entry)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path.with_name(f".{path.name}.lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write(path: Path, task: Task, task_context: str, protocol: dict[str, Any], method: str, entry: dict[str, Any]) -> Path:
    data = copy.deepcopy(read(path))
    data["protocol"] = protocol
    tasks = data.setdefault("tasks", {})
    found = tasks.get(task.id)
    if not isinstance(found, dict) or found.get("context") != task_context:
        found = tasks[task.id] = {"context": task_context, "methods": {}}
    found.setdefault("methods", {})[method] = entry
    data["tasks"] = dict(sorted(tasks.items()))
    found["methods"] = dict(sorted(found["methods"].items()))
    write_text(path, HEADER + yaml.safe_dump(data, sort_keys=False, width=110))
    return path


def label(entry: dict[str, Any] | None, overridden: list[str]) -> dict[str, Any]:
    """What a cell's record says of its hyper-parameters: tuned (with the study's trial count,
    failures and cost) or the hand-set defaults, and which values the run's own ``hparams`` overrode."""
    if entry is None:
        found: dict[str, Any] = {"from": DEFAULTS}
    else:
        found = {"from": TUNED, **{k: entry[k] for k in ("trials", "failures", "seconds", "best_objective") if k in entry}}
    return {**found, **({"overridden": sorted(overridden)} if overridden else {})}
