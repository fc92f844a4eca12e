"""Per-sample predictions of a finished model, saved beside each result file so that every
non-adversarial metric can be recomputed offline (``unlearn-bench rescore``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

PARTS = ("retain", "forget", "val", "test")
_NORM = "norm_std:"


@dataclass(frozen=True)
class Predictions:
    """Rows of RETAIN, FORGET, VAL and TEST: class probabilities, target, attribute, group,
    the part each row belongs to (an index into PARTS) and its row index in its split.

    Also what the model-internal metrics need: penultimate ``features`` (float16) of a fixed
    TEST subset with their groups (``feature_groups``), and per norm layer the standard
    deviation of each input channel over TEST (``norm_std``)."""

    probs: np.ndarray  # float32 [N, C]
    y: np.ndarray
    a: np.ndarray
    g: np.ndarray
    part: np.ndarray  # uint8 index into PARTS
    index: np.ndarray
    num_groups: int
    num_attributes: int
    forget_group: int
    features: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float16))
    feature_groups: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    norm_std: dict[str, np.ndarray] = field(default_factory=dict)

    def mask(self, part: str) -> np.ndarray:
        return self.part == PARTS.index(part)

    @property
    def correct(self) -> np.ndarray:
        return self.probs.argmax(axis=1) == self.y

    def save(self, path: Path) -> None:
        """Into ``path`` (an .npz); the store makes it atomic and records its digest."""
        arrays = {k: getattr(self, k) for k in ("probs", "y", "a", "g", "part", "index", "features", "feature_groups")}
        scalars = {k: getattr(self, k) for k in ("num_groups", "num_attributes", "forget_group")}
        np.savez_compressed(path, **arrays, **scalars, **{_NORM + k: v for k, v in self.norm_std.items()})

    @classmethod
    def load(cls, path: Path) -> Predictions:
        with np.load(path) as z:
            norm = {k[len(_NORM) :]: z[k] for k in z.files if k.startswith(_NORM)}
            plain = {k: z[k] for k in z.files if not k.startswith(_NORM)}
        ints = ("num_groups", "num_attributes", "forget_group")
        return cls(**{k: (int(v) if k in ints else v) for k, v in plain.items()}, norm_std=norm)
