"""CelebA (Liu et al., 2015): celebrity faces, y = Blond_Hair, a = Male.

Groups g = 2y + a: 0 not blond/female, 1 not blond/male, 2 blond/female, 3 blond/male (g*,
MIU's forget group, the rarest: 1,387 of 162,770 TRAIN rows). Splits are the official ones
(train / val / test of ``list_eval_partition.txt``). Images are decoded with the shorter side
resized to the model's size (Resize(224) + CenterCrop(224) at 224 px; REFERENCE §3), not
256/224 of it like the other datasets.

Reads, in this order of preference:

- the original release folder: ``img_align_celeba/`` (000001.jpg ...; the Kaggle copy's
  doubled ``img_align_celeba/img_align_celeba/`` too), ``list_attr_celeba.txt`` (line 1 the
  number of images, line 2 the 40 attribute names, then one row per image: its file name and
  40 values of 1 / -1, separated by any whitespace) and ``list_eval_partition.txt`` (rows
  "000001.jpg 0": 0 train, 1 val, 2 test);
- a local copy of the Hub dataset ``flwrlabs/celeba`` (config ``img_align+identity+attr``;
  parquet files or a ``save_to_disk`` folder; splits train / valid / test; columns image,
  celeb_id and the 40 attributes as bool columns named as in ``list_attr_celeba.txt``);
- the Hub itself when no path is given.

Records are lazy enough for the 202,599 images: file paths for the release, the undecoded
image column for the Hub; images are decoded once, into the cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmark import BenchmarkError, column, existing_files, holds, labels, Layout, miu_grid, ModelSpec, open_hub, Recipe, Task
from tasks.common import ImageSource, Records

#: the 40 attributes, in the order of list_attr_celeba.txt (the Hub's bool columns)
ATTRIBUTES = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs", "Big_Lips", "Big_Nose",
    "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows", "Chubby", "Double_Chin", "Eyeglasses",
    "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones", "Male", "Mouth_Slightly_Open", "Mustache",
    "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline", "Rosy_Cheeks",
    "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat", "Wearing_Lipstick",
    "Wearing_Necklace", "Wearing_Necktie", "Young",
)  # fmt: skip
TARGET, ATTRIBUTE = "Blond_Hair", "Male"
ATTR_FILE, PARTITION_FILE, IMAGE_DIR = "list_attr_celeba.txt", "list_eval_partition.txt", "img_align_celeba"
SPLIT_CODES = {"0": "train", "1": "val", "2": "test"}
HUB_SPLITS = {"train": "train", "val": "valid", "test": "test"}
HUB_CONFIG = "img_align+identity+attr"


@dataclass(frozen=True)
class CelebASource(ImageSource):
    path: str | None = None
    preset: str = "quick"
    name: str = "celeba"

    hub_id = "flwrlabs/celeba"
    num_classes, num_attributes = 2, 2
    class_names = ("not blond", "blond")
    attribute_names = ("female", "male")
    resize_ratio = 1.0  # Resize(224) + CenterCrop(224), REFERENCE §3
    published_counts = {
        "train": [71629, 66874, 22880, 1387],
        "val": [8535, 8276, 2874, 182],
        "test": [9767, 7535, 2480, 180],
    }
    layouts = (
        f"the original CelebA folder ({IMAGE_DIR}/ with 000001.jpg ..., {ATTR_FILE}: the image count, the 40 "
        f"attribute names, then rows of a file name and 40 values of 1/-1; {PARTITION_FILE}: rows of a file name "
        f"and 0 train / 1 val / 2 test), or a local copy of the Hub dataset {hub_id} (config {HUB_CONFIG}; parquet "
        "files or a save_to_disk folder; splits train/valid/test; columns image, Blond_Hair and Male as bool)"
    )
    presets = {
        # a CPU budget: CelebA is 34x Waterbirds, so two epochs
        "quick": (ModelSpec(backbone="test_resnet", image_size=64), Recipe(epochs=2, batch_size=128, lr=0.05, warmup_epochs=1)),
        # MIU: ImageNet ResNet-18 at 224 px, 30 epochs, SGD 0.9, batch 32, lr 1e-2, wd 1e-4,
        # 2 warm-up epochs then cosine, best-validation weights
        "paper": (
            ModelSpec(backbone="resnet18", image_size=224, pretrained="timm"),
            Recipe(epochs=30, batch_size=32, lr=1e-2, weight_decay=1e-4, warmup_epochs=2, schedule="cosine", select_best_on_val=True),
        ),
    }

    def readers(self) -> tuple[Layout, ...]:
        return Layout(holds(ATTR_FILE, PARTITION_FILE, IMAGE_DIR), self._from_release), self.hub_copy()

    # --- the Hub (or a local copy of it) -------------------------------------------------

    def from_hub(self, root: Path | None) -> dict[str, Records]:
        data = open_hub(self.hub_id, root, list(HUB_SPLITS.values()), config=HUB_CONFIG, image_column="image")
        out = {}
        for split, hub_split in HUB_SPLITS.items():
            d = data[hub_split]
            where = f"{self.name} {hub_split}"
            images = column(d, "image", where)  # lazy: read while decoding
            y = _binary(labels(d, TARGET, where), f"{where} {TARGET}")
            a = _binary(labels(d, ATTRIBUTE, where), f"{where} {ATTRIBUTE}")
            out[split] = Records(images, y, a)
        return out

    # --- the original release --------------------------------------------------------------

    def _from_release(self, root: Path) -> dict[str, Records]:
        for file in (ATTR_FILE, PARTITION_FILE):
            if not (root / file).is_file():
                raise BenchmarkError(f"{self.name}: {root / file} missing")
        images = root / IMAGE_DIR
        if (images / IMAGE_DIR).is_dir():  # the Kaggle copy nests the folder
            images = images / IMAGE_DIR
        if not images.is_dir():
            raise BenchmarkError(f"{self.name}: image folder {images} missing")
        names, y, a = _read_attributes(root / ATTR_FILE)
        split_of = _read_partition(root / PARTITION_FILE)
        missing = next((n for n in names if n not in split_of), None)
        if missing is not None:
            raise BenchmarkError(f"{root / PARTITION_FILE} has no row for {missing} (listed in {ATTR_FILE})")
        if len(split_of) != len(names):
            listed = set(names)
            extra = next(n for n in split_of if n not in listed)
            raise BenchmarkError(f"{root / PARTITION_FILE} lists {extra}, which {ATTR_FILE} does not")
        codes = np.array([split_of[n] for n in names])
        out = {}
        for code, split in SPLIT_CODES.items():
            rows = np.flatnonzero(codes == code)
            if len(rows) == 0:
                raise BenchmarkError(f"{root / PARTITION_FILE}: split {split} (code {code}) has no rows")
            out[split] = Records(existing_files(images, [names[i] for i in rows]), y[rows], a[rows])
        return out


def _read_attributes(file: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """File names, Blond_Hair and Male (0/1) of list_attr_celeba.txt."""

    def malformed(why: str) -> BenchmarkError:
        return BenchmarkError(f"{file} is malformed: {why}")

    try:
        lines = file.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise malformed(f"cannot read it as text ({type(err).__name__})") from None
    if len(lines) < 2:
        raise malformed("expected the image count on line 1 and the attribute names on line 2")
    try:
        count = int(lines[0].strip())
    except ValueError:
        raise malformed(f"line 1 should be the number of images, not {lines[0][:40]!r}") from None
    header = lines[1].split()
    if TARGET not in header or ATTRIBUTE not in header:
        raise malformed(f"line 2 should name the attributes, {TARGET} and {ATTRIBUTE} among them; found {lines[1][:80]!r}")
    t, m, width = header.index(TARGET) + 1, header.index(ATTRIBUTE) + 1, len(header) + 1
    names, y, a = [], [], []
    values = {"1": 1, "-1": 0}
    for number, line in enumerate(lines[2:], start=3):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != width:
            raise malformed(f"line {number} has {len(parts)} fields, expected a file name and {width - 1} values")
        try:
            y.append(values[parts[t]])
            a.append(values[parts[m]])
        except KeyError:
            raise malformed(f"line {number}: values must be 1 or -1, found {parts[t]!r} / {parts[m]!r}") from None
        names.append(parts[0])
    if len(names) != count:
        raise malformed(f"line 1 announces {count} images, but {len(names)} rows follow")
    if len(set(names)) != len(names):
        raise malformed("a file name is listed twice")
    return names, np.asarray(y, dtype=np.int64), np.asarray(a, dtype=np.int64)


def _read_partition(file: Path) -> dict[str, str]:
    """{file name: split code '0' | '1' | '2'} of list_eval_partition.txt."""
    try:
        lines = file.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise BenchmarkError(f"{file} is malformed: cannot read it as text ({type(err).__name__})") from None
    out: dict[str, str] = {}
    for number, line in enumerate(lines, start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or parts[1] not in SPLIT_CODES:
            raise BenchmarkError(f"{file} is malformed: line {number} should be a file name and 0, 1 or 2, not {line[:60]!r}")
        out[parts[0]] = parts[1]
    return out


def _binary(values: np.ndarray, where: str) -> np.ndarray:
    """0/1 from bool (the Hub's), 0/1 or 1/-1 integers."""
    if values.dtype == bool:
        return values.astype(np.int64)
    if np.issubdtype(values.dtype, np.integer):
        seen = set(np.unique(values).tolist())
        if seen <= {0, 1}:
            return values.astype(np.int64)
        if seen <= {-1, 1}:
            return (values == 1).astype(np.int64)
    raise BenchmarkError(f"{where}: expected bool values, got {values.dtype} {sorted(set(values.tolist()))[:5]}")


def tasks(**settings: Any) -> list[Task]:
    """MIU's grid on CelebA: g* = blond male (3), r in {0.1, 0.5, 0.9}, skew 1.0 and uniform.
    Settings: ``path`` (a local copy), ``preset`` ('quick' or 'paper')."""
    return miu_grid(CelebASource(**settings), forget_group=3)
