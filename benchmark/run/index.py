"""The result index: what the store holds for each cell under its key (``keys.cell_key``),
which the schedulers ask before they run a cell."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from benchmark.run import keys
from benchmark.run.artefacts import Artefacts, read_npz
from benchmark.run.grid import Cell, Outcome
from benchmark.run.record import DONE, MEASURED, CellRecord, read_record
from benchmark.run.spec import Spec
from benchmark.run.store import Store


class Index:
    def __init__(self, spec: Spec, store: Store, artefacts: Artefacts) -> None:
        self.spec, self.store, self.artefacts = spec, store, artefacts

    def key(self, cell: Cell) -> str:
        dataset = self.artefacts.dataset(cell.task)
        return keys.cell_key(self.spec, cell, dataset, self.artefacts.original_key(cell.task, cell.seed))

    def path(self, cell: Cell) -> Path:
        return self.store.cell(cell.task.id, cell.method.name, cell.seed)

    def stored(self, cell: Cell) -> CellRecord | None:
        """The stored record of ``cell`` (done or failed) when it has the same key."""
        record = read_record(self.store, self.path(cell))
        return record if record is not None and record.key == self.key(cell) else None

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
        if self.store.read(self.store.predictions(self.path(cell)), read_npz) is None:
            return None  # its predictions are missing or were quarantined: run it again
        return record

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
