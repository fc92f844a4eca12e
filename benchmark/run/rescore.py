"""The host half of scoring: every metric that a cell's stored arrays determine (its predictions
file, and its original's stored TEST features), computed without the model. A run scores each
measured cell with ``score_record`` (in the pool's scorer process), and ``unlearn-bench rescore``
recomputes stored cells with the same function, so the two cannot drift apart."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from benchmark.metrics import catalog
from benchmark.metrics.groups import compute_metrics
from benchmark.metrics.mutual_info import original_mi_from, original_mi_metrics
from benchmark.metrics.predictions import Predictions
from benchmark.run.record import CellRecord, read_record, write_record
from benchmark.run.store import Store


@dataclass
class Rescored:
    records: list[CellRecord] = field(default_factory=list)  # every readable cell, rescored where it could be
    changes: dict[str, list[str]] = field(default_factory=dict)  # file -> metrics whose stored value differed
    not_rescored: dict[str, str] = field(default_factory=dict)  # file -> why its stored numbers were kept as they are


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


RECOMPUTABLE = ("predictions", "original")  # the catalog's sources that need no model


def score_record(record: CellRecord, predictions: Predictions, store: Store) -> list[str]:
    """Compute ``record``'s metrics of the catalog's recomputable sources in place (those of the
    predictions file, and the original's MI from its stored features); the names whose stored
    value changed (for a measured cell: every name it had not had)."""
    metrics, details = compute_metrics(predictions)
    features = store.original_features(record.original_key)
    if store.read(features, lambda p: True):
        metrics.update(original_mi_metrics(original_mi_from(features, predictions.num_groups)))
    stored = [k for source in RECOMPUTABLE for k in catalog.select(record.metrics, source)]
    changed = [k for k in dict.fromkeys([*stored, *metrics]) if not _same(record.metrics.get(k, math.nan), metrics.get(k, math.nan))]
    record.metrics = {**record.metrics, **metrics}
    record.details = {**record.details, **details}
    return changed


def rescore(store: Store) -> Rescored:
    """Rescore every done cell of the store in place. A cell whose predictions are missing or
    corrupt (quarantined) keeps its stored numbers and is named in ``not_rescored``; a
    corrupt result file is quarantined (named by the store) and left out."""
    out = Rescored()
    for path in store.cells():
        record = read_record(store, path)
        if record is None:
            continue
        out.records.append(record)
        if not record.done:
            continue
        predictions = store.read(store.predictions(path), Predictions.load)
        if predictions is None:
            out.not_rescored[str(path)] = "its predictions file is missing or corrupt; the stored numbers are kept, and the next run recomputes the cell"
            continue
        changed = score_record(record, predictions, store)
        write_record(store, path, record)
        if changed:
            out.changes[str(path)] = changed
    return out
