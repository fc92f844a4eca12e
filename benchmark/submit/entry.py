"""A leaderboard entry: one method's result cells with their provenance, in
``<leaderboard>/entries/<method>.json``, which ``unlearn-bench submit`` writes and every
leaderboard build merges beside the store's cells::

    {"schema_version": 1, "method": "MyMethod",
     "provenance": {"plugin": "my_method.py:MyMethod", "source_hash": ..., "versions": {...},
                    "spec_hash": ..., "hardware": ..., "precision": "32-true",
                    "grid": "official" | "custom", "created": "2026-01-01T12:00:00+00:00",
                    "tuned": true},   # false: submitted with --no-tune (each cell's "tuning" says more)
     "cells": [<result cell as stored>, ...]}

An entry's cell counts where the store has no cell of its (task, method, seed) (without
per-sample predictions: the entry has none); an entry file that cannot be read is named in one
warning line and skipped.
"""

from __future__ import annotations

import json
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from benchmark.errors import BenchmarkError
from benchmark.hashing import stable_hash
from benchmark.schema import validate_submission
from benchmark.run.record import CellRecord
from benchmark.run.store import warn, write_text

ENTRY_SCHEMA_VERSION = 1
ENTRIES = "entries"


def entry_path(leaderboard: Path, method: str) -> Path:
    return Path(leaderboard) / ENTRIES / f"{method.replace('/', '_').replace(':', '_')}.json"


def plugin_name(given: str) -> str:
    """The plugin as an entry records it: a registered name, or FILE.py:Class with the file's
    name only (the submitter's directories are theirs)."""
    base, sep, cls = given.strip().rpartition(":")
    return f"{Path(base).name}:{cls}" if sep and base.endswith(".py") else given.strip()


def spec_hash(runner: Any) -> str:
    """Hash of the resolved grid, the same for every method run on it: each task's description
    (dataset fingerprint included), recipe, model and metric settings; the seeds; the runtime
    identity (accelerator, precision, devices, device kind)."""
    from benchmark.run.keys import runtime_identity

    spec = runner.spec
    tasks = {
        t.id: {"task": t.describe(runner.artefacts.dataset(t)), "recipe": spec.recipe_for(t), "model": spec.model_for(t), "metrics": spec.metrics_for(t)}
        for t in spec.tasks
    }
    return stable_hash({"tasks": tasks, "seeds": spec.seeds, "runtime": runtime_identity(spec.runtime)})


def hardware() -> str:
    """The machine: platform, CPU model and the kernels torch picked, and the GPU if any."""
    import torch

    parts = [platform.platform(), _cpu_model() or platform.machine(), torch.backends.cpu.get_cpu_capability()]
    if torch.cuda.is_available():
        parts.append(torch.cuda.get_device_name())
    return ", ".join(p for p in parts if p)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def build_entry(runner: Any, given: str, outcomes: list[Any], grid: str, tuned: bool = True) -> dict[str, Any]:
    """The entry of the plugin ``given`` from the ``outcomes`` of ``runner``'s plan (all done);
    ``tuned`` False: submitted untuned (``--no-tune``)."""
    from benchmark.run.keys import source_hash, versions

    ref = next(m for m in runner.spec.methods if m.given == given.strip())
    records = sorted((o.record for o in outcomes if o.cell.method.name == ref.name), key=lambda r: (r.task_id, r.seed))
    return {
        "schema_version": ENTRY_SCHEMA_VERSION,
        "method": ref.name,
        "provenance": {
            "plugin": plugin_name(ref.given),
            "source_hash": source_hash(ref.cls),
            "versions": versions(),
            "spec_hash": spec_hash(runner),
            "hardware": hardware(),
            "precision": runner.spec.runtime.resolved_precision,
            "grid": grid,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "tuned": tuned,
        },
        "cells": [json.loads(r.to_json()) for r in records],
    }


def write_entry(entry: dict[str, Any], leaderboard: Path) -> Path:
    """Check ``entry`` and write it (atomically) under ``leaderboard``; its path."""
    check_entry(entry)
    path = entry_path(leaderboard, entry["method"])
    try:
        write_text(path, json.dumps(entry, indent=1) + "\n")
    except OSError as err:
        raise BenchmarkError(f"cannot write the entry {path}: {err.strerror or err}") from None
    return path


def check_entry(data: Any) -> list[CellRecord]:
    """The cells of an entry: it matches the schema's submission entry (else BenchmarkError),
    and each cell is a done cell of its method (else ValueError)."""
    validate_submission(data)
    records = [CellRecord.from_json(json.dumps(cell)) for cell in data["cells"]]
    for record in records:
        if record.method != data["method"] or not record.done:
            raise ValueError(f"holds a cell that is not a done cell of {data['method']!r}: {record.label} ({record.status})")
    return records


def read_entries(leaderboard: Path, warn: Callable[[str], None] = warn) -> list[CellRecord]:
    """The cells of every readable entry under ``leaderboard``; an unreadable one is named and skipped."""
    records = []
    for path in sorted((Path(leaderboard) / ENTRIES).glob("*.json")):
        try:
            records += check_entry(json.loads(path.read_text()))
        except Exception as err:  # noqa: BLE001 -- whatever is wrong with the file, it is skipped, named
            warn(f"skipped the leaderboard entry {path}: {_why(err)}")
    return records


def _why(err: BaseException) -> str:
    """One line on what is wrong with an entry file."""
    lines = str(err).strip().splitlines()
    first = lines[0] if lines else ""
    if isinstance(err, json.JSONDecodeError):
        return f"not JSON ({first})"
    return first if isinstance(err, (BenchmarkError, ValueError)) else f"{type(err).__name__}: {first}"


def entry_cells(records: list[CellRecord], leaderboard: Path, warn: Callable[[str], None] = warn) -> list[CellRecord]:
    """The cells of the entries under ``leaderboard`` whose (task, method, seed) ``records``
    lack (the store's cell wins; between two entries, the first file's)."""
    have = {(r.task_id, r.method, r.seed) for r in records}
    added = []
    for record in read_entries(leaderboard, warn):
        key = (record.task_id, record.method, record.seed)
        if key not in have:
            have.add(key)
            record.predictions = ""  # an entry carries no per-sample predictions: none to look up in the store
            added.append(record)
    return added
