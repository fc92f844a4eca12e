"""FairFace (Kärkkäinen & Joo, 2021): faces balanced over race, y = age bin, a = race.

y: 9 age bins in the Hub's order (0 "0-2", 1 "3-9", 2 "10-19", 3 "20-29", 4 "30-39",
5 "40-49", 6 "50-59", 7 "60-69", 8 "more than 70"); a: 7 races in the Hub's order (0 East Asian,
1 Indian, 2 Black, 3 White, 4 Middle Eastern, 5 Latino_Hispanic, 6 Southeast Asian). Groups
g = 7y + a (63 of them); g* = 3 * 7 + 2 = 23, age 20-29 and Black (MIU; MIU's own csv order
differs, REFERENCE §2).

Splits follow MIU: FairFace's train split is divided 90/10 (seeded, ``seeded_split``) into
TRAIN and VAL, and FairFace's validation split is TEST. ``data check`` compares the splits as
distributed (train 86,744, validation 10,954 rows) with the published totals.

Reads, in this order of preference:

- the original release folder: ``fairface_label_train.csv`` and ``fairface_label_val.csv``
  (columns file, age, gender, race, service_test; age and race as strings such as "20-29"
  and "Latino_Hispanic"; file such as "train/1.jpg", relative to the folder) beside the
  image folders ``train/`` and ``val/``;
- a local copy of the Hub dataset ``HuggingFaceM4/FairFace`` (parquet files or a
  ``save_to_disk`` folder; splits train / validation; columns image, age and race as class
  labels, gender, service_test). A copy of the whole Hub repository holds both paddings in
  folders ``0.25/`` and ``1.25/``: the ``config`` field picks one;
- the Hub itself when no path is given, with config ``config`` ('0.25' or '1.25', the
  padding around the face).

String labels (the release's, or a copy whose columns are strings) and class labels named in
another order are mapped to the Hub's integer order; an unknown label is an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from benchmark import (
    BenchmarkError, existing_files, holds, labels, Layout, miu_grid, ModelSpec, open_hub, Recipe, seeded_split, Task,
)
from tasks.common import ImageSource, Records

AGES = ("0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "more than 70")
RACES = ("East Asian", "Indian", "Black", "White", "Middle Eastern", "Latino_Hispanic", "Southeast Asian")
CONFIGS = ("0.25", "1.25")
#: the splits as distributed, and the release's label file of each
RELEASE_FILES = {"train": "fairface_label_train.csv", "validation": "fairface_label_val.csv"}
RELEASE_COLUMNS = ("file", "age", "race")
#: MIU's protocol: FairFace's train split 90/10 into TRAIN/VAL (seeded), its validation is TEST
TRAIN_SHARE, SPLIT_SEED = 0.9, 0
FORGET_GROUP = AGES.index("20-29") * len(RACES) + RACES.index("Black")  # 23


@dataclass(frozen=True)
class FairFaceSource(ImageSource):
    path: str | None = None
    preset: str = "quick"
    config: str = "0.25"
    name: str = "fairface"

    hub_id = "HuggingFaceM4/FairFace"
    num_classes, num_attributes = len(AGES), len(RACES)
    class_names = AGES
    attribute_names = RACES
    published_counts = {"train": 86744, "validation": 10954}
    layouts = (
        "the original FairFace folder (fairface_label_train.csv and fairface_label_val.csv with columns file, age, "
        "gender, race, service_test, beside the image folders train/ and val/ they name), or a local copy of the Hub "
        f"dataset {hub_id} (parquet files, in a folder 0.25/ or 1.25/ or not, or a save_to_disk folder; splits "
        "train/validation; columns image, age, race)"
    )
    presets = {
        # a CPU budget
        "quick": (ModelSpec(backbone="test_resnet", image_size=64), Recipe(epochs=3, batch_size=128, lr=0.05, warmup_epochs=1)),
        # MIU: ImageNet ResNet-18 at 224 px, 30 epochs, SGD 0.9, batch 32, lr 0.1, wd 1e-4,
        # 2 warm-up epochs then cosine, best-validation weights
        "paper": (
            ModelSpec(backbone="resnet18", image_size=224, pretrained="timm"),
            Recipe(epochs=30, batch_size=32, lr=0.1, weight_decay=1e-4, warmup_epochs=2, schedule="cosine", select_best_on_val=True),
        ),
    }

    def __post_init__(self) -> None:
        config = self.config
        try:  # YAML reads 0.25 as a number
            config = f"{float(config):.2f}"
        except (TypeError, ValueError):
            pass
        if config not in CONFIGS:
            raise BenchmarkError(f"fairface: config must be one of {', '.join(CONFIGS)} (the padding), not {self.config!r}")
        object.__setattr__(self, "config", config)

    def identity(self) -> dict[str, Any]:
        # the config decides the content from the Hub and from a copy of the whole repository
        return {**super().identity(), "config": self.config, "train_share": TRAIN_SHARE, "split_seed": SPLIT_SEED}

    def records(self) -> dict[str, Records]:
        dist = self.read()
        train, val = seeded_split(len(dist["train"].y), TRAIN_SHARE, SPLIT_SEED)
        full = dist["train"]
        return {
            "train": Records(_take(full.images, train), full.y[train], full.a[train]),
            "val": Records(_take(full.images, val), full.y[val], full.a[val]),
            "test": Records(_take(dist["validation"].images, None), dist["validation"].y, dist["validation"].a),
        }

    def readers(self) -> tuple[Layout, ...]:
        return Layout(holds(*RELEASE_FILES.values()), self._from_release), self.hub_copy()

    # --- the Hub (or a local copy of it) -------------------------------------------------

    def from_hub(self, root: Path | None) -> dict[str, Records]:
        if root is not None:
            if (root / self.config).is_dir():
                root = root / self.config
            else:
                others = [c for c in CONFIGS if (root / c).is_dir()]
                if others:
                    raise BenchmarkError(f"{self.name}: {root} holds the config(s) {others}, not {self.config!r} (set the config)")
        data = open_hub(self.hub_id, root, list(RELEASE_FILES), config=self.config, image_column="image")
        out = {}
        for split, d in data.items():
            where = f"{self.name} {split}"
            if "image" not in d.column_names:
                raise BenchmarkError(f"{where}: column 'image' missing; found {d.column_names}")
            y = _hub_codes(d, "age", AGES, where)
            a = _hub_codes(d, "race", RACES, where)
            out[split] = Records(d.select_columns(["image"]), y, a)  # the images stay undecoded, unread
        return out

    # --- the original release --------------------------------------------------------------

    def _from_release(self, root: Path) -> dict[str, Records]:
        import pandas as pd

        out = {}
        for split, name in RELEASE_FILES.items():
            file = root / name
            if not file.is_file():
                raise BenchmarkError(f"{self.name}: {file} missing (the {split} split)")
            try:
                table = pd.read_csv(file, dtype=str, keep_default_na=False)
            except (OSError, UnicodeDecodeError, ValueError, pd.errors.ParserError) as err:
                raise BenchmarkError(f"{file} is malformed ({type(err).__name__}: {err})") from None
            missing = [c for c in RELEASE_COLUMNS if c not in table.columns]
            if missing:
                raise BenchmarkError(f"{file} is malformed: column(s) {missing} missing; found {list(table.columns)}")
            if len(table) == 0:
                raise BenchmarkError(f"{file} is malformed: no rows")
            y = _codes(table["age"].to_numpy(), AGES, f"{file} age")
            a = _codes(table["race"].to_numpy(), RACES, f"{file} race")
            out[split] = Records(existing_files(root, table["file"].tolist()), y, a)
        return out


def _norm(label: Any) -> str:
    return str(label).strip().replace("_", " ").casefold()


def _codes(values: Sequence[Any], known: Sequence[str], where: str) -> np.ndarray:
    """Label strings as indices of ``known`` (spaces and underscores alike, any case)."""
    index = {_norm(k): i for i, k in enumerate(known)}
    uniques, inverse = np.unique(np.asarray(values, dtype=str), return_inverse=True)
    unknown = [u for u in uniques.tolist() if _norm(u) not in index]
    if unknown:
        raise BenchmarkError(f"{where}: unknown label(s) {unknown[:5]}; expected one of {list(known)}")
    return np.asarray([index[_norm(u)] for u in uniques.tolist()], dtype=np.int64)[inverse.reshape(-1)]


def _hub_codes(d: Any, name: str, known: Sequence[str], where: str) -> np.ndarray:
    """A Hub label column in the Hub's order: class labels remapped by name, strings mapped,
    plain integers range-checked."""
    import datasets

    values = labels(d, name, where)
    feature = d.features[name]
    if values.dtype.kind in "OUS":
        return _codes(values, known, f"{where} {name}")
    if not np.issubdtype(values.dtype, np.integer):
        raise BenchmarkError(f"{where}: column {name!r} holds {values.dtype}, expected class labels")
    if isinstance(feature, datasets.ClassLabel):
        order = _codes(feature.names, known, f"{where} {name} class names")
        bad = (values < 0) | (values >= len(order))
        if bad.any():
            raise BenchmarkError(f"{where}: column {name!r} holds {int(values[bad][0])}, not a class of {feature.names}")
        return order[values]
    bad = (values < 0) | (values >= len(known))
    if bad.any():
        raise BenchmarkError(f"{where}: column {name!r} holds {int(values[bad][0])}; expected 0..{len(known) - 1} ({list(known)})")
    return values.astype(np.int64)


def _take(images: Any, rows: np.ndarray | None) -> Any:
    """The images of ``rows`` (all when None): file paths, or a Hub dataset's lazy image column."""
    import datasets

    if isinstance(images, datasets.Dataset):
        return (images if rows is None else images.select(rows))["image"]
    return list(images) if rows is None else [images[i] for i in rows]


def tasks(**settings: Any) -> list[Task]:
    """MIU's grid on FairFace: g* = age 20-29 and Black (23), r in {0.1, 0.5, 0.9}, skew 1.0
    and uniform. Settings: ``path`` (a local copy), ``preset`` ('quick' or 'paper'),
    ``config`` ('0.25' or '1.25', the Hub's padding)."""
    return miu_grid(FairFaceSource(**settings), forget_group=FORGET_GROUP)
