"""Tiny copies of the real datasets in their real on-disk formats, generated for the tests.

Image i of an image fixture is a solid colour that encodes i (red = i % 256, green = i // 256),
so a test can tell which source row each cached row came from. Each dataset's rows are listed
as (code, y, a) per split as distributed; its writers lay them out as a Hub copy ('parquet':
files under data/, 'arrow': save_to_disk) or as the original release.
"""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import yaml
from PIL import Image

from tasks.adult import COLUMNS, NUMERIC, VOCABULARIES
from tasks.celeba import ATTRIBUTES
from tasks.cifar10 import CLASSES
from tasks.fairface import AGES, RACES
from tests.conftest import read_json

Rows = list[tuple[int, int, int]]


def coded_image(i: int, size: tuple[int, int] = (40, 30)) -> Image.Image:
    return Image.new("RGB", size, (i % 256, i // 256, 128))


def code_of(x: np.ndarray) -> int:
    """The index a cached uint8 [3, H, W] image encodes."""
    return int(x[0, 0, 0]) + 256 * int(x[1, 0, 0])


def hub_copy(root: Path, splits: dict[str, dict[str, list]], image_column: str, kind: str, features: Any = None) -> Path:
    """A Hub dataset's local copy: ``kind`` 'parquet' (files <split>-00000-of-00001.parquet
    under data/) or 'arrow' (save_to_disk). ``splits``: {split: {column: values}}; the image
    column holds PIL images."""
    import datasets

    dd = datasets.DatasetDict(
        {
            name: datasets.Dataset.from_dict(columns, features=features).cast_column(image_column, datasets.Image())
            if image_column in columns
            else datasets.Dataset.from_dict(columns, features=features)
            for name, columns in splits.items()
        }
    )
    root.mkdir(parents=True, exist_ok=True)
    if kind == "arrow":
        dd.save_to_disk(str(root))
    else:
        (root / "data").mkdir(exist_ok=True)
        for name, d in dd.items():
            d.to_parquet(str(root / "data" / f"{name}-00000-of-00001.parquet"))
    return root


def labelled_rows(n_per_group: int, groups: Sequence[tuple[int, int]], start: int = 0, seed: int = 0) -> Rows:
    """(code, y, a) rows: n_per_group of each (y, a), shuffled, codes from ``start``."""
    rows = [(y, a) for y, a in groups for _ in range(n_per_group)]
    order = np.random.default_rng(seed).permutation(len(rows))
    return [(start + i, *rows[j]) for i, j in enumerate(order)]


# --- Waterbirds and CelebA: y and a binary, the benchmark's splits as distributed -------------

FOUR_GROUPS = [(0, 0), (0, 1), (1, 0), (1, 1)]
FOUR_GROUP_ROWS = {
    "train": labelled_rows(6, FOUR_GROUPS, 0),
    "val": labelled_rows(3, FOUR_GROUPS, 100, 1),
    "test": labelled_rows(3, FOUR_GROUPS, 200, 2),
}


def waterbirds_hub(root: Path, kind: str) -> Path:
    names = {"train": "train", "val": "validation", "test": "test"}
    splits = {
        names[s]: {
            "image": [coded_image(c) for c, _, _ in rows],
            "label": [y for _, y, _ in rows],
            "place": [a for _, _, a in rows],
            "bird": [c % 7 for c, _, _ in rows],
        }
        for s, rows in FOUR_GROUP_ROWS.items()
    }
    return hub_copy(root, splits, "image", kind)


def waterbirds_release(root: Path) -> Path:
    lines = ["img_id,img_filename,y,split,place,place_filename"]
    for code, split in enumerate(("train", "val", "test")):
        for c, y, a in FOUR_GROUP_ROWS[split]:
            name = f"{c:03d}.Some_Bird/Some_Bird_{c:04d}.jpg"
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            coded_image(c).save(root / name, format="PNG")  # PNG bytes under .jpg, as lossless codes
            lines.append(f"{c},{name},{y},{code},{a},/b/bamboo_forest/{c}.jpg")
    (root / "metadata.csv").write_text("\n".join(lines) + "\n")
    return root


CELEBA_HUB_SPLITS = {"train": "train", "val": "valid", "test": "test"}


def celeba_attributes(code: int, y: int, a: int) -> dict[str, bool]:
    """All 40 attributes of a row: Blond_Hair = y, Male = a, the rest arbitrary."""
    values = {name: bool((code * 7 + k) % 3 == 0) for k, name in enumerate(ATTRIBUTES)}
    return {**values, "Blond_Hair": bool(y), "Male": bool(a)}


def celeba_hub(root: Path, kind: str, splits: dict[str, str] = CELEBA_HUB_SPLITS, drop: str = "") -> Path:
    """A Hub copy, its splits named by ``splits``, without the attribute ``drop``."""
    columns = {}
    for split, rows in FOUR_GROUP_ROWS.items():
        table = {"image": [coded_image(c, (36, 44)) for c, _, _ in rows], "celeb_id": [c % 11 for c, _, _ in rows]}
        for name in (n for n in ATTRIBUTES if n != drop):
            table[name] = [celeba_attributes(c, y, a)[name] for c, y, a in rows]
        columns[splits[split]] = table
    return hub_copy(root, columns, "image", kind)


def celeba_release(root: Path) -> Path:
    codes = {"train": 0, "val": 1, "test": 2}
    rows = [(c, y, a, split) for split, split_rows in FOUR_GROUP_ROWS.items() for c, y, a in split_rows]
    (root / "img_align_celeba").mkdir(parents=True)
    for c, *_ in rows:
        coded_image(c, (36, 44)).save(root / "img_align_celeba" / f"{c + 1:06d}.jpg", format="PNG")  # lossless codes
    # the real files list the images in order; shuffled here, so that rows are joined by name
    shuffled = [rows[i] for i in np.random.default_rng(5).permutation(len(rows))]
    lines = [str(len(rows)), " ".join(ATTRIBUTES) + " "]
    for c, y, a, _ in shuffled:
        values = celeba_attributes(c, y, a)
        lines.append(f"{c + 1:06d}.jpg" + "".join(f" {1 if values[n] else -1:2d}" for n in ATTRIBUTES))  # "-1  1" spacing
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    partition = [f"{c + 1:06d}.jpg {codes[split]}" for c, _, _, split in reversed(rows)]
    (root / "list_eval_partition.txt").write_text("\n".join(partition) + "\n")
    return root


# --- FairFace: 9 ages x 7 races; distributed as train and validation ---------------------------

# g* = (age 20-29, Black) = 23, and a handful of other (age, race) cells: every race, most ages
FAIRFACE_GROUPS = [(3, 2), (0, 0), (1, 3), (3, 0), (5, 5), (8, 6), (4, 1), (2, 4), (7, 2)]
FAIRFACE_ROWS = {"train": labelled_rows(10, FAIRFACE_GROUPS, 0), "validation": labelled_rows(3, FAIRFACE_GROUPS, 300, 1)}


def fairface_hub(root: Path, kind: str, splits: Sequence[str] = ("train", "validation"), offset: int = 0,
                 race_names: Sequence[str] = RACES) -> Path:
    """A Hub copy with class labels; ``race_names`` orders the race classes, ``offset`` shifts the image codes."""
    import datasets

    features = datasets.Features({
        "image": datasets.Image(),
        "age": datasets.ClassLabel(names=list(AGES)),
        "gender": datasets.ClassLabel(names=["Male", "Female"]),
        "race": datasets.ClassLabel(names=list(race_names)),
        "service_test": datasets.Value("bool"),
    })
    columns = {
        split: {
            "image": [coded_image(c + offset) for c, _, _ in FAIRFACE_ROWS[split]],
            "age": [y for _, y, _ in FAIRFACE_ROWS[split]],
            "gender": [c % 2 for c, _, _ in FAIRFACE_ROWS[split]],
            "race": [list(race_names).index(RACES[a]) for _, _, a in FAIRFACE_ROWS[split]],
            "service_test": [c % 3 == 0 for c, _, _ in FAIRFACE_ROWS[split]],
        }
        for split in splits
    }
    return hub_copy(root, columns, "image", kind, features=features)


def fairface_release(root: Path) -> Path:
    files = {"train": ("fairface_label_train.csv", "train"), "validation": ("fairface_label_val.csv", "val")}
    for split, (csv, folder) in files.items():
        (root / folder).mkdir(parents=True)
        lines = ["file,age,gender,race,service_test"]
        for c, y, a in FAIRFACE_ROWS[split]:
            coded_image(c).save(root / folder / f"{c + 1}.jpg", format="PNG")  # lossless codes under .jpg
            lines.append(f"{folder}/{c + 1}.jpg,{AGES[y]},{'Male' if c % 2 else 'Female'},{RACES[a]},{c % 3 == 0}")
        (root / csv).write_text("\n".join(lines) + "\n")
    return root


# --- CIFAR-10: the class is the group; distributed as train and test ----------------------------

CIFAR_ROWS = {"train": labelled_rows(6, [(y, 0) for y in range(10)], 0), "test": labelled_rows(3, [(y, 0) for y in range(10)], 100, 1)}
PATTERN = (np.arange(32)[:, None] * 7 + np.arange(32)[None, :]).astype(np.uint8)  # blue = 7 row + col


def cifar_image(code: int) -> np.ndarray:
    """uint8 [32, 32, 3]: red and green encode ``code``; blue tells rows from columns."""
    x = np.array(coded_image(code, (32, 32)))
    x[:, :, 2] = PATTERN
    return x


def cifar_hub(root: Path, kind: str, splits: Sequence[str] = ("train", "test"), label: str = "label",
              labels: int | None = None) -> Path:
    """A Hub copy; ``label`` names the label column, ``labels`` (a plain int column) replaces every label."""
    import datasets

    features = datasets.Features({"img": datasets.Image(), label: datasets.ClassLabel(names=list(CLASSES))})
    columns = {
        s: {"img": [Image.fromarray(cifar_image(c)) for c, _, _ in CIFAR_ROWS[s]],
            label: [y if labels is None else labels for _, y, _ in CIFAR_ROWS[s]]}
        for s in splits
    }
    hub_copy(root, columns, "img", kind, features=features if labels is None else None)
    if kind == "parquet":  # the Hub's own layout: plain_text/<split>-00000-of-00001.parquet
        (root / "data").rename(root / "plain_text")
    return root


def cifar_release(root: Path) -> Path:
    """The python batches under ``root``/cifar-10-batches-py."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    train = CIFAR_ROWS["train"]

    def batch(rows: Rows, name: str) -> None:
        data = np.stack([cifar_image(c).transpose(2, 0, 1).reshape(3072) for c, _, _ in rows])
        content = {b"batch_label": name.encode(), b"labels": [y for _, y, _ in rows], b"data": data,
                   b"filenames": [f"{c}.png".encode() for c, _, _ in rows]}
        (folder / name).write_bytes(pickle.dumps(content, protocol=2))

    for i in range(5):
        batch(train[12 * i : 12 * (i + 1)], f"data_batch_{i + 1}")
    batch(CIFAR_ROWS["test"], "test_batch")
    meta = {b"num_cases_per_batch": 10000, b"label_names": [c.encode() for c in CLASSES], b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return root


# --- Adult: table rows; UCI's adult.data and adult.test, or the Hub's one split -------------------

LOW = {"age": 20, "fnlwgt": 10000, "education-num": 1, "capital-gain": 0, "capital-loss": 0, "hours-per-week": 10}
HIGH = {"age": 70, "fnlwgt": 510000, "education-num": 16, "capital-gain": 10000, "capital-loss": 2000, "hours-per-week": 90}
# hand-made records (numeric values between or beyond TRAIN's LOW..HIGH, which every copy's TRAIN holds)
HALF = dict(age=45, workclass="Self-emp-inc", fnlwgt=260000, education="Masters", **{"education-num": 16},
            **{"marital-status": "Never-married"}, occupation="?", relationship="Wife", race="Black", sex="Female",
            **{"capital-gain": 2500, "capital-loss": 0, "hours-per-week": 50, "native-country": "Holand-Netherlands"},
            income=">50K")
OUTSIDE = dict(HALF, age=95, fnlwgt=10000, **{"hours-per-week": 5, "capital-loss": 4000}, workclass="?",
               **{"native-country": "?"}, sex="Male", income="<=50K", occupation="Armed-Forces")


def adult_records(n: int, seed: int) -> list[dict]:
    """n records, group g = 2y + a equally often; numeric values at LOW, HIGH or between (a
    third of the rows at each end)."""
    rng = np.random.default_rng(seed)
    groups = rng.permutation(np.arange(n) % 4)
    rows = []
    for i, g in enumerate(groups):
        row = {}
        for c in NUMERIC:
            row[c] = [LOW[c], HIGH[c], int(rng.integers(LOW[c], HIGH[c] + 1))][i % 3]
        for j, c in enumerate(VOCABULARIES):
            vocab = VOCABULARIES[c]
            row[c] = "?" if c in ("workclass", "occupation", "native-country") and (i + j) % 9 == 0 else vocab[(i * 5 + j) % len(vocab)]
        row["sex"] = ["Female", "Male"][g % 2]
        row["income"] = ["<=50K", ">50K"][g // 2]
        rows.append(row)
    return rows


ADULT_DATA = [HALF] + adult_records(47, 0)  # adult.data, or the Hub's one split
ADULT_TEST = [HALF, OUTSIDE] + adult_records(22, 1)  # adult.test


def uci_line(row: dict, test: bool = False) -> str:
    values = [str(row[c]) for c in COLUMNS]
    if test:
        values[-1] += "."
    return ", ".join(values)


def adult_uci(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "adult.data").write_text("\n".join(uci_line(r) for r in ADULT_DATA) + "\n\n")
    (root / "adult.test").write_text("|1x3 Cross validator\n" + "\n".join(uci_line(r, True) for r in ADULT_TEST) + "\n")
    (root / "adult.names").write_text("| This data was extracted from the census bureau database\n")
    return root


def adult_uci_gz(root: Path) -> Path:
    """``adult_uci`` with adult.data and adult.test gzipped, as the package ships them."""
    adult_uci(root)
    for name in ("adult.data", "adult.test"):
        (root / f"{name}.gz").write_bytes(gzip.compress((root / name).read_bytes(), mtime=0))
        (root / name).unlink()
    return root


def adult_hub(root: Path, kind: str, drop: str = "", split: str = "train") -> Path:
    """adult.data in Hub column names: 'csv' a clone of the Hub repository, 'converted' the
    Hub's parquet conversion today (default/train/0000.parquet), 'legacy' its older one, else
    ``hub_copy``'s kinds; without the column ``drop``, its one split named ``split``."""
    import pandas as pd

    frame = pd.DataFrame({c.replace("-", "."): [r[c] for r in ADULT_DATA] for c in COLUMNS if c != drop})
    files = {"csv": "adult.csv", "converted": "default/train/0000.parquet",
             "legacy": "scikit-learn--adult-census-income/csv-train.parquet"}
    if kind not in files:
        return hub_copy(root, {split: frame.to_dict(orient="list")}, "", kind)
    file = root / files[kind]
    file.parent.mkdir(parents=True)
    if kind == "csv":
        frame.to_csv(file, index=False)
    else:
        frame.to_parquet(file)
    return root


# --- running the benchmark ------------------------------------------------------------------------

# the cheapest scorecard that still runs every metric
TINY_METRICS = {"mi_rows": 12, "attacks": {"rows": 8, "square_queries": 5, "aa_steps": 2, "pgd_steps": 2}}


def run_tiny_benchmark(cli, tmp_path: Path, task: str, copy: Path, methods: list[str]) -> dict:
    """Run ``methods`` on ``task`` (one epoch each, seed 0, one worker) with its dataset read
    from ``copy`` through ``--data``; the leaderboard it writes."""
    dataset = task.split("/")[0]
    config = tmp_path / "c.yaml"
    hparams = {m: {"epochs": 1} for m in methods if m != "original"}
    config.write_text(yaml.safe_dump({"recipe": {"epochs": 1}, "seeds": [0], "hparams": hparams, "metrics": TINY_METRICS}))
    code, _, err = cli("run", "--config", str(config), "--tasks", task, "--data", f"{dataset}={copy}",
                       "--methods", *methods, "--workers", "1")
    assert code == 0, err
    return read_json(Path("leaderboard/leaderboard.json"))
