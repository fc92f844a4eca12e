"""Waterbirds (Sagawa et al., 2020): birds (y = 1 water bird) pasted on places (a = 1 water).

Groups g = 2y + a; g* = 2, the water bird on land (MIU). Reads, in this order of preference:
a local copy of the Hub dataset ``grodino/waterbirds`` (parquet or ``save_to_disk`` folder;
splits train/validation/test; columns image, label, place), the original release folder
(``metadata.csv`` with img_id, img_filename, y, split (0 train, 1 val, 2 test), place,
place_filename, beside the images), or the Hub itself when no path is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmark import BenchmarkError, column, existing_files, holds, Layout, miu_grid, ModelSpec, open_hub, Recipe, Task
from tasks.common import ImageSource, Records

SPLIT_CODES = {0: "train", 1: "val", 2: "test"}
HUB_SPLITS = {"train": "train", "val": "validation", "test": "test"}


@dataclass(frozen=True)
class WaterbirdsSource(ImageSource):
    path: str | None = None
    preset: str = "quick"
    name: str = "waterbirds"

    hub_id = "grodino/waterbirds"
    num_classes, num_attributes = 2, 2
    class_names = ("land bird", "water bird")
    attribute_names = ("land", "water")
    published_counts = {"train": [3498, 184, 56, 1057], "val": [467, 466, 133, 133], "test": [2255, 2255, 642, 642]}
    layouts = (
        "a local copy of the Hub dataset grodino/waterbirds (parquet files or a save_to_disk folder; splits "
        "train/validation/test; columns image, label, place), or the original folder with metadata.csv "
        "(img_id, img_filename, y, split, place, place_filename) and the images it names"
    )
    presets = {
        "quick": (ModelSpec(backbone="test_resnet", image_size=64), Recipe(epochs=6, batch_size=64, lr=0.05, warmup_epochs=1)),
        # MIU: ImageNet ResNet-18 at 224 px, 30 epochs, SGD 0.9, batch 32, lr 1e-2, wd 1e-3,
        # constant lr after 2 warm-up epochs, best-validation weights
        "paper": (
            ModelSpec(backbone="resnet18", image_size=224, pretrained="timm"),
            Recipe(epochs=30, batch_size=32, lr=1e-2, weight_decay=1e-3, warmup_epochs=2, schedule="constant", select_best_on_val=True),
        ),
    }

    def readers(self) -> tuple[Layout, ...]:
        return self.hub_copy(), Layout(holds("metadata.csv"), self._from_release)

    def from_hub(self, root: Path | None) -> dict[str, Records]:
        data = open_hub(self.hub_id, root, list(HUB_SPLITS.values()), image_column="image")
        out = {}
        for split, hub_split in HUB_SPLITS.items():
            d = data[hub_split]
            where = f"{self.name} {hub_split}"
            out[split] = Records(column(d, "image", where), _ints(column(d, "label", where)), _ints(column(d, "place", where)))
        return out

    def _from_release(self, root: Path) -> dict[str, Records]:
        import pandas as pd

        try:
            meta = pd.read_csv(root / "metadata.csv")
            meta = meta[["img_filename", "y", "split", "place"]]
        except (KeyError, ValueError, pd.errors.ParserError) as err:
            raise BenchmarkError(f"{root / 'metadata.csv'} is malformed ({err})") from None
        out = {}
        for code, split in SPLIT_CODES.items():
            rows = meta[meta["split"] == code]
            out[split] = Records(existing_files(root, rows["img_filename"].tolist()), _ints(rows["y"]), _ints(rows["place"]))
        return out


def _ints(values: Any) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype == bool:
        return array.astype(np.int64)
    if not np.issubdtype(array.dtype, np.integer):
        raise BenchmarkError(f"expected integer labels, got {array.dtype}")
    return array.astype(np.int64)


def tasks(**settings: Any) -> list[Task]:
    """MIU's grid on Waterbirds: g* = water bird on land (2), r in {0.1, 0.5, 0.9}, skew 1.0
    and uniform. Settings: ``path`` (a local copy), ``preset`` ('quick' or 'paper')."""
    return miu_grid(WaterbirdsSource(**settings), forget_group=2)
