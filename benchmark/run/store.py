"""Result cells on disk: one JSON file per (task, method, seed) with its predictions beside it.

Layout: ``<out>/results/<task id>/<method>/seed-<seed>.json`` and ``...seed-<seed>.preds.npz``.
A cell is done when its JSON exists with the same ``cell_hash`` (DomainBed's rule), so a
re-run skips it and a crash loses at most the cell in flight.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterator

from benchmark.atomic import atomic_path
from benchmark.errors import BenchmarkError

CELL_SCHEMA_VERSION = 1


def cell_path(out: Path, task_id: str, method: str, seed: int) -> Path:
    safe_method = method.replace("/", "_").replace(":", "_")
    return out / "results" / task_id / safe_method / f"seed-{seed}.json"


def predictions_path(json_path: Path) -> Path:
    return json_path.with_name(json_path.stem + ".preds.npz")


def _clean(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def write_cell(path: Path, record: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(_clean(record), indent=1, default=str) + "\n")


def read_cell(path: Path) -> dict[str, Any] | None:
    """The record at ``path``, or None when missing or unreadable (then it is simply redone)."""
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return record if isinstance(record, dict) and record.get("schema_version") == CELL_SCHEMA_VERSION else None


def iter_cells(out: Path) -> Iterator[dict[str, Any]]:
    """Every readable result cell under ``<out>/results``."""
    root = out / "results"
    if not root.is_dir():
        raise BenchmarkError(f"no results under {out} (expected {root}/<task>/<method>/seed-<n>.json)")
    for path in sorted(root.rglob("seed-*.json")):
        record = read_cell(path)
        if record is not None:
            yield record
