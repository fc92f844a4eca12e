"""The leaderboard as data (RobustBench's idea): the dataclasses below hold it, the JSON file
is the record, and every other view (Markdown, HTML, the terminal table) is rendered from
that JSON alone. The record follows the published JSON Schema (``SCHEMA_PATH``, its
``$defs/leaderboard``; leaderboard/SCHEMA.md), checked on write and on read together with
what JSON Schema cannot say."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmark.errors import BenchmarkError
from benchmark.schema import SCHEMA_PATH, first_problem, validate_submission
from benchmark.run.record import json_safe
from benchmark.run.store import atomic_path

# SCHEMA_PATH and validate_submission are schema.py's, named here too for the views and ``submit``
__all__ = ["SCHEMA_PATH", "SCHEMA_VERSION", "READABLE", "Stat", "Entry", "Ranking", "Leaderboard", "validate", "validate_submission"]

SCHEMA_VERSION = 5  # 2: a Stat carries its per-seed values; 3: failed and refused cells; 4: intervals (ci, boot, rank_band, vs_gold, like_gold, statistics); 5: each entry's tuning
READABLE = (2, 3, 4, 5)  # older files read with the fields they lack empty: no failed or refused cells, no intervals (null), no tuning


@dataclass(frozen=True)
class Stat:
    """A metric over seeds: mean, sample standard deviation (0 for one seed) and count of the
    defined values, and ``values``, one per seed in the order of the entry's ``seeds`` (NaN,
    null in the JSON, where undefined), for paired comparisons between entries.

    ``ci``: the 95% t-interval over seeds, mean ± t_{0.975, n−1} · std / √n (None when n < 2);
    ``boot``: for an accuracy on TEST, the 95% percentile interval of the mean over seeds from
    a paired bootstrap over TEST rows (None for other metrics or without the predictions);
    see benchmark/report/statistics.py."""

    mean: float
    std: float
    n: int
    values: tuple[float, ...] = ()
    ci: tuple[float, float] | None = None
    boot: tuple[float, float] | None = None


@dataclass(frozen=True)
class Entry:
    method: str
    task: str
    metrics: dict[str, Stat]
    gap_to_gold: dict[str, float]
    rank: int | None
    is_gold: bool = False
    gold: str | None = None  # the method this entry is scored against
    seeds: list[int] = field(default_factory=list)
    hparams: dict[str, Any] = field(default_factory=dict)
    #: where its hyper-parameters come from: {"from": "tuned", "trials": ..., ...} or {"from": "defaults"}
    tuning: dict[str, Any] = field(default_factory=dict)
    #: the (best, worst) ranks it could hold given the Avg. Gap intervals; None for gold and unranked entries
    rank_band: tuple[int, int] | None = None
    #: per Avg. Gap component, the 95% interval of method − gold (absent where undefined)
    vs_gold: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: every vs_gold interval contains 0; None for gold entries or without any interval
    like_gold: bool | None = None


@dataclass(frozen=True)
class Ranking:
    key: str
    order: str
    components: list[str]
    description: str


@dataclass(frozen=True)
class Leaderboard:
    schema_version: int
    ranking: Ranking
    tasks: list[dict[str, Any]]
    entries: list[Entry]
    versions: dict[str, str] = field(default_factory=dict)
    #: cells that failed: {method, task, seed, stage, error}; they have no numbers
    failed: list[dict[str, Any]] = field(default_factory=list)
    #: cells left out because the gold in the store is not the one they ran against: {method, task, seed, reason}
    refused: list[dict[str, Any]] = field(default_factory=list)
    #: how the intervals were computed (statistics.STATISTICS), for the views to quote
    statistics: dict[str, Any] = field(default_factory=dict)

    def entries_for(self, task_id: str) -> list[Entry]:
        return [e for e in self.entries if e.task == task_id]

    def to_json(self) -> dict[str, Any]:
        return json_safe(asdict(self))

    def save(self, path: Path) -> None:
        record = self.to_json()
        validate(record)
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(record, indent=1) + "\n")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Leaderboard:
        validate(data)
        return cls(
            schema_version=data["schema_version"],
            ranking=Ranking(**data["ranking"]),
            tasks=data["tasks"],
            entries=[_entry(e) for e in data["entries"]],
            versions=data.get("versions", {}),
            failed=data.get("failed", []),
            refused=data.get("refused", []),
            statistics=data.get("statistics", {}),
        )

    @classmethod
    def load(cls, path: Path) -> Leaderboard:
        try:
            return cls.from_json(json.loads(Path(path).read_text()))
        except (OSError, json.JSONDecodeError) as err:
            raise BenchmarkError(f"cannot read leaderboard {path}: {err}") from None


def _nan(v: Any) -> Any:
    return math.nan if v is None else v


def _pair(v: list | None) -> tuple | None:
    return None if v is None else tuple(v)


def _stat(data: dict[str, Any]) -> Stat:
    """A Stat from its JSON form (null read back as NaN; no interval in an older file: None)."""
    return Stat(_nan(data["mean"]), _nan(data["std"]), data["n"], tuple(_nan(v) for v in data["values"]),
                _pair(data.get("ci")), _pair(data.get("boot")))


def _entry(data: dict[str, Any]) -> Entry:
    return Entry(**{
        **data,
        "metrics": {k: _stat(v) for k, v in data["metrics"].items()},
        "gap_to_gold": {k: _nan(v) for k, v in data["gap_to_gold"].items()},
        "rank_band": _pair(data.get("rank_band")),
        "vs_gold": {k: tuple(v) for k, v in data.get("vs_gold", {}).items()},
        "tuning": data.get("tuning") or {"from": "defaults"},  # before tuning existed, every setting was hand-set
    })


def validate(data: Any) -> None:
    """Check a leaderboard's JSON against schema.json (``$defs/leaderboard``) and what JSON
    Schema cannot say; raise BenchmarkError naming the first problem (its JSON path), one line."""
    version = data.get("schema_version") if isinstance(data, dict) else None
    if isinstance(data, dict) and version not in READABLE:
        hint = " (an older file: rebuild it with `unlearn-bench leaderboard`)" if isinstance(version, int) and version < SCHEMA_VERSION else ""
        _refuse(f"$.schema_version: schema_version is {version!r}{hint}")
    problem = first_problem(data, "leaderboard") or _semantic_problem(data)
    if problem is not None:
        _refuse(problem)


def _refuse(problem: str) -> None:
    raise BenchmarkError(f"leaderboard does not match schema {SCHEMA_VERSION}: {problem}")


def _interval_problem(where: str, pair: list | None) -> str | None:
    if pair is not None and pair[0] > pair[1]:
        return f"{where}: low {pair[0]} is above high {pair[1]}"
    return None


def _semantic_problem(data: dict[str, Any]) -> str | None:
    """The first problem JSON Schema cannot express: entries of unknown tasks, not one value
    per seed, n not the count of defined values, intervals and rank bands out of order."""
    task_ids = {t["id"] for t in data["tasks"]}
    for i, e in enumerate(data["entries"]):
        where = f"$.entries[{i}]"
        if e["task"] not in task_ids:
            return f"{where}.task: {e['task']!r} names an unknown task"
        seeds = e.get("seeds", [])
        for name, stat in e["metrics"].items():
            at = f"{where}.metrics.{name}"  # paths written as jsonschema's json_path writes them
            if len(stat["values"]) != len(seeds):
                return f"{at}.values: {len(stat['values'])} values for {len(seeds)} seeds (one value per seed)"
            if stat["n"] != sum(v is not None for v in stat["values"]):
                return f"{at}.n: n = {stat['n']} but {sum(v is not None for v in stat['values'])} values are defined"
            problem = _interval_problem(f"{at}.ci", stat.get("ci")) or _interval_problem(f"{at}.boot", stat.get("boot"))
            if problem:
                return problem
        for name, pair in e.get("vs_gold", {}).items():
            if problem := _interval_problem(f"{where}.vs_gold.{name}", pair):
                return problem
        if problem := _interval_problem(f"{where}.rank_band", e.get("rank_band")):
            return problem
    return None
