"""The real datasets in every layout users hold them (Hub parquet copy, save_to_disk copy, the
original release, ...): one contract, parametrised over datasets x layouts and run through the
registry and the CLI; then what is special to each dataset."""

from __future__ import annotations

import dataclasses
import functools
import gzip
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch

from benchmark import BenchmarkError, DatasetSource, GroupDataset
from benchmark.model import build_model
from benchmark.registry import load_suite
from benchmark.report.render import _task_title
from tasks.adult import AdultSource, FEATURE_NAMES, NUM_FEATURES, NUMERIC, VOCABULARIES, hub_splits
from benchmark import proportional_sample, seeded_split
from tasks.fairface import RACES
from tests.fixtures import (
    ADULT_DATA, ADULT_TEST, CIFAR_ROWS, FAIRFACE_ROWS, FOUR_GROUP_ROWS, HALF, OUTSIDE, adult_hub, adult_uci, adult_uci_gz,
    celeba_hub, celeba_release, cifar_hub, cifar_image, cifar_release, code_of, fairface_hub, fairface_release,
    run_tiny_benchmark, uci_line, waterbirds_hub, waterbirds_release,
)

Writer = Callable[[Path], Path]


@dataclass(frozen=True)
class Copy:
    """A dataset's fixture in one layout, and what the benchmark must make of it."""

    write: Writer
    rows: dict[str, list[tuple]]  # TRAIN/VAL/TEST: (code, y, a) per image, (y, a) per table row
    sizes: tuple[int, int, int]
    check: tuple[str, ...]  # in what `data check` prints


@dataclass(frozen=True)
class Broken:
    """A damaged copy: reading it fails on one line naming every fragment and the layouts."""

    name: str
    write: Writer
    fragments: tuple[str, ...]


@dataclass(frozen=True)
class Case:
    name: str
    copies: dict[str, Copy]
    ordered: bool  # rows come in the copy's order (CelebA's release lists them shuffled)
    item: tuple[int, ...]  # the shape of one cached input
    attributes: int  # g = attributes * y + a
    num_groups: int
    group_names: dict[int, str]  # g* among them
    augment: str
    forget_group: int
    n_tasks: int
    fingerprint: str  # of the quick preset with no path (the Hub, or the copy shipped in the package)
    presets: dict[str, dict[str, Any]]
    broken: tuple[Broken, ...]
    tiny: tuple[str, str, tuple[str, ...]]  # layout, task, methods of the end-to-end run
    dtype: torch.dtype = torch.uint8


def copies(writers: dict[str, Writer], rows: dict[str, list[tuple]], sizes: tuple[int, int, int], *check: str) -> dict[str, Copy]:
    """The same expectations for every layout."""
    return {layout: Copy(write, rows, sizes, check) for layout, write in writers.items()}


def hub_and_release(hub: Callable[..., Path], release: Writer) -> dict[str, Writer]:
    return {"parquet": functools.partial(hub, kind="parquet"), "arrow": functools.partial(hub, kind="arrow"), "release": release}


def edited(write: Writer, edit: Callable[[Path], Any]) -> Writer:
    """``write``, then ``edit`` the copy it made."""

    def write_edited(root: Path) -> Path:
        copy = write(root)
        edit(copy)
        return copy

    return write_edited


def put(file: str, text: str) -> Callable[[Path], Any]:
    return lambda root: (root / file).write_text(text)


def replaced(file: str, old: str, new: str, count: int = -1) -> Callable[[Path], Any]:
    return lambda root: (root / file).write_text((root / file).read_text().replace(old, new, count))


def relined(file: str, edit: Callable[[list[str]], list[str]]) -> Callable[[Path], Any]:
    return lambda root: (root / file).write_text("\n".join(edit((root / file).read_text().splitlines())))


def unlinked(file: str) -> Callable[[Path], Any]:
    return lambda root: (root / file).unlink()


def pickled(file: str, content: Any) -> Callable[[Path], Any]:
    return lambda root: (root / file).write_bytes(pickle.dumps(content))


def cut(file: str, edit: Callable[[bytes], bytes]) -> Callable[[Path], Any]:
    return lambda root: (root / file).write_bytes(edit((root / file).read_bytes()))


def picked(rows: list, indices: np.ndarray) -> list:
    return [rows[i] for i in indices]


def fairface_rows() -> dict[str, list[tuple]]:
    """MIU's split: FairFace's train 90/10 (seeded) into TRAIN and VAL, its validation as TEST."""
    train, val = seeded_split(len(FAIRFACE_ROWS["train"]), 0.9, 0)
    rows = FAIRFACE_ROWS["train"]
    return {"train": picked(rows, train), "val": picked(rows, val), "test": FAIRFACE_ROWS["validation"]}


