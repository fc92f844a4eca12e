"""Content addresses: every cached artefact is named by a hash of what produced it."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any


def _plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return repr(obj)


def stable_hash(obj: Any, length: int = 16) -> str:
    """Hex digest of a canonical JSON rendering of ``obj`` (dataclasses, dicts, lists, scalars)."""
    text = json.dumps(_plain(obj), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]
