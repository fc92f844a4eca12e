"""Running one cell: build (or load) what it depends on, run its method, check the result,
score it and store its record.

Scoring has two halves. The device half (``measure_cell``) needs the model: the per-sample
predictions, features and channel spreads, and the attacks; it stores the predictions and a
record of status "measured". The host half (``score_cell``) needs only those stored arrays:
MIU's forest MIA, the balanced MIA, the MI probes (``benchmark/run/rescore.py``, the path
``rescore`` takes too); it completes the record ("done"). The local pool runs the host half in
its own scorer process while the device workers train the next cells.

Dependencies, each in the store (benchmark/run/store.py) under the hash of what produced it:
dataset (per source) -> original model (per dataset, model, recipe, runtime, seed) -> cells
(per method, task, seed). A cell that fails anywhere (building, training, a non-finite loss
or weights, checking, scoring, saving) becomes a failed record with its reason; the run goes on.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import hashlib
import inspect
import platform
import resource
import time
import traceback
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Callable, Iterator

import lightning as L
import numpy as np
import torch

from benchmark.dataset import GroupDataset
from benchmark.source import DatasetWriter, read_dataset
from benchmark.errors import BenchmarkError
from benchmark.hashing import stable_hash
from benchmark.method import UnlearningMethod, default_hparams, reweights
from benchmark.metrics import scorecard
from benchmark.metrics.predictions import Predictions
from benchmark.run.rescore import score_record
from benchmark.model import Classifier, build_model
from benchmark.registry import PLUGIN_MODULE, MethodRef
from benchmark.run.failure import CellFailure, check_model, reason
from benchmark.run.fitting import Report, fit
from benchmark.run.isolation import Baseline, Shared, SharedStateChanged, digest, restore_state
from benchmark.run.record import CELL_SCHEMA_VERSION, DONE, FAILED, MEASURED, CellRecord, read_record, write_record
from benchmark.run.spec import Spec
from benchmark.run.store import HEADROOM, Store, check_free_space
from benchmark.run.validate import build_method, check_spec
from benchmark.task import Task, TaskData
from benchmark.training import ERM

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
    status: str  # "done", "cached", "failed", or "measured" (the device half only: the host half is still to run)
    record: CellRecord | None = None
    error: str = ""


class _Stage:
    """Where a cell is, so that a failure names it."""

    name = "building"


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


class Runner:
    def __init__(
        self, spec: Spec, report: Report | None = None, debug: bool = False, view: Callable[[GroupDataset], GroupDataset] | None = None
    ) -> None:
        """``view``: what the runner makes of each dataset it reads (tuning: VAL in TEST's place)."""
        self.spec = spec
        self.report: Report = report or (lambda what, done, total: None)
        self.debug = debug
        self.view = view
        self.store = Store(spec.out)
        self._datasets: dict[str, GroupDataset] = {}  # on the host, shared read-only by every cell
        self._originals: dict[str, Classifier] = {}
        self._digests: dict[str, str] = {}  # of every shared tensor, taken when it was loaded (isolation.py)
        #: why this process should be replaced before its next cell ('' : it need not); set by a
        #: cell that changed shared state (the runner has dropped its caches already)
        self.tainted = ""
        self.check_seconds = 0.0  # what the last ``guarded`` block spent on its checks

    # -- plan -----------------------------------------------------------------------
    def plan(self) -> list[Cell]:
        """Every method x task x seed, gold methods first within each (task, seed); with a
        shard, only its slice of them."""
        cells = [Cell(m, t, s) for t in self.spec.tasks for s in self.spec.seeds for m in self.spec.methods]
        return self.spec.shard.take(cells) if self.spec.shard else cells

    def validate(self) -> None:
        """Fail before any training on what would fail later: a tuned settings file that cannot
        be read, bad task settings (a forget set the data cannot supply), hyper-parameters, and
        every method built once on every task (a method whose building changes what cells
        share is refused too)."""
        self.spec.check_tuned()
        check_spec(self.spec, lambda task: self.task_data(task, self.spec.seeds[0]), self.guarded)
        check_free_space(self.spec.out, self.disk_need())

    def disk_need(self) -> int:
        """Bytes this run may write, estimated from its plan: an original and a gold model per
        task and seed, a model's worth per cell (its predictions and features are smaller), and
        ``HEADROOM`` for what the estimate leaves out (the atomic writes' temporary files)."""
        sizes: dict[tuple[str, int], int] = {}
        for task in self.spec.tasks:
            data = self.task_data(task, self.spec.seeds[0])
            key = (repr(self.spec.model_for(task)), data.num_classes)
            if key not in sizes:
                model = build_model(self.spec.model_for(task), data.num_classes, data.seed)
                sizes[key] = sum(t.numel() * t.element_size() for t in model.state_dict().values())
        largest = max(sizes.values(), default=0)
        return (2 * len(self.spec.tasks) * len(self.spec.seeds) + len(self.plan())) * largest + HEADROOM

    @contextmanager
    def guarded(self, what: str) -> Iterator[None]:
        """Within the block, nothing the runner shares may change (``isolation.py``); a change is
        undone (caches dropped, torch's state set back) and raised as SharedStateChanged naming it."""
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
        """Every tensor the runner keeps for later cells, by name: each dataset's labels,
        attributes and group ids and each original model's weights (by content), each dataset's
        inputs (memory-mapped read-only: by identity)."""
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

    # -- dependencies ---------------------------------------------------------------
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

    def runtime_identity(self) -> dict[str, Any]:
        """What decides the numbers of a model's run: resolved accelerator, precision, devices,
        device kind and, under DDP, the strategy (its processes take shares of each batch:
        BatchNorm statistics over the shares, other augmentation draws); not the strings as typed
        ('32-true' and 'auto' on the CPU are one). One process adds no key, so that the keys
        from before strategies stay valid."""
        runtime = self.spec.runtime
        kind = torch.cuda.get_device_name() if runtime.uses_cuda else "cpu"
        identity = {"accelerator": runtime.device.type, "precision": runtime.resolved_precision, "devices": runtime.devices, "device": kind}
        return identity | ({"strategy": runtime.resolved_strategy} if runtime.spawns else {})

    def original_key(self, task: Task, seed: int) -> str:
        dataset = self.dataset(task)
        return stable_hash(
            {
                "dataset": dataset.fingerprint,
                "model": self.spec.model_for(task).identity(),
                "recipe": self.spec.recipe_for(task),
                "classes": dataset.num_classes,
                "seed": seed,
                "runtime": self.runtime_identity(),
            }
        )

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
            self.store.write(path, functools.partial(_save_state, model.state_dict()))
        self._originals[key] = model.cpu().eval()
        self._remember()
        return self._originals[key]

    def original_features(self, task: Task, seed: int) -> Path:
        """The original model's TEST features (the MI rows), stored beside it once: the host
        half reads them for mi_feature_group_original."""
        path = self.store.original_features(self.original_key(task, seed))
        if self.store.read(path, _read_npz) is None:
            dataset, settings = self.placed(task), self.spec.metrics_for(task)
            features = scorecard.test_features(self.original(task, seed), dataset, settings, self.spec.runtime.forward)
            groups = dataset.groups("test").numpy()[scorecard.mi_rows(dataset, settings)]
            self.store.write(path, functools.partial(_save_features, features=features, groups=groups))
        return path

    # -- cells ----------------------------------------------------------------------
    def cell_key(self, cell: Cell) -> str:
        dataset = self.dataset(cell.task)
        tuning = self.spec.tuning_of(cell.method, cell.task)
        return stable_hash(
            {
                **({"tuning": tuning} if tuning["from"] != "defaults" else {}),  # keys of hand-set cells as before
                "schema": CELL_SCHEMA_VERSION,
                "task": cell.task.describe(dataset),
                "method": cell.method.name,
                "source": cell.method.source,
                "source_hash": source_hash(cell.method.cls),
                "hparams": self.resolved_hparams(cell),
                "original": self.original_key(cell.task, cell.seed),
                "seed": cell.seed,
                "runtime": self.runtime_identity(),
                "metrics": self.spec.metrics_for(cell.task),
            }
        )

    def resolved_hparams(self, cell: Cell) -> dict[str, Any]:
        """Every hyper-parameter the cell's method will run with (defaults included, so that a
        changed default invalidates old results)."""
        return {**default_hparams(cell.method.cls), **self.spec.method_arguments(cell.method, cell.task)}

    def path(self, cell: Cell) -> Path:
        return self.store.cell(cell.task.id, cell.method.name, cell.seed)

    def reweights(self, cell: Cell) -> bool:
        """Whether the cell's method runs with REWEIGHT (``+rw``, or its own defaults)."""
        ref = cell.method
        return ref.reweight or reweights(ref.cls, cell.task, self.spec.hparams_for(ref))

    def gold(self, cell: Cell) -> Cell | None:
        """The gold cell this cell is scored against: itself if gold, else the gold with its REWEIGHT setting."""
        if cell.method.cls.is_gold:
            return cell
        golds = [m for m in self.spec.methods if m.cls.is_gold and m.reweight == self.reweights(cell)]
        return Cell(golds[0], cell.task, cell.seed) if golds else None

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

    def build_method(self, cell: Cell, arguments: dict[str, Any] | None = None) -> UnlearningMethod:
        """The cell's method around a copy of the original, with a frozen copy beside it, built
        with ``arguments`` (default: the spec's for the cell)."""
        original = self.original(cell.task, cell.seed)
        data = self.task_data(cell.task, cell.seed)
        return build_method(cell.method, original, data, arguments or self.spec.method_arguments(cell.method, cell.task))

    def unlearn(self, cell: Cell, stage: _Stage | None = None, arguments: dict[str, Any] | None = None) -> tuple[UnlearningMethod, float]:
        """Build (with ``arguments``, default the spec's) and run the cell's method; returns it
        and its wall time in seconds (the method's ``unlearn`` hook and its Trainer fit, set-up
        included; the original model is trained or loaded before, outside the timing and the
        seeded section)."""
        stage = stage or _Stage()
        stage.name = "building the original"
        self.original(cell.task, cell.seed)
        with self.guarded("the method"):
            L.seed_everything(cell.seed, verbose=False)
            started = time.perf_counter()
            stage.name = "building the method"
            method = self.build_method(cell, arguments).to(self.spec.runtime.device)
            stage.name = "unlearning"
            method.unlearn()
            if method.trains():
                stage.name = "training"
                fit(self.spec, method, self.report, cell.label)
            seconds = time.perf_counter() - started
            stage.name = "checking what it changed"
        stage.name = "checking the unlearned model"
        check_model(method.model)
        return method, seconds

    def scoring_inputs(self, cell: Cell, method: UnlearningMethod) -> tuple[Classifier, TaskData]:
        """What the cell is scored on: a copy of the runner's own original (checked unchanged)
        holding the method's weights and nothing else of it (no hooks, no patched attributes), on
        the runtime's device, and the runner's own task data (never the method's). Copied, not
        built again: building may read pretrained weights from disk, once per cell."""
        model = copy.deepcopy(self.original(cell.task, cell.seed))
        model.load_state_dict(method.model.state_dict())
        return model.to(self.spec.runtime.device).eval(), self.task_data(cell.task, cell.seed)

    def measure_cell(self, cell: Cell, stage: _Stage | None = None) -> CellRecord:
        """Run and check the cell, then the device half of its scoring: store its predictions
        and a record of status "measured" (attack metrics, cost, settings); the record."""
        stage = stage or _Stage()
        task, seed, ref = cell.task, cell.seed, cell.method
        if self.spec.runtime.uses_cuda:
            torch.cuda.reset_peak_memory_stats()
        method, seconds = self.unlearn(cell, stage)
        settings = self.spec.metrics_for(task)
        stage.name = "scoring"
        started = time.perf_counter()
        model, data = self.scoring_inputs(cell, method)
        hparams = dict(method.hparams)
        del method  # its device memory is free before the attacks
        predictions, metrics, details = scorecard.measure(model, data, settings, self.spec.runtime.forward)
        self.original_features(task, seed)
        measured = time.perf_counter() - started
        record = self._record(cell, MEASURED)
        record.hparams = hparams
        record.metrics, record.details = {**metrics, "unlearn_seconds": seconds}, details
        record.metric_settings = scorecard.record(settings, data.dataset, len(predictions.norm_std))
        record.timings = {"unlearn_seconds": seconds, "measure_seconds": measured, "isolation_seconds": self.check_seconds}
        record.peak_memory_mb, record.peak_memory_source = _peak_memory(self.spec.runtime.uses_cuda)
        stage.name = "saving"
        path = self.path(cell)
        self.store.write(self.store.predictions(path), predictions.save)
        record.predictions = self.store.predictions(path).name
        if ref.cls.is_gold:
            self.store.write(self.store.gold_model(record.key), functools.partial(_save_state, model.cpu().state_dict()))
        write_record(self.store, path, record)
        return record

    def score_cell(self, cell: Cell) -> CellRecord:
        """The host half: every metric the stored predictions and the original's stored
        features determine (``score_record``, as ``rescore`` computes them), added to the
        measured record, which becomes "done"; the record."""
        path = self.path(cell)  # read as stored: the scorer builds no dataset (its key was checked when measured)
        record = read_record(self.store, path)
        if record is None or record.status != MEASURED:
            raise CellFailure("its measured record is missing or corrupt")
        predictions = self.store.read(self.store.predictions(path), Predictions.load)
        if predictions is None:
            raise CellFailure("its predictions file is missing or corrupt")
        started = time.perf_counter()
        score_record(record, predictions, self.store)
        scored = time.perf_counter() - started
        record.status = DONE
        record.timings = {**record.timings, "score_seconds": scored, "evaluate_seconds": record.timings["measure_seconds"] + scored}
        write_record(self.store, self.path(cell), record)
        return record

    def _record(self, cell: Cell, status: str) -> CellRecord:
        """A record with what the cell is, before it ran (the settings, not the results)."""
        gold = self.gold(cell)
        return CellRecord(
            key=self.cell_key(cell),
            status=status,
            method=cell.method.name,
            task=cell.task.describe(self.dataset(cell.task)),
            seed=cell.seed,
            is_gold=cell.method.cls.is_gold,
            reweight=self.reweights(cell),
            gold_method=gold.method.name if gold is not None else "",
            gold_key=self.cell_key(gold) if gold is not None else "",
            method_source=cell.method.source,
            method_source_hash=source_hash(cell.method.cls),
            hparams=self.resolved_hparams(cell),
            tuning=self.spec.tuning_of(cell.method, cell.task),
            model=asdict(self.spec.model_for(cell.task)),
            recipe=asdict(self.spec.recipe_for(cell.task)),
            original_key=self.original_key(cell.task, cell.seed),
            runtime={**asdict(self.spec.runtime), **self.runtime_identity()},
            versions=versions(),
        )

    def failed(self, cell: Cell, stage: str, err: BaseException | str) -> CellRecord:
        """Store and return the failed record of ``cell`` (as far as it can be described)."""
        record = self._record(cell, FAILED)
        self._fail(record, stage, err)
        return record

    def _fail(self, record: CellRecord, stage: str, err: BaseException | str) -> None:
        """Store ``record`` as failed at ``stage`` with its reason, without its predictions."""
        record.status, record.stage, record.error = FAILED, stage, err if isinstance(err, str) else reason(err, stage)
        if self.debug and isinstance(err, BaseException):
            record.traceback = "".join(traceback.format_exception(err))
        path = self.store.cell(record.task_id, record.method, record.seed)
        self.store.remove(self.store.predictions(path))
        write_record(self.store, path, record)

    def failure(self, cell: Cell, stage: str, err: BaseException | str) -> Outcome:
        """``failed`` as the cell's outcome."""
        record = self.failed(cell, stage, err)
        return Outcome(cell, "failed", record, record.error)

    def settled(self, cell: Cell, any_status: bool = False) -> Outcome | None:
        """What the store holds for ``cell`` already as an outcome: a done cell (``cached``), or
        with ``any_status`` a failed one too; None when it must run (a measured cell, too: its
        host half is still to run)."""
        record = self.stored(cell) if any_status else self.cached(cell)
        if record is None or record.status == MEASURED:
            return None
        return Outcome(cell, "cached" if record.done else "failed", record, record.error)

    def pending(self, cells: list[Cell], finish: Callable[[Outcome], None]) -> list[Cell]:
        """The ``cells`` to run, gold cells first; those done in the store are finished as cached."""
        todo = []
        for cell in sorted(cells, key=lambda c: not c.method.cls.is_gold):
            outcome = self.settled(cell)
            if outcome is None:
                todo.append(cell)
            else:
                finish(outcome)
        return todo

    def stored(self, cell: Cell) -> CellRecord | None:
        """The stored record of ``cell`` (done or failed) when it has the same key."""
        record = read_record(self.store, self.path(cell))
        return record if record is not None and record.key == self.cell_key(cell) else None

    def cached(self, cell: Cell) -> CellRecord | None:
        """The stored record of ``cell`` when it is done with the same key (and its predictions are intact)."""
        return self._with_predictions(cell, DONE)

    def measured(self, cell: Cell) -> CellRecord | None:
        """The stored record of ``cell`` when its device half is done with the same key and its
        host half is not (and its predictions are intact)."""
        return self._with_predictions(cell, MEASURED)

    def _with_predictions(self, cell: Cell, status: str) -> CellRecord | None:
        record = self.stored(cell)
        if record is None or record.status != status:
            return None
        if self.store.read(self.store.predictions(self.path(cell)), _read_npz) is None:
            return None  # its predictions are missing or were quarantined: run it again
        return record

    # -- the run --------------------------------------------------------------------
    def execute(self, cell: Cell, score: bool = True) -> Outcome:
        """The cell's outcome: reused from the store, run, or failed (stored as failed with
        its reason; the caller goes on with the next cell). With ``score`` False only the
        device half runs (a "measured" outcome; ``score`` does the rest); a cell measured
        before is not measured again."""
        stage = _Stage()
        try:
            existing = self.cached(cell)
            if existing is not None:
                return Outcome(cell, "cached", existing)
            measured = self.measured(cell) or self.measure_cell(cell, stage)
        except Exception as err:  # noqa: BLE001 -- any failure of a cell is that cell's, not the run's
            return self._contained(cell, stage.name, err)
        return self.score(cell) if score else Outcome(cell, "measured", measured)

    def score(self, cell: Cell) -> Outcome:
        """The host half of a measured cell as its outcome: done, or failed at "scoring" (its
        measured record stored as failed, without touching the dataset or a device)."""
        try:
            return Outcome(cell, "done", self.score_cell(cell))
        except Exception as err:  # noqa: BLE001 -- a failure of the host half is the cell's
            path = self.path(cell)
            record = read_record(self.store, path)
            if record is None:
                return Outcome(cell, "failed", error=reason(err, "scoring"))
            self._fail(record, "scoring", err)
            return Outcome(cell, "failed", record, record.error)

    def _contained(self, cell: Cell, stage: str, err: BaseException) -> Outcome:
        """The failed outcome of ``cell``, stored as failed with its reason when it can be."""
        try:
            record = self.failed(cell, stage, err)
        except Exception:  # noqa: BLE001 -- even describing it failed (the dataset, the disk)
            return Outcome(cell, "failed", error=reason(err, stage))
        return Outcome(cell, "failed", record, record.error)


def _read_dataset(directory: Path, name: str, fingerprint: str) -> GroupDataset:
    dataset = read_dataset(directory, name, fingerprint)
    for split in (dataset.train, dataset.val, dataset.test):
        if not (len(split.x) == len(split.y) == len(split.a)):
            raise ValueError("a split's inputs and labels differ in length")
    return dataset


def _load_state(model: torch.nn.Module, path: Path) -> torch.nn.Module:
    model.load_state_dict(torch.load(path, weights_only=True, map_location="cpu"))
    return model


def _save_state(state: dict[str, torch.Tensor], tmp: Path) -> None:
    torch.save(state, tmp)


def _read_npz(path: Path) -> bool:
    """Whether every array of an .npz file decompresses (raises when not)."""
    with np.load(path) as z:
        for name in z.files:
            z[name]
    return True


def _save_features(tmp: Path, features: np.ndarray, groups: np.ndarray) -> None:
    np.savez_compressed(tmp, features=features, groups=groups)


def _peak_memory(cuda: bool) -> tuple[float, str]:
    if cuda:
        return torch.cuda.max_memory_allocated() / 2**20, "cuda_max_allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process_max_rss"
