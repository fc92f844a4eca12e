"""What a leaderboard is built from: every result cell in the store, sorted into the cells
that are scored, the cells that failed (shown as failed, never as numbers) and the cells
refused because the gold in the store is not the gold they were run against (a changed
dataset or setting since: their numbers would be compared with the wrong reference)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from benchmark.metrics.predictions import Predictions
from benchmark.run.record import MEASURED, CellRecord, read_record
from benchmark.run.store import Store


@dataclass
class Collected:
    scored: list[CellRecord] = field(default_factory=list)
    failed: list[CellRecord] = field(default_factory=list)
    refused: list[tuple[CellRecord, str]] = field(default_factory=list)

    def cells(self) -> list[dict[str, Any]]:
        """The scored cells as the scoring reads them."""
        return [asdict(r) for r in self.scored]


def stored_records(store: Store) -> list[CellRecord]:
    """Every readable result cell of the store (corrupt files are quarantined and named by it)."""
    return [r for r in (read_record(store, p) for p in store.cells()) if r is not None]


def collect(store: Store, records: list[CellRecord] | None = None) -> Collected:
    """Sort ``records`` (default: ``stored_records``) into scored, failed and refused."""
    if records is None:
        records = stored_records(store)
    by_cell = {(r.task_id, r.method, r.seed): r for r in records}
    out = Collected()
    for record in records:
        if not record.done:
            out.failed.append(record)
            continue
        gold = by_cell.get((record.task_id, record.gold_method, record.seed))
        if not record.is_gold and gold is not None and gold.key != record.gold_key:
            why = f"its gold ({record.gold_method}, seed {record.seed}) in the store has key {gold.key}, but the cell ran against {record.gold_key}: run it again with the current settings"
            out.refused.append((record, why))
        else:
            out.scored.append(record)
    return out


UNSCORED = "measured, but its run stopped before the host half of its scoring: the next run scores it"


def problem_rows(collected: Collected) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(failed, refused) as the leaderboard records them; a measured cell that was never scored
    is listed with the failed ones (it has no numbers to show)."""
    failed = [
        {"method": r.method, "task": r.task_id, "seed": r.seed, **({"stage": "scoring", "error": UNSCORED} if r.status == MEASURED else {"stage": r.stage, "error": r.error})}
        for r in collected.failed
    ]
    refused = [{"method": r.method, "task": r.task_id, "seed": r.seed, "reason": why} for r, why in collected.refused]
    return failed, refused


def predictions_loader(store: Store) -> Callable[[dict[str, Any]], Predictions | None]:
    """For ``score(..., predictions=...)``: a scored cell's per-sample predictions, read from
    the file its ``predictions`` field names beside its JSON; None when it names none or the
    file is missing or corrupt (the store quarantines a corrupt one and names it)."""

    def load(cell: dict[str, Any]) -> Predictions | None:
        if not cell.get("predictions"):
            return None
        path = store.cell(cell["task"]["id"], cell["method"], cell["seed"]).with_name(cell["predictions"])
        return store.read(path, Predictions.load)

    return load
