"""Recomputing every non-adversarial metric of stored result cells from their predictions
files alone (no model): what the leaderboard's numbers rest on can be re-derived offline."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from benchmark.metrics.groups import compute_metrics
from benchmark.metrics.predictions import Predictions
from benchmark.run.store import predictions_path, read_cell, write_cell
from benchmark.run.runner import original_mi_from, original_mi_metrics


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def rescore_cell(path: Path, cache: Path) -> tuple[dict[str, Any], list[str]] | None:
    """The cell at ``path`` with recomputed metrics, and the names whose value changed."""
    record = read_cell(path)
    preds_file = predictions_path(path)
    if record is None or not preds_file.exists():
        return None
    predictions = Predictions.load(preds_file)
    metrics, details = compute_metrics(predictions)
    original = cache / "models" / f"original-{record.get('original_key')}.features.npz"
    if original.exists():
        metrics.update(original_mi_metrics(original_mi_from(original, predictions.num_groups)))
    stored = record["metrics"]
    stored_nan = {k: (math.nan if v is None else v) for k, v in stored.items()}
    changed = [k for k, v in metrics.items() if not _same(stored_nan.get(k), v)]
    record["metrics"] = {**stored, **metrics}
    record["details"] = {**record.get("details", {}), **details}
    return record, changed


def rescore(out: Path) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """Rescore every cell under ``<out>/results`` in place; returns the records and, per
    file, the metrics whose stored value differed from the recomputed one."""
    records, changes = [], {}
    for path in sorted((out / "results").rglob("seed-*.json")):
        result = rescore_cell(path, out / "cache")
        if result is None:
            continue
        record, changed = result
        write_cell(path, record)
        records.append(record)
        if changed:
            changes[str(path)] = changed
    return records, changes
