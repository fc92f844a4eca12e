"""What cells share, built once and read from the store after: each dataset (per source), each
original model (per dataset, model, recipe, runtime, seed: ``keys.original_key``) and the
original's TEST features; and the guard that keeps a cell from changing any of it
(``isolation.py``).
"""

from __future__ import annotations

import dataclasses
import functools
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import lightning as L
import numpy as np
import torch

from benchmark.dataset import GroupDataset
from benchmark.errors import BenchmarkError
from benchmark.metrics import scorecard
from benchmark.model import Classifier, build_model
from benchmark.run import keys
from benchmark.run.failure import check_model
from benchmark.run.fitting import Report, fit
from benchmark.run.isolation import Baseline, Shared, SharedStateChanged, digest, restore_state
from benchmark.run.spec import Spec
from benchmark.run.store import Store
from benchmark.source import DatasetWriter, read_dataset
from benchmark.task import Task, TaskData
from benchmark.training import ERM


class Artefacts:
    """One process's shared artefacts: loaded once, kept for every cell it runs, guarded."""

    def __init__(self, spec: Spec, store: Store, report: Report, view: Callable[[GroupDataset], GroupDataset] | None = None) -> None:
        """``view``: what is made of each dataset read (tuning: VAL in TEST's place)."""
        self.spec, self.store, self.report, self.view = spec, store, report, view
        self._datasets: dict[str, GroupDataset] = {}  # on the host, shared read-only by every cell
        self._originals: dict[str, Classifier] = {}
        self._digests: dict[str, str] = {}  # of every shared tensor, taken when it was loaded (isolation.py)
        #: why this process should be replaced before its next cell ('' : it need not); set by a
        #: cell that changed shared state (the caches are dropped already)
        self.tainted = ""
        self.check_seconds = 0.0  # what the last ``guarded`` block spent on its checks

    # -- the guard --------------------------------------------------------------------
    @contextmanager
    def guarded(self, what: str) -> Iterator[None]:
        """Within the block, nothing shared may change (``isolation.py``); a change is undone
        (caches dropped, torch's state set back) and raised as SharedStateChanged naming it."""
        started = time.perf_counter()
        baseline = Baseline.take(self.shared(), self._digests)
        self.check_seconds = time.perf_counter() - started
        try:
            yield
        finally:  # checked after a failure too: the failed cell's changes must not outlive it
            started = time.perf_counter()
            changes = baseline.changes(self.shared())
            self.check_seconds += time.perf_counter() - started
            if changes:
                self._reset(baseline)
                raise SharedStateChanged(f"{what} changed what cells share: {'; '.join(changes)} (a method may change only its own model)")

    def shared(self) -> Shared:
        """Every tensor kept for later cells, by name: each dataset's labels, attributes and
        group ids and each original model's weights (by content), each dataset's inputs
        (memory-mapped read-only: by identity)."""
        content, mapped = {}, {}
        for dataset in self._datasets.values():
            for split in ("train", "val", "test"):
                part, name = dataset.split(split), f"{dataset.name} {split}"
                content |= {f"{name}.y": part.y, f"{name}.a": part.a, f"{name} group ids": dataset.groups(split)}
                mapped[f"{name}.x"] = part.x
        for key, model in self._originals.items():
            content |= {f"the original model {key[:8]} {name}": t for name, t in model.state_dict().items()}
        return Shared(content, mapped)

    def _remember(self) -> None:
        """Digest the shared tensors not digested yet (those just loaded)."""
        self._digests |= {name: digest(t) for name, t in self.shared().content.items() if name not in self._digests}

    def _reset(self, baseline: Baseline) -> None:
        """Undo a cell that changed shared state: torch's flags set back, every cached dataset and
        model dropped (read again from the store when next needed), the process marked for
        replacement (a worker of the pool exits after reporting the cell)."""
        restore_state(baseline.state)
        self._datasets.clear()
        self._originals.clear()
        self._digests.clear()
        self.tainted = "a cell changed what cells share"

    # -- datasets ---------------------------------------------------------------------
    def dataset(self, task: Task) -> GroupDataset:
        source = task.source
        key = source.fingerprint()
        if key not in self._datasets:
            directory = self.store.dataset(source.name, key)
            read = functools.partial(_read_dataset, name=source.name, fingerprint=key)
            dataset = self.store.read_dir(directory, read)
            if dataset is None:
                self.report(f"preparing {source.name}", 0, 1)
                self.store.write_dir(directory, lambda tmp: source.write(DatasetWriter(tmp), self.report))
                dataset = self.store.read_dir(directory, read)
                if dataset is None:
                    raise BenchmarkError(f"the {source.name} cache at {directory} failed its check right after it was built")
            self._datasets[key] = self.view(dataset) if self.view is not None else dataset
            self._remember()
        return self._datasets[key]

    def placed(self, task: Task) -> GroupDataset:
        """The task's dataset with loaders feeding the runtime's device: a split is copied to a GPU
        when first read there, if it fits. A fresh placement per call: device copies a method
        could write to die with its cell."""
        return self.dataset(task).placed(self.spec.runtime.device)

    def task_data(self, task: Task, seed: int) -> TaskData:
        """The task's data for one use (a method, or scoring): the split drawn afresh from the
        shared dataset, a fresh device placement, its own copy of the task; nothing of it is
        read by any other use."""
        dataset = self.placed(task)
        forget_idx, retain_idx = task.split(dataset, seed)
        model_spec = self.spec.model_for(task)
        return TaskData(
            dataset=dataset,
            task=dataclasses.replace(task),
            forget_idx=forget_idx,
            retain_idx=retain_idx,
            seed=seed,
            recipe=self.spec.recipe_for(task),
            initial_model=functools.partial(build_model, model_spec, dataset.num_classes, seed),  # pickles (DDP)
        )

    # -- original models --------------------------------------------------------------
    def original_key(self, task: Task, seed: int) -> str:
        return keys.original_key(self.spec, task, self.dataset(task), seed)

    def original(self, task: Task, seed: int) -> Classifier:
        """ERM on all of TRAIN with the dataset's recipe; trained once, then loaded from the store."""
        key = self.original_key(task, seed)
        if key in self._originals:
            return self._originals[key]
        dataset = self.placed(task)
        model = build_model(self.spec.model_for(task), dataset.num_classes, seed)
        path = self.store.original(key)
        if self.store.read(path, functools.partial(_load_state, model)) is None:
            L.seed_everything(seed, verbose=False)
            module = ERM(model, dataset, torch.arange(len(dataset.train)), self.spec.recipe_for(task), seed)
            fit(self.spec, module, self.report, f"original · {dataset.name} · seed {seed}")
            model = module.model.cpu()
            check_model(model)
            self.store.write(path, functools.partial(save_state, model.state_dict()))
        self._originals[key] = model.cpu().eval()
        self._remember()
        return self._originals[key]

    def original_features(self, task: Task, seed: int) -> Path:
        """The original model's TEST features (the MI rows), stored beside it once: the host
        half reads them for mi_feature_group_original."""
        path = self.store.original_features(self.original_key(task, seed))
        if self.store.read(path, read_npz) is None:
            dataset, settings = self.placed(task), self.spec.metrics_for(task)
            features = scorecard.test_features(self.original(task, seed), dataset, settings, self.spec.runtime.forward)
            groups = dataset.groups("test").numpy()[scorecard.mi_rows(dataset, settings)]
            self.store.write(path, functools.partial(_save_features, features=features, groups=groups))
        return path


def save_state(state: dict[str, torch.Tensor], tmp: Path) -> None:
    torch.save(state, tmp)


def read_npz(path: Path) -> bool:
    """Whether every array of an .npz file decompresses (raises when not)."""
    with np.load(path) as z:
        for name in z.files:
            z[name]
    return True


def _read_dataset(directory: Path, name: str, fingerprint: str) -> GroupDataset:
    dataset = read_dataset(directory, name, fingerprint)
    for split in (dataset.train, dataset.val, dataset.test):
        if not (len(split.x) == len(split.y) == len(split.a)):
            raise ValueError("a split's inputs and labels differ in length")
    return dataset


def _load_state(model: torch.nn.Module, path: Path) -> torch.nn.Module:
    model.load_state_dict(torch.load(path, weights_only=True, map_location="cpu"))
    return model


def _save_features(tmp: Path, features: np.ndarray, groups: np.ndarray) -> None:
    np.savez_compressed(tmp, features=features, groups=groups)
