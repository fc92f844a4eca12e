"""A task suite over a CSV table with group annotations: the worked example of
docs/writing-a-task.md.

The table has a header line, numeric feature columns, a label column (the target y, 0 or 1)
and an attribute column (the group attribute a, 0 or 1), so its groups are g = 2y + a. With no
``path`` it reads a synthetic table (``synthetic_csv``: 1,200 rows, seeded) whose smallest group
is g* = 2 (y = 1, a = 0); a ``path`` names your own CSV of that shape, whose label and
attribute columns ``label`` and ``attribute`` name. ``python csv_task.py table.csv`` writes the
synthetic table to a file.

TRAIN, VAL and TEST are a seeded 60/20/20 split of the rows. Each feature is scaled to [0, 1]
with TRAIN's minimum and maximum (clipped on VAL and TEST): the attacks search in [0, 1].
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark import BenchmarkError, DatasetWriter, miu_grid, ModelSpec, PresetSource, Recipe, Report, seeded_split, Task

FORGET_GROUP = 2  # y = 1, a = 0: the smallest group of the synthetic table
MLP = ModelSpec(backbone="mlp:64,32", image_size=0, mean=(), std=(), channels_last=False)


@dataclass(frozen=True)
class CsvSource(PresetSource):
    """A binary label and a binary attribute over numeric features, from a CSV file."""

    path: str | None = None  # None: the synthetic table
    preset: str = "quick"
    label: str = "label"
    attribute: str = "group"
    name: str = "csv_task"

    num_classes, num_attributes = 2, 2  # y and a are 0 or 1: groups g = 2y + a
    presets = {
        "quick": (MLP, Recipe(epochs=8, batch_size=64, lr=0.05, warmup_epochs=1)),
        "paper": (MLP, Recipe(epochs=30, batch_size=64, lr=0.05, warmup_epochs=2)),
    }
    # MIU's own default learning rate is too large for this small MLP
    method_settings = {"miu": {"lr": 0.01}}
    layouts = "a CSV file with a header line: numeric feature columns, a 0/1 label column and a 0/1 attribute column"

    def text(self) -> str:
        if self.path is None:
            return synthetic_csv()
        try:
            return Path(self.path).expanduser().read_text()
        except OSError as err:
            raise BenchmarkError(f"{self.name}: cannot read {self.path} ({err.strerror or err}); expected {self.layouts}") from None

    def features(self) -> list[str]:
        """The feature columns: every column of the header but the label and the attribute."""
        header = [c.strip() for c in self.text().partition("\n")[0].split(",")]
        return [c for c in header if c not in (self.label, self.attribute)]

    @property
    def model(self) -> ModelSpec:
        """The preset's MLP, as wide at the input as the table has features."""
        return dataclasses.replace(super().model, in_features=len(self.features()))

    @property
    def title(self) -> str:
        return f"CSV table ({Path(self.path).name if self.path else 'synthetic'})"

    def identity(self) -> dict[str, Any]:
        """The table's bytes (not where the file is) and the columns read from it."""
        digest = hashlib.sha256(self.text().encode()).hexdigest()[:16]
        return {"version": 1, "csv": digest, "label": self.label, "attribute": self.attribute}

    def table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(x float64 [N, D], y, a) from the CSV, checked: one error line for each fault."""
        where = f"{self.name}: {self.path or 'the synthetic table'}"
        try:
            frame = pd.read_csv(io.StringIO(self.text()), skipinitialspace=True)
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
            raise BenchmarkError(f"{where} is not a CSV table ({err}); expected {self.layouts}") from None
        for column in (self.label, self.attribute):
            if column not in frame.columns:
                raise BenchmarkError(f"{where} has no column {column!r}; columns: {', '.join(frame.columns)}")
            if not frame[column].isin([0, 1]).all():
                raise BenchmarkError(f"{where}: column {column!r} must hold only 0 and 1")
        x = frame[self.features()].apply(pd.to_numeric, errors="coerce")
        if x.isna().any().any():
            raise BenchmarkError(f"{where}: column {x.columns[x.isna().any()][0]!r} holds a value that is not a number")
        return x.to_numpy(np.float64), frame[self.label].to_numpy(np.int64), frame[self.attribute].to_numpy(np.int64)

    def write(self, out: DatasetWriter, report: Report) -> None:
        x, y, a = self.table()
        test, rest = seeded_split(len(y), 0.2, seed=0)  # 20% of the rows for TEST
        val, train = seeded_split(len(rest), 0.25, seed=1)  # a quarter of the rest (20%) for VAL
        splits = {"train": rest[train], "val": rest[val], "test": test}
        low, high = x[splits["train"]].min(axis=0), x[splits["train"]].max(axis=0)
        span = np.where(high > low, high - low, 1.0)
        for split, rows in splits.items():
            out.put(split, np.clip((x[rows] - low) / span, 0.0, 1.0).astype(np.float32), y[rows], a[rows])
            report(f"scaling {self.name}", len(rows), len(rows))
        out.finish(
            num_classes=self.num_classes,
            num_attributes=self.num_attributes,
            class_names=(f"{self.label}=0", f"{self.label}=1"),
            attribute_names=(f"{self.attribute}=0", f"{self.attribute}=1"),
            augment="none",
        )


@functools.cache
def synthetic_csv(rows: int = 1200, seed: int = 0) -> str:
    """A table of five features, ``label`` and ``group``: a = 1 for half the rows, y = 1 for
    20% of a = 0 and 60% of a = 1 (groups of about 40%, 20%, 10% and 30%). The label moves
    x1 and x2, the attribute x3 (so a model can tell the groups apart), both together x4."""
    rng = np.random.default_rng(seed)
    a = (rng.random(rows) < 0.5).astype(np.int64)
    y = (rng.random(rows) < np.where(a == 1, 0.6, 0.2)).astype(np.int64)
    x = rng.normal(size=(rows, 5))
    x[:, 0] += 1.5 * y
    x[:, 1] += 0.8 * y
    x[:, 2] += 1.2 * a
    x[:, 3] += 1.0 * y * a
    lines = ["x1,x2,x3,x4,x5,label,group"]
    lines += [",".join([*(f"{v:.3f}" for v in row), str(yi), str(ai)]) for row, yi, ai in zip(x, y, a)]
    return "\n".join(lines) + "\n"


def tasks(path: str | None = None, preset: str = "quick", label: str = "label", attribute: str = "group") -> list[Task]:
    """MIU's grid on the table: forget r = 0.1, 0.5 or 0.9 of g*'s TRAIN rows, at skew 1.0 and
    uniform. Settings: ``path`` (``--data csv_task=FILE``), ``preset`` (``--preset``), and any of
    them, ``label`` and ``attribute`` under the config's ``datasets: {csv_task: ...}``. None of
    the tasks is in the default benchmark: name the suite with ``--tasks``."""
    return miu_grid(CsvSource(path, preset, label, attribute), FORGET_GROUP)


if __name__ == "__main__":  # python csv_task.py table.csv
    Path(sys.argv[1]).write_text(synthetic_csv())
