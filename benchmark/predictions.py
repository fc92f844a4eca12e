"""Per-sample predictions of a finished model, saved beside each result file so that every
non-adversarial metric can be recomputed offline."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

PARTS = ("retain", "forget", "val", "test")


@dataclass(frozen=True)
class Predictions:
    """Rows of RETAIN, FORGET, VAL and TEST: class probabilities, target, attribute, group,
    the part each row belongs to (an index into PARTS) and its row index in its split."""

    probs: np.ndarray  # float32 [N, C]
    y: np.ndarray
    a: np.ndarray
    g: np.ndarray
    part: np.ndarray  # uint8 index into PARTS
    index: np.ndarray
    num_groups: int
    forget_group: int

    def mask(self, part: str) -> np.ndarray:
        return self.part == PARTS.index(part)

    @property
    def correct(self) -> np.ndarray:
        return self.probs.argmax(axis=1) == self.y

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez_compressed(
            tmp,
            probs=self.probs,
            y=self.y,
            a=self.a,
            g=self.g,
            part=self.part,
            index=self.index,
            num_groups=self.num_groups,
            forget_group=self.forget_group,
        )
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> Predictions:
        with np.load(path) as z:
            return cls(
                probs=z["probs"],
                y=z["y"],
                a=z["a"],
                g=z["g"],
                part=z["part"],
                index=z["index"],
                num_groups=int(z["num_groups"]),
                forget_group=int(z["forget_group"]),
            )
