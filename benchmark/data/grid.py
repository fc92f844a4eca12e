"""Task grids a suite can return: MIU's protocol over one dataset."""

from __future__ import annotations

from typing import Sequence

from benchmark.source import DatasetSource
from benchmark.task import Task


def miu_grid(source: DatasetSource, forget_group: int, fractions: Sequence[float] = (0.1, 0.5, 0.9),
             default_fraction: float | None = None) -> list[Task]:
    """MIU's protocol: forget a share r of g*'s TRAIN rows (skew 1.0), and a uniform forget set
    of the same size, for each r; the default benchmark runs the two of ``default_fraction``."""
    return [Task(source, forget_group, r, "group", skew, default=r == default_fraction) for r in fractions for skew in (1.0, "uniform")]
