"""The published JSON Schema (``schema.json`` beside this module, Draft 2020-12) and its checks:
one validator per ``$defs`` entry (``leaderboard``, ``cell``, ``submission``, ...), and the
first problem of a document as one line naming its JSON path. leaderboard/SCHEMA.md says
which file each definition validates and how versions change."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from benchmark.errors import BenchmarkError

SCHEMA_PATH = Path(__file__).with_name("schema.json")
SUBMISSION_SCHEMA_VERSION = 1
_MESSAGE_CHARS = 160


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


@lru_cache(maxsize=None)
def validator(definition: str) -> Draft202012Validator:
    """A validator of ``#/$defs/<definition>`` (the schema itself checked once)."""
    root = schema()
    if definition not in root["$defs"]:
        raise KeyError(f"schema.json has no $defs/{definition}")
    Draft202012Validator.check_schema(root)
    return Draft202012Validator({"$schema": root["$schema"], "$defs": root["$defs"], "$ref": f"#/$defs/{definition}"})


def first_problem(data: Any, definition: str) -> str | None:
    """None when ``data`` matches ``$defs/<definition>``; else one line: the JSON path of the
    most relevant problem (jsonschema's best_match) and what is wrong there."""
    error = best_match(validator(definition).iter_errors(data))
    if error is None:
        return None
    message = " ".join(error.message.split())
    if len(message) > _MESSAGE_CHARS:
        message = message[: _MESSAGE_CHARS - 1] + "…"
    return f"{error.json_path}: {message}"


def validate_submission(data: Any) -> None:
    """Raise BenchmarkError (one line) unless ``data`` is a submission entry file
    (``leaderboard/entries/<method>.json``, ``$defs/submission``) with no two cells of the
    same (task, method, seed)."""
    problem = first_problem(data, "submission")
    if problem is None:
        seen: set[tuple[str, str, int]] = set()
        for i, cell in enumerate(data["cells"]):
            key = (cell["task"]["id"], cell["method"], cell["seed"])
            if key in seen:
                problem = f"$.cells[{i}]: a second cell of task {key[0]}, method {key[1]}, seed {key[2]}"
                break
            seen.add(key)
    if problem is not None:
        raise BenchmarkError(f"not a submission entry of schema {SUBMISSION_SCHEMA_VERSION}: {problem}")
