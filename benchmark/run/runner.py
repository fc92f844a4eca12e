"""A run's pieces, wired: the artefacts cells share (``artefacts.py``: datasets, original
models and their features, the isolation guard), the result index (``index.py``: what the
store holds for each cell), and the cell runner (``cells.py``: a cell run, checked, scored
and stored). ``Runner`` adds the plan and the checks before any work.

Dependencies, each in the store (benchmark/run/store.py) under the hash of what produced it
(``keys.py``): dataset (per source) -> original model (per dataset, model, recipe, runtime,
seed) -> cells (per method, task, seed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from benchmark.dataset import GroupDataset
from benchmark.model import build_model
from benchmark.run.artefacts import Artefacts
from benchmark.run.cells import CellRunner
from benchmark.run.fitting import Report
from benchmark.run.grid import Cell, Outcome
from benchmark.run.index import Index
from benchmark.run.record import CellRecord
from benchmark.run.spec import Spec
from benchmark.run.store import HEADROOM, Store, check_free_space
from benchmark.run.validate import check_spec
from benchmark.task import Task


class Runner:
    """One run: its plan, the checks before any work, and its pieces (``artefacts``, ``index``, ``cells``)."""

    def __init__(
        self, spec: Spec, report: Report | None = None, debug: bool = False, view: Callable[[GroupDataset], GroupDataset] | None = None
    ) -> None:
        """``view``: what the runner makes of each dataset it reads (tuning: VAL in TEST's place)."""
        self.spec = spec
        self.store = Store(spec.out)
        report = report or (lambda what, done, total: None)
        self.artefacts = Artefacts(spec, self.store, report, view)
        self.index = Index(spec, self.store, self.artefacts)
        self.cells = CellRunner(spec, self.store, self.artefacts, self.index, report, debug)

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
        check_spec(self.spec, lambda task: self.artefacts.task_data(task, self.spec.seeds[0]), self.artefacts.guarded)
        check_free_space(self.spec.out, self.disk_need())

    def disk_need(self) -> int:
        """Bytes this run may write, estimated from its plan: an original and a gold model per
        task and seed, a model's worth per cell (its predictions and features are smaller), and
        ``HEADROOM`` for what the estimate leaves out (the atomic writes' temporary files)."""
        sizes: dict[tuple[str, int], int] = {}
        for task in self.spec.tasks:
            model_spec, classes = self.spec.model_for(task), self.artefacts.dataset(task).num_classes
            key = (repr(model_spec), classes)
            if key not in sizes:  # one model built per kind, not per task
                model = build_model(model_spec, classes, self.spec.seeds[0])
                sizes[key] = sum(t.numel() * t.element_size() for t in model.state_dict().values())
        largest = max(sizes.values(), default=0)
        return (2 * len(self.spec.tasks) * len(self.spec.seeds) + len(self.plan())) * largest + HEADROOM

    # -- what a schedule (scheduler.py) and tools ask about cells, answered by the pieces --
    def original_key(self, task: Task, seed: int) -> str:
        return self.artefacts.original_key(task, seed)

    def path(self, cell: Cell) -> Path:
        return self.index.path(cell)

    def stored(self, cell: Cell) -> CellRecord | None:
        return self.index.stored(cell)

    def settled(self, cell: Cell, any_status: bool = False) -> Outcome | None:
        return self.index.settled(cell, any_status)

    def pending(self, cells: list[Cell], finish: Callable[[Outcome], None]) -> list[Cell]:
        return self.index.pending(cells, finish)

    def failure(self, cell: Cell, stage: str, err: BaseException | str) -> Outcome:
        return self.cells.failure(cell, stage, err)