def cifar_rows() -> dict[str, list[tuple]]:
    """A seeded 10% of the train set as VAL, the test set as TEST."""
    val, train = seeded_split(len(CIFAR_ROWS["train"]), 0.1, seed=0)
    return {"train": picked(CIFAR_ROWS["train"], train), "val": picked(CIFAR_ROWS["train"], val), "test": CIFAR_ROWS["test"]}


def adult_records(layout: str) -> dict[str, list[dict]]:
    """UCI: adult.data 90/10 (seeded) into TRAIN and VAL, adult.test as TEST; a Hub copy: its one split 70/10/20."""
    if layout.startswith("uci"):
        val, train = seeded_split(len(ADULT_DATA), 0.1, seed=0)
        return {"train": picked(ADULT_DATA, train), "val": picked(ADULT_DATA, val), "test": ADULT_TEST}
    return {s: picked(ADULT_DATA, rows) for s, rows in hub_splits(len(ADULT_DATA)).items()}


def adult_rows(layout: str) -> dict[str, list[tuple]]:
    return {s: [(int(r["income"] == ">50K"), int(r["sex"] == "Male")) for r in rs] for s, rs in adult_records(layout).items()}


def fairface_train_groups() -> list[int]:
    per_group = [0] * 63
    for _, y, a in FAIRFACE_ROWS["train"]:
        per_group[7 * y + a] += 1
    return per_group


def broken(name: str, write: Writer, *fragments: str) -> Broken:
    return Broken(name, write, fragments)


def bad_test_row(**values: str) -> Writer:
    """A UCI copy whose adult.test is HALF with ``values``."""
    return edited(adult_uci, put("adult.test", uci_line(dict(HALF, **values), test=True) + "\n"))


