"""CelebA in each format users hold it: Hub parquet copy, save_to_disk copy, original release."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from tasks.celeba import ATTRIBUTES, CelebASource, tasks
from tests.fixtures import assert_cache_is_reused, code_of, coded_image, expect_layout_error, hub_copy, labelled_rows, run_tiny_benchmark

GROUPS = [(0, 0), (0, 1), (1, 0), (1, 1)]
SPLIT_ROWS = {"train": labelled_rows(6, GROUPS, 0), "val": labelled_rows(3, GROUPS, 100, 1), "test": labelled_rows(3, GROUPS, 200, 2)}
HUB_NAMES = {"train": "train", "val": "valid", "test": "test"}
SPLIT_CODES = {"train": 0, "val": 1, "test": 2}
LAYOUT = "expected the original CelebA folder"


def attributes(code: int, y: int, a: int) -> dict[str, bool]:
    """All 40 attributes of a row: Blond_Hair = y, Male = a, the rest arbitrary."""
    values = {name: bool((code * 7 + k) % 3 == 0) for k, name in enumerate(ATTRIBUTES)}
    return {**values, "Blond_Hair": bool(y), "Male": bool(a)}


def hub_fixture(root: Path, kind: str, splits: dict = HUB_NAMES) -> Path:
    columns = {}
    for split, rows in SPLIT_ROWS.items():
        if split not in splits:
            continue
        table = {"image": [coded_image(c, (36, 44)) for c, _, _ in rows], "celeb_id": [c % 11 for c, _, _ in rows]}
        for name in ATTRIBUTES:
            table[name] = [attributes(c, y, a)[name] for c, y, a in rows]
        columns[splits[split]] = table
    return hub_copy(root, columns, "image", kind)


def release_fixture(root: Path) -> Path:
    rows = [(c, y, a, split) for split, split_rows in SPLIT_ROWS.items() for c, y, a in split_rows]
    (root / "img_align_celeba").mkdir(parents=True)
    for c, *_ in rows:
        coded_image(c, (36, 44)).save(root / "img_align_celeba" / f"{c + 1:06d}.jpg", format="PNG")  # lossless codes
    # the real files list the images in order; shuffled here, so that rows are joined by name
    shuffled = [rows[i] for i in np.random.default_rng(5).permutation(len(rows))]
    lines = [str(len(rows)), " ".join(ATTRIBUTES) + " "]
    for c, y, a, _ in shuffled:
        values = attributes(c, y, a)
        lines.append(f"{c + 1:06d}.jpg" + "".join(f" {1 if values[n] else -1:2d}" for n in ATTRIBUTES))  # "-1  1" spacing
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    partition = [f"{c + 1:06d}.jpg {SPLIT_CODES[split]}" for c, _, _, split in reversed(rows)]
    (root / "list_eval_partition.txt").write_text("\n".join(partition) + "\n")
    return root


@pytest.fixture(params=["parquet", "arrow", "release"])
def copy(request, tmp_path) -> Path:
    root = tmp_path / request.param
    return release_fixture(root) if request.param == "release" else hub_fixture(root, request.param)


def test_every_format_loads_with_the_right_groups_row_by_row(copy, tmp_path):
    source = CelebASource(path=str(copy))
    data = source.load(tmp_path / "cache")
    assert data.train.x.shape == (24, 3, 64, 64) and data.train.x.dtype.is_floating_point is False
    for split, rows in SPLIT_ROWS.items():
        s = data.split(split)
        assert sorted(code_of(x.numpy()) for x in s.x) == sorted(c for c, _, _ in rows)
        for i in range(len(s)):
            code = code_of(s.x[i].numpy())
            _, y, a = next(r for r in rows if r[0] == code)
            assert (int(s.y[i]), int(s.a[i])) == (y, a)
        assert data.groups(split).tolist() == (s.y * 2 + s.a).tolist()
    assert data.group_counts("train") == [6, 6, 6, 6]
    assert data.group_name(3) == "blond, male" and data.augment == "crop_flip"


def test_celeba_resizes_to_the_crop_size():
    assert CelebASource().resize() == 64 and CelebASource(preset="paper").resize() == 224
    paper = CelebASource(preset="paper")
    assert (paper.model.backbone, paper.model.image_size, paper.model.pretrained) == ("resnet18", 224, "timm")
    r = paper.recipe
    assert (r.lr, r.weight_decay, r.epochs, r.batch_size, r.warmup_epochs, r.schedule, r.select_best_on_val) == (
        1e-2, 1e-4, 30, 32, 2, "cosine", True)


def test_the_cache_is_reused(tmp_path):
    source = CelebASource(path=str(hub_fixture(tmp_path / "hub", "parquet")))
    assert_cache_is_reused(source, tmp_path / "cache")


def test_task_grid():
    ts = tasks()
    assert len(ts) == 6 and {t.forget_group for t in ts} == {3} and not any(t.default for t in ts)
    assert [t.id for t in ts][:2] == ["celeba/g3-r0.1-skew1.0", "celeba/g3-r0.1-uniform"]


def expect_error(source: CelebASource, *fragments: str) -> None:
    expect_layout_error(source, LAYOUT, *fragments)


def test_missing_and_malformed_copies_say_what_is_expected(tmp_path):
    expect_error(CelebASource(path=str(tmp_path / "nowhere")), "does not exist")
    (tmp_path / "empty").mkdir()
    expect_error(CelebASource(path=str(tmp_path / "empty")), "is not a copy")
    good = release_fixture(tmp_path / "good")

    def broken(name: str) -> Path:
        return Path(shutil.copytree(good, tmp_path / name))

    bad = broken("no_partition")
    (bad / "list_eval_partition.txt").unlink()
    expect_error(CelebASource(path=str(bad)), "list_eval_partition.txt missing")
    bad = broken("no_image")
    (bad / "img_align_celeba" / "000005.jpg").unlink()
    expect_error(CelebASource(path=str(bad)), "image file missing", "000005.jpg")
    bad = broken("short_row")
    lines = (bad / "list_attr_celeba.txt").read_text().splitlines()
    (bad / "list_attr_celeba.txt").write_text("\n".join(lines[:3] + [lines[3].rsplit(" ", 1)[0]] + lines[4:]))
    expect_error(CelebASource(path=str(bad)), "malformed", "line 4 has 40 fields")
    bad = broken("bad_value")
    text = (bad / "list_attr_celeba.txt").read_text().replace(" 1", " 2")
    (bad / "list_attr_celeba.txt").write_text(text)
    expect_error(CelebASource(path=str(bad)), "malformed", "1 or -1")
    bad = broken("no_header")
    lines = (bad / "list_attr_celeba.txt").read_text().splitlines()
    (bad / "list_attr_celeba.txt").write_text("\n".join([lines[0]] + lines[2:]))
    expect_error(CelebASource(path=str(bad)), "malformed", "line 2")
    bad = broken("bad_split")
    (bad / "list_eval_partition.txt").write_text((bad / "list_eval_partition.txt").read_text().replace(" 2\n", " 3\n", 1))
    expect_error(CelebASource(path=str(bad)), "malformed", "0, 1 or 2")
    bad = broken("no_test")
    (bad / "list_eval_partition.txt").write_text((bad / "list_eval_partition.txt").read_text().replace(" 2\n", " 1\n"))
    expect_error(CelebASource(path=str(bad)), "split test (code 2) has no rows")


def test_hub_copies_with_a_missing_split_or_column_say_what_is_expected(tmp_path):
    no_valid = hub_fixture(tmp_path / "no_valid", "parquet", {"train": "train", "val": "validation", "test": "test"})
    expect_error(CelebASource(path=str(no_valid)), "['valid'] missing")
    no_male = hub_fixture(tmp_path / "no_male", "arrow")
    import datasets

    dd = datasets.load_from_disk(str(no_male)).remove_columns("Male")
    dd.save_to_disk(str(tmp_path / "no_male2"))
    expect_error(CelebASource(path=str(tmp_path / "no_male2")), "column 'Male' missing")


def test_data_check_names_mismatches_per_group(cli, copy):
    code, out, _ = cli("data", "check", "celeba", "--from", str(copy))
    assert code == 1
    assert "train: 24 rows; per group [6, 6, 6, 6]; published [71629, 66874, 22880, 1387]" in out
    assert "val: 12 rows; per group [3, 3, 3, 3]; published [8535, 8276, 2874, 182]" in out
    assert "mismatch: train group 3: found 6, published 1387" in out
    assert "mismatch: test group 0: found 3, published 9767" in out
    assert "12 mismatches with the published counts" in out


@pytest.mark.slow
def test_tiny_benchmark_on_celeba(cli, tmp_path):
    copy = hub_fixture(tmp_path / "celeba", "parquet")
    board = run_tiny_benchmark(cli, tmp_path, "celeba/g3-r0.5-skew1.0", copy, ["original", "finetune"])
    assert {e["method"] for e in board["entries"]} == {"original", "finetune", "retrain"}
    assert board["tasks"][0]["forget_size"] == 3 and board["tasks"][0]["dataset"] == "celeba"
    assert board["tasks"][0]["forget_group_name"] == "blond, male"
