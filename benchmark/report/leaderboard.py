"""The leaderboard as data (RobustBench's idea): dataclasses are its schema, the JSON file
is the record, and every other view (Markdown, HTML, the terminal table) is rendered from
that JSON alone."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmark.run.record import json_safe
from benchmark.run.store import atomic_path
from benchmark.errors import BenchmarkError

SCHEMA_VERSION = 3  # 2: a Stat carries its per-seed values; 3: failed and refused cells
READABLE = (2, 3)  # a schema-2 file reads as a schema-3 one with no failed or refused cells (it recorded none)


@dataclass(frozen=True)
class Stat:
    """A metric over seeds: mean, sample standard deviation (0 for one seed) and count of the
    defined values, and ``values``, one per seed in the order of the entry's ``seeds`` (NaN,
    null in the JSON, where undefined), for paired comparisons between entries."""

    mean: float
    std: float
    n: int
    values: tuple[float, ...] = ()


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

    def entries_for(self, task_id: str) -> list[Entry]:
        return [e for e in self.entries if e.task == task_id]

    def to_json(self) -> dict[str, Any]:
        return json_safe(asdict(self))

    def save(self, path: Path) -> None:
        validate(self.to_json())
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(self.to_json(), indent=1) + "\n")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Leaderboard:
        validate(data)
        return cls(
            schema_version=data["schema_version"],
            ranking=Ranking(**data["ranking"]),
            tasks=data["tasks"],
            entries=[
                Entry(**{**e, "metrics": {k: _stat(v) for k, v in e["metrics"].items()}})
                for e in data["entries"]
            ],
            versions=data.get("versions", {}),
            failed=data.get("failed", []),
            refused=data.get("refused", []),
        )

    @classmethod
    def load(cls, path: Path) -> Leaderboard:
        try:
            return cls.from_json(json.loads(Path(path).read_text()))
        except (OSError, json.JSONDecodeError) as err:
            raise BenchmarkError(f"cannot read leaderboard {path}: {err}") from None


def _nan(v: Any) -> Any:
    return math.nan if v is None else v


def _stat(data: dict[str, Any]) -> Stat:
    """A Stat from its JSON form (null read back as NaN)."""
    return Stat(_nan(data["mean"]), _nan(data["std"]), data["n"], tuple(_nan(v) for v in data["values"]))


def _is_number(v: Any) -> bool:
    return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))


def validate(data: dict[str, Any]) -> None:
    """Check the JSON against the schema; raise BenchmarkError naming the first problem."""

    def need(cond: bool, what: str) -> None:
        if not cond:
            raise BenchmarkError(f"leaderboard does not match schema {SCHEMA_VERSION}: {what}")

    need(isinstance(data, dict), "top level is not an object")
    version = data.get("schema_version")
    hint = " (an older file: rebuild it with `unlearn-bench leaderboard`)" if isinstance(version, int) and version < SCHEMA_VERSION else ""
    need(version in READABLE, f"schema_version is {version!r}{hint}")
    for key in ("ranking", "tasks", "entries"):
        need(key in data, f"missing {key!r}")
    task_ids = set()
    for t in data["tasks"]:
        for key in ("id", "dataset", "forget_group", "forget_size", "skew"):
            need(key in t, f"task {t.get('id')!r} lacks {key!r}")
        task_ids.add(t["id"])
    for e in data["entries"]:
        where = f"entry {e.get('method')!r} on {e.get('task')!r}"
        for key in ("method", "task", "metrics", "gap_to_gold", "rank"):
            need(key in e, f"{where} lacks {key!r}")
        need(e["task"] in task_ids, f"{where} names an unknown task")
        seeds = e.get("seeds", [])
        for name, stat in e["metrics"].items():
            need(isinstance(stat, dict) and set(stat) == {"mean", "std", "n", "values"}, f"{where}: metric {name} is not mean/std/n/values")
            values = stat["values"]
            need(isinstance(values, list) and len(values) == len(seeds), f"{where}: metric {name} has not one value per seed ({len(seeds)})")
            need(all(map(_is_number, values)), f"{where}: metric {name} has a value that is not a number or null")
            need(stat["n"] == sum(v is not None for v in values), f"{where}: metric {name} counts n = {stat['n']!r} defined values")
        need(e["rank"] is None or (isinstance(e["rank"], int) and e["rank"] >= 1), f"{where}: bad rank {e['rank']!r}")
    for key, fields in (("failed", ("method", "task", "seed", "stage", "error")), ("refused", ("method", "task", "seed", "reason"))):
        rows = data.get(key, [])
        need(isinstance(rows, list), f"{key!r} is not a list")
        for row in rows:
            need(isinstance(row, dict) and all(f in row for f in fields), f"a {key} cell lacks one of {', '.join(fields)}")
