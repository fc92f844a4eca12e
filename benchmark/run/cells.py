"""Running one cell: its method built around the shared original and run, the result checked,
scored and stored as its record.

Scoring has two halves. The device half (``measure_cell``) needs the model: the per-sample
predictions, features and channel spreads, and the attacks; it stores the predictions and a
record of status "measured". The host half (``score_cell``) needs only those stored arrays:
MIU's forest MIA, the balanced MIA, the MI probes (``benchmark/run/rescore.py``, the path
``rescore`` takes too); it completes the record ("done"). The local pool runs the host half in
its own scorer process while the device workers train the next cells.

A cell that fails anywhere (building, training, a non-finite loss or weights, checking,
scoring, saving) becomes a failed record with its reason; the run goes on.
"""

from __future__ import annotations

import copy
import functools
import resource
import time
import traceback
from dataclasses import asdict
from typing import Any

import lightning as L
import torch

from benchmark.method import UnlearningMethod, reweights
from benchmark.metrics import scorecard
from benchmark.metrics.predictions import Predictions
from benchmark.model import Classifier
from benchmark.run import keys
from benchmark.run.artefacts import Artefacts, save_state
from benchmark.run.failure import CellFailure, check_model, reason
from benchmark.run.fitting import Report, fit
from benchmark.run.grid import Cell, Outcome
from benchmark.run.index import Index
from benchmark.run.record import DONE, FAILED, MEASURED, CellRecord, read_record, write_record
from benchmark.run.rescore import score_record
from benchmark.run.spec import Spec
from benchmark.run.store import Store
from benchmark.run.validate import build_method
from benchmark.task import TaskData


class _Stage:
    """Where a cell is, so that a failure names it."""

    name = "building"


