"""A result cell: what one (method, task, seed) produced, as stored in its JSON file.

A cell is reused when its file holds the same ``key`` (DomainBed's rule): the hash of the
resolved settings that produced it (task and dataset, method and the hash of its source,
hyper-parameters, original model, seed, runtime, metric settings). A cell that failed is
stored too, with its reason, so that the leaderboard shows it as failed; a later run retries it.

The JSON follows ``$defs/cell`` of the published schema (benchmark/schema.json,
leaderboard/SCHEMA.md), checked when a record is written and when it is read: a file that
does not match is corrupt (quarantined by the store, and the cell run again).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmark.schema import first_problem
from benchmark.run.store import Store

CELL_SCHEMA_VERSION = 2  # 2: a dataclass with status, the gold's key and the method source's hash

DONE, FAILED = "done", "failed"
MEASURED = "measured"  # the device half of scoring is stored, the host half still to run (cells.py)


@dataclass
class CellRecord:
    key: str
    status: str  # DONE, FAILED or MEASURED
    method: str
    task: dict[str, Any]  # the task's description (Task.describe): id, dataset, g*, size, skew, fingerprint
    seed: int
    is_gold: bool = False
    reweight: bool = False
    gold_method: str = ""  # the gold this cell is scored against (its own name for a gold cell)
    gold_key: str = ""  # the key of that gold cell under the settings this cell ran with
    method_source: str = ""  # entry point or FILE.py:Class
    method_source_hash: str = ""  # sha256 of the source file the class was defined in
    hparams: dict[str, Any] = field(default_factory=dict)
    #: where the hparams come from: tuned (with the study's budget) or the hand-set defaults (every cell from before tuning)
    tuning: dict[str, Any] = field(default_factory=lambda: {"from": "defaults"})
    metrics: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    metric_settings: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    peak_memory_mb: float | None = None
    peak_memory_source: str = ""
    model: dict[str, Any] = field(default_factory=dict)
    recipe: dict[str, Any] = field(default_factory=dict)
    original_key: str = ""
    runtime: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    predictions: str = ""  # file name of the per-sample predictions beside the JSON
    stage: str = ""  # for a failed cell: where it failed (building, training, checking, scoring, saving, worker)
    error: str = ""  # for a failed cell: the reason, one line
    traceback: str = ""  # for a failed cell run with --debug
    schema_version: int = CELL_SCHEMA_VERSION

    @property
    def done(self) -> bool:
        return self.status == DONE

    @property
    def task_id(self) -> str:
        return self.task["id"]

    @property
    def label(self) -> str:
        return f"{self.method} · {self.task_id} · seed {self.seed}"

    def to_json(self) -> str:
        """The JSON text of the record; ValueError (one line) when it does not match the
        schema (``$defs/cell`` of benchmark/schema.json), so that no such file is written."""
        text = json.dumps(json_safe(asdict(self)), indent=1, default=str) + "\n"
        check(json.loads(text))
        return text

    @classmethod
    def from_json(cls, text: str) -> CellRecord:
        """The record in ``text``; ValueError (one line, naming the JSON path of the first
        problem) when it is not a result cell of this schema."""
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("schema_version") != CELL_SCHEMA_VERSION:
            version = data.get("schema_version") if isinstance(data, dict) else None
            raise ValueError(f"not a result cell of schema {CELL_SCHEMA_VERSION} (schema_version {version!r})")
        check(data)
        record = cls(**data)
        record.metrics = {k: math.nan if v is None else v for k, v in record.metrics.items()}
        return record


def check(data: Any) -> None:
    """ValueError (one line: the JSON path of the first problem) unless ``data`` matches
    ``$defs/cell`` of the published schema (benchmark/schema.json)."""
    problem = first_problem(data, "cell")
    if problem is not None:
        raise ValueError(f"not a result cell of schema {CELL_SCHEMA_VERSION}: {problem}")


def json_safe(obj: Any) -> Any:
    """JSON has no NaN: undefined numbers are written as null (read back as NaN)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def read_record(store: Store, path: Path) -> CellRecord | None:
    """The record at ``path``: None when missing, corrupt (quarantined by the store) or of an
    older schema (stale, not corrupt: left for the next run to replace)."""
    return store.read(path, _parse) or None


def write_record(store: Store, path: Path, record: CellRecord) -> None:
    store.write(path, lambda tmp: tmp.write_text(record.to_json()))


def _parse(path: Path) -> CellRecord | None:
    text = path.read_text()
    data = json.loads(text)
    version = data.get("schema_version") if isinstance(data, dict) else None
    if isinstance(version, int) and version < CELL_SCHEMA_VERSION:
        return None
    return CellRecord.from_json(text)