ATTR, PARTITION = "list_attr_celeba.txt", "list_eval_partition.txt"
CELEBA_BROKEN = (
    broken("no_partition", edited(celeba_release, unlinked(PARTITION)), "list_eval_partition.txt missing"),
    broken("no_image", edited(celeba_release, unlinked("img_align_celeba/000005.jpg")), "image file missing", "000005.jpg"),
    broken("short_row", edited(celeba_release, relined(ATTR, lambda ls: ls[:3] + [ls[3].rsplit(" ", 1)[0]] + ls[4:])),
           "malformed", "line 4 has 40 fields"),
    broken("bad_value", edited(celeba_release, replaced(ATTR, " 1", " 2")), "malformed", "1 or -1"),
    broken("no_header", edited(celeba_release, relined(ATTR, lambda ls: ls[:1] + ls[2:])), "malformed", "line 2"),
    broken("bad_split", edited(celeba_release, replaced(PARTITION, " 2\n", " 3\n", 1)), "malformed", "0, 1 or 2"),
    broken("no_test", edited(celeba_release, replaced(PARTITION, " 2\n", " 1\n")), "split test (code 2) has no rows"),
    broken("no_valid", functools.partial(celeba_hub, kind="parquet", splits={"train": "train", "val": "validation", "test": "test"}),
           "['valid'] missing"),
    broken("no_male", functools.partial(celeba_hub, kind="arrow", drop="Male"), "column 'Male' missing"),
)
TRAIN_CSV, VAL_CSV = "fairface_label_train.csv", "fairface_label_val.csv"
FAIRFACE_BROKEN = (
    broken("no_val", edited(fairface_release, unlinked(VAL_CSV)), "fairface_label_val.csv missing (the validation split)"),
    broken("no_race", edited(fairface_release, put(TRAIN_CSV, "file,age,gender\ntrain/1.jpg,20-29,Male\n")),
           "malformed", "['race'] missing"),
    broken("unknown_age", edited(fairface_release, replaced(TRAIN_CSV, ",20-29,", ",twenties,")),
           "unknown label(s) ['twenties']", "fairface_label_train.csv age"),
    broken("unknown_race", edited(fairface_release, replaced(VAL_CSV, ",Black,", ",Martian,")), "unknown label(s) ['Martian']"),
    broken("no_image", edited(fairface_release, unlinked("val/301.jpg")), "image file missing", "301.jpg"),
    broken("empty_csv", edited(fairface_release, put(TRAIN_CSV, "")), "malformed"),
    broken("no_validation", functools.partial(fairface_hub, kind="parquet", splits=("train",)), "['validation'] missing"),
)
BATCHES = "cifar-10-batches-py"
CIFAR_BROKEN = (
    broken("partial", edited(cifar_release, unlinked(f"{BATCHES}/test_batch")), "lacks test_batch", "data_batch_1"),
    broken("not_a_pickle", edited(cifar_release, put(f"{BATCHES}/data_batch_2", "not a pickle")),
           "data_batch_2 is malformed", "b'data'"),
    broken("wrong_shape", edited(cifar_release, pickled(f"{BATCHES}/data_batch_3", {b"labels": [1], b"data": np.zeros((1, 100), "u1")})),
           "data_batch_3 is malformed", "[1, 100]"),
    broken("no_test", functools.partial(cifar_hub, kind="arrow", splits=("train",)), "split(s) ['test'] missing", "uoft-cs/cifar10"),
    broken("no_label", functools.partial(cifar_hub, kind="parquet", label="fine_label"),
           "column 'label' missing", "columns img, label"),
    broken("unknown_label", functools.partial(cifar_hub, kind="parquet", labels=12), "unknown label values [12]"),
)
ADULT_BROKEN = (
    broken("partial", edited(adult_uci, unlinked("adult.test")), "adult.test is missing"),
    broken("short", edited(adult_uci, put("adult.data", "39, State-gov, 77516, Bachelors\n")),
           "adult.data is malformed: 4 columns, not 15"),
    broken("ragged", edited(adult_uci, put("adult.data", f"{uci_line(ADULT_DATA[0])}\n{uci_line(ADULT_DATA[1])}, 7\n")),
           "adult.data is malformed", "ParserError"),
    broken("words", bad_test_row(age="old"), "column age holds 'old', not a number"),
    broken("income", bad_test_row(income="maybe"), "column income has unknown value(s) ['maybe']"),
    broken("sex", bad_test_row(sex="F"), "column sex has unknown value(s) ['F']"),
    broken("race", bad_test_row(race="Martian"), "column race has unknown value(s) ['Martian']"),
    *(broken(f"no_sex_{kind}", functools.partial(adult_hub, kind=kind, drop="sex"), "column(s) ['sex'] missing", "sex, capital.gain")
      for kind in ("parquet", "csv")),
    broken("no_train", functools.partial(adult_hub, kind="arrow", split="test"),
           "split(s) ['train'] missing; found ['test']", "adult-census-income"),
    broken("gz_partial", edited(adult_uci_gz, unlinked("adult.data.gz")), "adult.data is missing (nor is there adult.data.gz)"),
    broken("gz_not_gzip", edited(adult_uci_gz, put("adult.data.gz", uci_line(HALF))), "adult.data.gz is malformed", "BadGzipFile"),
    broken("gz_truncated", edited(adult_uci_gz, cut("adult.test.gz", lambda b: b[: len(b) // 2])),
           "adult.test.gz is malformed", "EOFError"),
    broken("gz_bad_crc", edited(adult_uci_gz, cut("adult.test.gz", lambda b: b[:-8] + bytes(8))),
           "adult.test.gz is malformed", "CRC check failed"),
)

ADULT_HUB_KINDS = ("parquet", "converted", "arrow", "csv", "legacy")
PAPER_224 = dict(backbone="resnet18", image_size=224, pretrained="timm", epochs=30, batch_size=32, warmup_epochs=2,
                 select_best_on_val=True)
ADULT_MODEL = dict(backbone="mlp:128,64", image_size=0, mean=(), std=(), channels_last=False, in_features=103, batch_size=256)

CASES = [
    Case(
        "waterbirds",
        copies(hub_and_release(waterbirds_hub, waterbirds_release), FOUR_GROUP_ROWS, (24, 12, 12),
               "train: 24 rows; per group [6, 6, 6, 6]; published [3498, 184, 56, 1057]",
               "mismatch: train group 0: found 6, published 3498"),
        ordered=True, item=(3, 64, 64), attributes=2, num_groups=4, group_names={2: "water bird, land"},
        augment="crop_flip", forget_group=2, n_tasks=6, fingerprint="e7788f80555a43ec",
        presets={"quick": dict(image_size=64),
                 "paper": dict(PAPER_224, resize=256, lr=1e-2, weight_decay=1e-3, schedule="constant")},
        broken=(broken("bad_metadata", edited(waterbirds_release, put("metadata.csv", "a,b\n1,2\n")), "metadata.csv is malformed"),),
        tiny=("parquet", "g2-r0.5-skew1.0", ("original", "finetune")),
    ),
    Case(
        "celeba",
        copies(hub_and_release(celeba_hub, celeba_release), FOUR_GROUP_ROWS, (24, 12, 12),
               "train: 24 rows; per group [6, 6, 6, 6]; published [71629, 66874, 22880, 1387]",
               "val: 12 rows; per group [3, 3, 3, 3]; published [8535, 8276, 2874, 182]",
               "mismatch: train group 3: found 6, published 1387", "mismatch: test group 0: found 3, published 9767",
               "12 mismatches with the published counts"),
        ordered=False, item=(3, 64, 64), attributes=2, num_groups=4, group_names={3: "blond, male"},
        augment="crop_flip", forget_group=3, n_tasks=6, fingerprint="3d3c500c9b7474ed",
        presets={"quick": dict(resize=64),  # Resize(size) + CenterCrop(size), not 256/224 of it
                 "paper": dict(PAPER_224, resize=224, lr=1e-2, weight_decay=1e-4, schedule="cosine")},
        broken=CELEBA_BROKEN,
        tiny=("parquet", "g3-r0.5-skew1.0", ("original", "finetune")),
    ),
    Case(
        "fairface",
        copies(hub_and_release(fairface_hub, fairface_release), fairface_rows(), (81, 9, 27),
               f"train: 90 rows; per group {fairface_train_groups()}; published 86744 rows",
               "mismatch: train: found 90 rows, published 86744", "mismatch: validation: found 27 rows, published 10954",
               "2 mismatches with the published counts"),
        ordered=True, item=(3, 64, 64), attributes=7, num_groups=63,
        group_names={23: "20-29, Black", 62: "more than 70, Southeast Asian"},
        augment="crop_flip", forget_group=23, n_tasks=6, fingerprint="c1eb624eb2403ab4",
        presets={"quick": dict(image_size=64),
                 "paper": dict(PAPER_224, resize=256, lr=0.1, weight_decay=1e-4, schedule="cosine")},
        broken=FAIRFACE_BROKEN,
        tiny=("parquet", "g23-r0.5-skew1.0", ("original", "finetune")),
    ),
    Case(
        "cifar10",
        copies({**hub_and_release(cifar_hub, cifar_release), "release-folder": lambda root: cifar_release(root) / BATCHES},
               cifar_rows(), (54, 6, 30),
               "train: 60 rows; per group [6, 6, 6, 6, 6, 6, 6, 6, 6, 6]; published [5000, 5000, 5000",
               "test: 30 rows; per group [3, 3, 3, 3, 3, 3, 3, 3, 3, 3]", "mismatch: train group 0: found 6, published 5000",
               "20 mismatches"),
        ordered=True, item=(3, 32, 32), attributes=1, num_groups=10, group_names={0: "airplane, any", 3: "cat, any"},
        augment="crop_flip", forget_group=0, n_tasks=7, fingerprint="9f4c9153a4438e99",
        presets={"quick": dict(backbone="test_resnet", image_size=32, resize=32),
                 "paper": dict(backbone="resnet18", image_size=32, resize=32, pretrained="", lr=0.1, momentum=0.9,
                               weight_decay=5e-4, batch_size=128, epochs=200, schedule="cosine")},
        broken=CIFAR_BROKEN,
        tiny=("release", "g0-r1-skew1.0", ("original", "finetune", "cf_k")),
    ),
    Case(
        "adult",
        {
            **copies({k: functools.partial(adult_hub, kind=k) for k in ADULT_HUB_KINDS}, adult_rows("parquet"), (35, 4, 9),
                     "train: 48 rows", "1 mismatch with"),
            **copies({"uci": adult_uci, "uci-gz": adult_uci_gz}, adult_rows("uci"), (44, 4, 24),
                     "train: 48 rows; per group [12, 12, 13, 11]; published 32561 rows", "test: 24 rows; per group",
                     "mismatch: test: found 24 rows, published 16281"),
        },
        ordered=True, item=(NUM_FEATURES,), attributes=2, num_groups=4, group_names={2: ">50K, female"},
        augment="none", forget_group=2, n_tasks=6, fingerprint="01ed86c9a8bff1a6",
        presets={"quick": ADULT_MODEL, "paper": ADULT_MODEL},
        broken=ADULT_BROKEN,
        tiny=("uci", "g2-r0.5-skew1.0", ("original", "finetune", "cf_k")),
        dtype=torch.float32,
    ),
]
BY_NAME = {case.name: case for case in CASES}
LAYOUTS = [pytest.param(case, layout, id=f"{case.name}-{layout}") for case in CASES for layout in case.copies]
DATASETS = [pytest.param(case, id=case.name) for case in CASES]


def source_of(name: str, **settings: Any) -> DatasetSource:
    """The dataset's source as the registry builds it."""
    return load_suite(name, settings)[0].source


@pytest.fixture(scope="module")
def copy_of(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, str], Path]:
    """Each dataset's copy in each layout, written once for the module (tests only read it)."""

    @functools.cache
    def copy_of(name: str, layout: str) -> Path:
        return BY_NAME[name].copies[layout].write(tmp_path_factory.mktemp(f"{name}-{layout}") / "copy")

    return copy_of


@pytest.fixture(scope="module")
def loaded(copy_of, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, str], tuple[DatasetSource, Path, GroupDataset]]:
    """(source, cache folder, dataset) of each copy, loaded once for the module."""

    @functools.cache
    def loaded(name: str, layout: str) -> tuple[DatasetSource, Path, GroupDataset]:
        source, cache = source_of(name, path=str(copy_of(name, layout))), tmp_path_factory.mktemp("cache")
        return source, cache, source.load(cache)

    return loaded


def rows_of(case: Case, data: GroupDataset, split: str) -> list[tuple]:
    """(code, y, a) of each cached image, or (y, a) of each table row."""
    s = data.split(split)
    labels = list(zip(s.y.tolist(), s.a.tolist()))
    if case.dtype != torch.uint8:
        return labels
    return [(code_of(x.numpy()), y, a) for x, (y, a) in zip(s.x, labels)]


# --- the contract ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("case", "layout"), LAYOUTS)
def test_every_layout_loads_row_by_row_into_one_cache(case: Case, layout: str, loaded):
    source, cache, data = loaded(case.name, layout)
    copy = case.copies[layout]
    assert (len(data.train), len(data.val), len(data.test)) == copy.sizes
    assert data.train.x.shape == (copy.sizes[0], *case.item) and data.train.x.dtype == case.dtype
    for split, rows in copy.rows.items():
        found = rows_of(case, data, split)
        assert found == rows if case.ordered else sorted(found) == sorted(rows), split
        s = data.split(split)
        assert data.groups(split).tolist() == (s.y * case.attributes + s.a).tolist()
        expected_counts = np.bincount([case.attributes * y + a for *_, y, a in rows], minlength=case.num_groups).tolist()
        assert data.group_counts(split) == expected_counts
    assert data.num_groups == case.num_groups and data.augment == case.augment
    assert {g: data.group_name(g) for g in case.group_names} == case.group_names
    again = source_of(case.name, path=source.path).load(cache)  # the same copy, named again: found in the cache
    assert torch.equal(again.test.x, data.test.x) and torch.equal(again.train.y, data.train.y)
    assert list(cache.iterdir()) == [cache / f"{case.name}-{source.fingerprint()}"]


@pytest.mark.parametrize("case", DATASETS)
def test_fingerprints_are_stable(case: Case):
    """A cache built by an earlier version is still found: what the fingerprint hashes changes
    only on purpose (with the source's ``version``)."""
    assert source_of(case.name).fingerprint() == case.fingerprint


@pytest.mark.parametrize("case", DATASETS)
def test_task_grid(case: Case):
    ts = load_suite(case.name)
    g = case.forget_group
    assert len(ts) == case.n_tasks and {t.forget_group for t in ts} == {g}
    # only the shipped dataset is in the default benchmark: MIU's r = 0.9, skew 1.0 and uniform
    default = {f"adult/g{g}-r0.9-skew1.0", f"adult/g{g}-r0.9-uniform"} if case.name == "adult" else set()
    assert {t.id for t in ts if t.default} == default
    assert [t.id for t in ts][:2] == [f"{case.name}/g{g}-r0.1-skew1.0", f"{case.name}/g{g}-r0.1-uniform"]
    assert ts[0].source.name == case.name


@pytest.mark.parametrize("case", DATASETS)
def test_presets(case: Case):
    for preset, expected in case.presets.items():
        source = source_of(case.name, preset=preset)
        settings = {**dataclasses.asdict(source.model), **dataclasses.asdict(source.recipe)}
        if hasattr(source, "resize"):
            settings["resize"] = source.resize()
        assert {k: settings[k] for k in expected} == expected, preset
    with pytest.raises(BenchmarkError, match="no preset 'huge'"):
        source_of(case.name, preset="huge").model


def expect_error(source: DatasetSource, *fragments: str) -> None:
    """Reading ``source`` fails with one line that names the expected layouts and every fragment."""
    with pytest.raises(BenchmarkError) as caught:
        source.label_table()
    message = str(caught.value)
    assert "\n" not in message and source.layouts in message, message
    for fragment in fragments:
        assert fragment in message, message


@pytest.mark.parametrize("case", DATASETS)
def test_a_wrong_folder_names_the_layouts(case: Case, tmp_path):
    expect_error(source_of(case.name, path=str(tmp_path / "nowhere")), "does not exist")
    expect_error(source_of(case.name, path=str(tmp_path)), "is not a copy")


@pytest.mark.parametrize(("case", "broken"), [pytest.param(c, b, id=f"{c.name}-{b.name}") for c in CASES for b in c.broken])
def test_a_broken_copy_fails_on_one_line(case: Case, broken: Broken, tmp_path):
    expect_error(source_of(case.name, path=str(broken.write(tmp_path / "copy"))), *broken.fragments)


@pytest.mark.parametrize(("case", "layout"), LAYOUTS)
def test_data_check_compares_with_the_published_counts(case: Case, layout: str, copy_of, cli):
    code, out, _ = cli("data", "check", case.name, "--from", str(copy_of(case.name, layout)))
    out = " ".join(out.split())  # the console wraps long lines
    assert code == 1
    for line in case.copies[layout].check:
        assert line in out


@pytest.mark.slow
@pytest.mark.parametrize("case", DATASETS)
def test_tiny_benchmark(case: Case, cli, tmp_path, one_thread, copy_of):
    layout, task_id, methods = case.tiny
    task = next(t for t in load_suite(case.name) if t.id == f"{case.name}/{task_id}")
    board = run_tiny_benchmark(cli, tmp_path, task.id, copy_of(case.name, layout), list(methods))
    assert {e["method"] for e in board["entries"]} == {*methods, "retrain"}
    g = case.forget_group
    in_g = sum(case.attributes * y + a == g for *_, y, a in case.copies[layout].rows["train"])
    row = board["tasks"][0]
    assert 0 < row["forget_size"] == round(task.forget_size * in_g)
    assert task.forget_size == 1 or row["forget_size"] < in_g  # some rows of g* kept
    assert (row["dataset"], row["forget_group_name"], row["num_groups"]) == (case.name, case.group_names[g], case.num_groups)


# --- FairFace -------------------------------------------------------------------------------------


def test_fairface_maps_class_labels_named_in_another_order(tmp_path):
    copy = fairface_hub(tmp_path / "hub", "parquet", race_names=sorted(RACES))
    table = source_of("fairface", path=str(copy)).label_table()
    assert table["validation"][1].tolist() == [a for _, _, a in FAIRFACE_ROWS["validation"]]
    assert table["train"][0].tolist() == [y for _, y, _ in FAIRFACE_ROWS["train"]]


def test_fairface_whole_repository_copy_picks_the_config(tmp_path):
    repo = tmp_path / "repo"
    fairface_hub(repo / "0.25", "parquet")
    fairface_hub(repo / "1.25", "parquet", offset=1000)
    small = source_of("fairface", path=str(repo)).load(tmp_path / "cache")
    large = source_of("fairface", path=str(repo), config=1.25).load(tmp_path / "cache")  # YAML reads 1.25 as a number
    assert code_of(large.test.x[0].numpy()) == code_of(small.test.x[0].numpy()) + 1000
    assert source_of("fairface", config=1.25).config == "1.25"
    assert source_of("fairface").fingerprint() != source_of("fairface", config="1.25").fingerprint()
    with pytest.raises(BenchmarkError, match="0.5"):
        source_of("fairface", config="0.5")
    (repo / "1.25").rename(tmp_path / "elsewhere")
    expect_error(source_of("fairface", path=str(repo), config="1.25"), "holds the config(s) ['0.25'], not '1.25'")


# --- CIFAR-10 -------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", BY_NAME["cifar10"].copies)
def test_cifar10_pixels_are_cached_as_given(layout: str, loaded):
    _, _, data = loaded("cifar10", layout)
    for split, rows in cifar_rows().items():
        for x, (code, _, _) in zip(data.split(split).x, rows):  # channels, rows and columns
            assert np.array_equal(x.numpy(), cifar_image(code).transpose(2, 0, 1))


def test_cifar10_forgets_a_whole_class():
    last = load_suite("cifar10")[-1]
    assert last.id == "cifar10/g0-r1-skew1.0" and last.forget_size == 1.0 and last.skew == 1.0


def test_class_wise_tasks_get_an_avg_gap():
    from benchmark.report.scoring import seed_scores

    # what a CIFAR-10 cell records: with a single attribute value, equalized odds (and
    # demographic parity) compare a* with an empty complement, so both are null
    metrics = {"retain_acc": 90.0, "forget_acc": 10.0, "test_acc": 80.0, "mia_forget_nonmember": 50.0,
               "equalized_odds": None, "demographic_parity": None, "forget_group_test_acc": 0.0, "unlearn_seconds": 1.0}
    gold = {"metrics": {**metrics, "forget_acc": 0.0, "unlearn_seconds": 10.0}, "is_gold": True}
    scored, _ = seed_scores({"metrics": metrics, "is_gold": False}, gold)
    assert scored["avg_gap"] == pytest.approx(10.0 / 5)


# --- Adult ----------------------------------------------------------------------------------------

# HALF and OUTSIDE as rows: numeric values scaled with TRAIN's minimum and maximum, clipped
HALF_ROW = {"age": 0.5, "fnlwgt": 0.5, "education-num": 1.0, "capital-gain": 0.25, "hours-per-week": 0.5,
            "workclass=Self-emp-inc": 1, "education=Masters": 1, "marital-status=Never-married": 1, "relationship=Wife": 1,
            "race=Black": 1, "native-country=Holand-Netherlands": 1}
OUTSIDE_ROW = {"age": 1.0, "education-num": 1.0, "capital-gain": 0.25, "capital-loss": 1.0, "education=Masters": 1,
               "marital-status=Never-married": 1, "occupation=Armed-Forces": 1, "relationship=Wife": 1, "race=Black": 1}


def row_of(expected: dict) -> np.ndarray:
    x = np.zeros(NUM_FEATURES, dtype=np.float32)
    for name, value in expected.items():
        x[FEATURE_NAMES.index(name)] = value
    return x


def test_adult_feature_layout_is_fixed():
    assert NUM_FEATURES == 103 == 6 + 8 + 16 + 7 + 14 + 6 + 5 + 41
    assert FEATURE_NAMES[:7] == (*NUMERIC, "workclass=Private") and FEATURE_NAMES[-1] == "native-country=Holand-Netherlands"
    assert not any(n.startswith(("sex", "income")) for n in FEATURE_NAMES)


@pytest.mark.parametrize("layout", BY_NAME["adult"].copies)
def test_adult_rows_are_scaled_and_one_hot(layout: str, loaded):
    _, _, data = loaded("adult", layout)
    for split, records in adult_records(layout).items():
        x = data.split(split).x.numpy()
        assert x.min() >= 0.0 and x.max() <= 1.0
        for i, r in enumerate(records):  # each one-hot block names the record's value, or nothing for '?'
            for c in VOCABULARIES:
                hot = [FEATURE_NAMES[j] for j in np.flatnonzero(x[i]) if FEATURE_NAMES[j].startswith(c + "=")]
                assert hot == ([] if r[c] == "?" else [f"{c}={r[c]}"])
        for i, r in enumerate(records):  # the hand-made records, exactly
            for record, row in ((HALF, HALF_ROW), (OUTSIDE, OUTSIDE_ROW)):
                if r is record:
                    assert np.array_equal(x[i], row_of(row)), split
    if layout.startswith("uci"):
        assert np.array_equal(data.test.x[0].numpy(), row_of(HALF_ROW))
        assert np.array_equal(data.test.x[1].numpy(), row_of(OUTSIDE_ROW))


def test_adult_hub_splits_are_a_seeded_70_10_20_partition():
    parts = hub_splits(32561)
    assert {s: len(r) for s, r in parts.items()} == {"train": 22793, "val": 3256, "test": 6512}
    assert np.array_equal(np.sort(np.concatenate(list(parts.values()))), np.arange(32561))
    assert all(np.array_equal(parts[s], hub_splits(32561)[s]) for s in parts)


def test_adult_model_and_attacks_run_on_table_rows():
    from benchmark.metrics.robustness import AttackSettings, robust_metrics

    model = build_model(source_of("adult").model, 2, seed=0).eval()
    assert model(torch.rand(5, NUM_FEATURES)).shape == (5, 2) and model.stages() == ["blocks.0", "blocks.1"]
    x, y = torch.rand(8, NUM_FEATURES), torch.arange(8) % 2
    out = robust_metrics(model, x, y, y, 2, AttackSettings(rows=8, square_queries=5, aa_steps=2, pgd_steps=2), torch.device("cpu"))
    assert set(out) == {"pgd_acc", "pgd_worst_group_acc", "autoattack_reduced_acc", "autoattack_reduced_worst_group_acc"}


# --- Adult: the UCI release shipped in the package ----------------------------------------------

QUICK_TITLE = "Adult (quick: 3,000 of 29,305 TRAIN, 750 of 3,256 VAL rows)"


def group_counts(table: Any) -> list[int]:
    return np.bincount(2 * table.y + table.a, minlength=4).tolist()


@pytest.fixture(scope="module")
def shipped_adult() -> dict[str, Any]:
    """The shipped release as distributed ({'train': adult.data, 'test': adult.test}), parsed once."""
    return source_of("adult").read()


def test_adult_ships_the_uci_release_with_its_published_counts(shipped_adult):
    source = source_of("adult")
    assert source.path is None and source.root() == AdultSource.shipped
    assert {s: len(t) for s, t in shipped_adult.items()} == source.published_counts == {"train": 32561, "test": 16281}
    assert group_counts(shipped_adult["train"]) == [9592, 15128, 1179, 6662]  # REFERENCE §9
    assert group_counts(shipped_adult["test"]) == [4831, 7604, 590, 3256]


def test_adult_shipped_copy_is_named_by_its_content_not_its_place(tmp_path, monkeypatch):
    """Caches and results of the shipped copy are found wherever the package is installed."""
    where, fingerprint = source_of("adult").where(), source_of("adult").fingerprint()
    assert where.startswith("shipped:adult:") and str(AdultSource.shipped) not in where
    monkeypatch.setattr(AdultSource, "shipped", shutil.copytree(AdultSource.shipped, tmp_path / "site-packages" / "adult"))
    assert (source_of("adult").where(), source_of("adult").fingerprint()) == (where, fingerprint)
    other = shutil.copytree(AdultSource.shipped, tmp_path / "other")
    cut("adult.test.gz", lambda b: gzip.compress(gzip.decompress(b)[:-100], mtime=0))(other)
    monkeypatch.setattr(AdultSource, "shipped", other)
    assert source_of("adult").where() != where


def test_adult_hub_is_read_when_named(monkeypatch):
    read_from = []
    monkeypatch.setattr(AdultSource, "from_hub", lambda self, root: read_from.append(root) or {"train": "rows"})
    source = source_of("adult", path="hub")
    assert source.read() == {"train": "rows"} and read_from == [None]
    assert source.where() == "hub:scikit-learn/adult-census-income"
    assert source.title == "Adult (quick: 3,000 of 22,793 TRAIN, 750 of 3,256 VAL rows)"
    # every row, from the Hub: what no path meant before, so its caches are still found
    assert source_of("adult", path="hub", preset="paper").fingerprint() == "46ab94cdd55c3560"
    # a source with nothing shipped: no path and "hub" are the same copy
    assert source_of("waterbirds", path="hub").where() == source_of("waterbirds").where() == "hub:grodino/waterbirds"


def test_adult_quick_preset_keeps_a_proportional_sample_of_train_and_val(shipped_adult, monkeypatch):
    monkeypatch.setattr(AdultSource, "read", lambda self: shipped_adult)
    full, quick = source_of("adult", preset="paper").splits(), source_of("adult").splits()
    assert {s: len(t) for s, t in full.items()} == {"train": 29305, "val": 3256, "test": 16281}
    assert {s: len(t) for s, t in quick.items()} == {"train": 3000, "val": 750, "test": 16281}
    for split, table in quick.items():
        share = np.array(group_counts(full[split])) * len(table) / len(full[split])
        assert np.all(np.abs(np.array(group_counts(table)) - share) < 1), split
    rows = proportional_sample(2 * full["train"].y + full["train"].a, 3000, seed=2)  # kept in the release's order
    assert np.array_equal(quick["train"].numeric, full["train"].numeric[rows])
    again = source_of("adult").splits()
    assert all(np.array_equal(again[s].numeric, quick[s].numeric) and np.array_equal(again[s].y, quick[s].y) for s in quick)
    assert source_of("adult").fingerprint() != source_of("adult", preset="paper").fingerprint()
    assert proportional_sample(np.array([1, 0, 1]), 5).tolist() == [0, 1, 2]


def test_adult_quick_dataset_loads_and_is_titled_by_its_sample(tmp_path):
    data = source_of("adult").load(tmp_path)  # the shipped files, end to end
    assert (len(data.train), len(data.val), len(data.test)) == (3000, 750, 16281)
    described = load_suite("adult")[0].describe(data)
    assert described["dataset"] == "adult" and described["dataset_title"] == QUICK_TITLE
    assert _task_title(described).startswith(f"adult/g2-r0.1-skew1.0 [{QUICK_TITLE}]: forget 11 rows")
    assert "dataset_title" not in load_suite("adult", {"preset": "paper"})[0].describe(data)
    assert source_of("waterbirds").title == "waterbirds"