class CellRunner:
    """Runs cells over the shared artefacts, and stores each one's record in the index's place."""

    def __init__(self, spec: Spec, store: Store, artefacts: Artefacts, index: Index, report: Report, debug: bool = False) -> None:
        """``debug``: failed records keep the traceback."""
        self.spec, self.store, self.artefacts, self.index = spec, store, artefacts, index
        self.report, self.debug = report, debug

    # -- the method -------------------------------------------------------------------
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

    def build_method(self, cell: Cell, arguments: dict[str, Any] | None = None) -> UnlearningMethod:
        """The cell's method around a copy of the original, with a frozen copy beside it, built
        with ``arguments`` (default: the spec's for the cell)."""
        original = self.artefacts.original(cell.task, cell.seed)
        data = self.artefacts.task_data(cell.task, cell.seed)
        return build_method(cell.method, original, data, arguments or self.spec.method_arguments(cell.method, cell.task))

    def unlearn(self, cell: Cell, stage: _Stage | None = None, arguments: dict[str, Any] | None = None) -> tuple[UnlearningMethod, float]:
        """Build (with ``arguments``, default the spec's) and run the cell's method; returns it
        and its wall time in seconds (the method's ``unlearn`` hook and its Trainer fit, set-up
        included; the original model is trained or loaded before, outside the timing and the
        seeded section)."""
        stage = stage or _Stage()
        stage.name = "building the original"
        self.artefacts.original(cell.task, cell.seed)
        with self.artefacts.guarded("the method"):
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

    # -- scoring ----------------------------------------------------------------------
    def scoring_inputs(self, cell: Cell, method: UnlearningMethod) -> tuple[Classifier, TaskData]:
        """What the cell is scored on: a copy of the runner's own original (checked unchanged)
        holding the method's weights and nothing else of it (no hooks, no patched attributes), on
        the runtime's device, and the runner's own task data (never the method's). Copied, not
        built again: building may read pretrained weights from disk, once per cell."""
        model = copy.deepcopy(self.artefacts.original(cell.task, cell.seed))
        model.load_state_dict(method.model.state_dict())
        return model.to(self.spec.runtime.device).eval(), self.artefacts.task_data(cell.task, cell.seed)

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
        self.artefacts.original_features(task, seed)
        measured = time.perf_counter() - started
        record = self._record(cell, MEASURED)
        record.hparams = hparams
        record.metrics, record.details = {**metrics, "unlearn_seconds": seconds}, details
        record.metric_settings = scorecard.record(settings, data.dataset, len(predictions.norm_std))
        record.timings = {"unlearn_seconds": seconds, "measure_seconds": measured, "isolation_seconds": self.artefacts.check_seconds}
        record.peak_memory_mb, record.peak_memory_source = _peak_memory(self.spec.runtime.uses_cuda)
        stage.name = "saving"
        path = self.index.path(cell)
        self.store.write(self.store.predictions(path), predictions.save)
        record.predictions = self.store.predictions(path).name
        if ref.cls.is_gold:
            self.store.write(self.store.gold_model(record.key), functools.partial(save_state, model.cpu().state_dict()))
        write_record(self.store, path, record)
        return record

    def score_cell(self, cell: Cell) -> CellRecord:
        """The host half: every metric the stored predictions and the original's stored
        features determine (``score_record``, as ``rescore`` computes them), added to the
        measured record, which becomes "done"; the record."""
        path = self.index.path(cell)  # read as stored: the scorer builds no dataset (its key was checked when measured)
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
        write_record(self.store, path, record)
        return record

    # -- the record -------------------------------------------------------------------
    def _record(self, cell: Cell, status: str) -> CellRecord:
        """A record with what the cell is, before it ran (the settings, not the results)."""
        gold = self.gold(cell)
        return CellRecord(
            key=self.index.key(cell),
            status=status,
            method=cell.method.name,
            task=cell.task.describe(self.artefacts.dataset(cell.task)),
            seed=cell.seed,
            is_gold=cell.method.cls.is_gold,
            reweight=self.reweights(cell),
            gold_method=gold.method.name if gold is not None else "",
            gold_key=self.index.key(gold) if gold is not None else "",
            method_source=cell.method.source,
            method_source_hash=keys.source_hash(cell.method.cls),
            hparams=keys.resolved_hparams(self.spec, cell),
            tuning=self.spec.tuning_of(cell.method, cell.task),
            model=asdict(self.spec.model_for(cell.task)),
            recipe=asdict(self.spec.recipe_for(cell.task)),
            original_key=self.artefacts.original_key(cell.task, cell.seed),
            runtime={**asdict(self.spec.runtime), **keys.runtime_identity(self.spec.runtime)},
            versions=keys.versions(),
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

    def _contained(self, cell: Cell, stage: str, err: BaseException) -> Outcome:
        """The failed outcome of ``cell``, stored as failed with its reason when it can be."""
        try:
            record = self.failed(cell, stage, err)
        except Exception:  # noqa: BLE001 -- even describing it failed (the dataset, the disk)
            return Outcome(cell, "failed", error=reason(err, stage))
        return Outcome(cell, "failed", record, record.error)

    # -- the run ----------------------------------------------------------------------
    def execute(self, cell: Cell, score: bool = True) -> Outcome:
        """The cell's outcome: reused from the store, run, or failed (stored as failed with
        its reason; the caller goes on with the next cell). With ``score`` False only the
        device half runs (a "measured" outcome; ``score`` does the rest); a cell measured
        before is not measured again."""
        stage = _Stage()
        try:
            existing = self.index.cached(cell)
            if existing is not None:
                return Outcome(cell, "cached", existing)
            measured = self.index.measured(cell) or self.measure_cell(cell, stage)
        except Exception as err:  # noqa: BLE001 -- any failure of a cell is that cell's, not the run's
            return self._contained(cell, stage.name, err)
        return self.score(cell) if score else Outcome(cell, "measured", measured)

    def score(self, cell: Cell) -> Outcome:
        """The host half of a measured cell as its outcome: done, or failed at "scoring" (its
        measured record stored as failed, without touching the dataset or a device)."""
        try:
            return Outcome(cell, "done", self.score_cell(cell))
        except Exception as err:  # noqa: BLE001 -- a failure of the host half is the cell's
            record = read_record(self.store, self.index.path(cell))
            if record is None:
                return Outcome(cell, "failed", error=reason(err, "scoring"))
            self._fail(record, "scoring", err)
            return Outcome(cell, "failed", record, record.error)


def _peak_memory(cuda: bool) -> tuple[float, str]:
    if cuda:
        return torch.cuda.max_memory_allocated() / 2**20, "cuda_max_allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process_max_rss"
