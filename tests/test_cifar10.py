"""CIFAR-10 in each format users hold it: Hub parquet copy, save_to_disk copy, python batches."""

import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmark.errors import BenchmarkError
from tasks.cifar10 import CLASSES, CIFAR10Source, tasks
from tasks.common import seeded_split
from tests.fixtures import assert_cache_is_reused, code_of, coded_image, hub_copy, labelled_rows, run_tiny_benchmark

GROUPS = [(y, 0) for y in range(10)]
SPLIT_ROWS = {"train": labelled_rows(6, GROUPS, 0), "test": labelled_rows(3, GROUPS, 100, 1)}
PATTERN = (np.arange(32)[:, None] * 7 + np.arange(32)[None, :]).astype(np.uint8)  # blue = 7 row + col


def image(code: int) -> np.ndarray:
    """uint8 [32, 32, 3]: red and green encode ``code``; blue tells rows from columns."""
    x = np.array(coded_image(code, (32, 32)))
    x[:, :, 2] = PATTERN
    return x


def hub_fixture(root: Path, kind: str, splits=("train", "test"), label="label", labels=None) -> Path:
    import datasets

    features = datasets.Features({"img": datasets.Image(), label: datasets.ClassLabel(names=list(CLASSES))})
    columns = {
        s: {"img": [Image.fromarray(image(c)) for c, _, _ in SPLIT_ROWS[s]], label: [y if labels is None else labels for _, y, _ in SPLIT_ROWS[s]]} for s in splits
    }
    hub_copy(root, columns, "img", kind, features=features if labels is None else None)
    if kind == "parquet":  # the Hub's own layout: plain_text/<split>-00000-of-00001.parquet
        (root / "data").rename(root / "plain_text")
    return root


def release_fixture(root: Path) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    train = SPLIT_ROWS["train"]

    def batch(rows, name):
        data = np.stack([image(c).transpose(2, 0, 1).reshape(3072) for c, _, _ in rows])
        content = {b"batch_label": name.encode(), b"labels": [y for _, y, _ in rows], b"data": data,
                   b"filenames": [f"{c}.png".encode() for c, _, _ in rows]}
        (folder / name).write_bytes(pickle.dumps(content, protocol=2))

    for i in range(5):
        batch(train[12 * i : 12 * (i + 1)], f"data_batch_{i + 1}")
    batch(SPLIT_ROWS["test"], "test_batch")
    meta = {b"num_cases_per_batch": 10000, b"label_names": [c.encode() for c in CLASSES], b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return root


@pytest.fixture(params=["parquet", "arrow", "release", "release-folder"])
def copy(request, tmp_path) -> Path:
    root = tmp_path / request.param
    if request.param == "release":
        return release_fixture(root)
    if request.param == "release-folder":  # the path names cifar-10-batches-py itself
        return release_fixture(root) / "cifar-10-batches-py"
    return hub_fixture(root, request.param)


def expected_splits() -> dict[str, list[tuple[int, int, int]]]:
    val, train = seeded_split(len(SPLIT_ROWS["train"]), 0.1, seed=0)
    rows = SPLIT_ROWS["train"]
    return {"train": [rows[i] for i in train], "val": [rows[i] for i in val], "test": SPLIT_ROWS["test"]}


def test_every_format_loads_with_the_right_classes_row_by_row(copy, tmp_path):
    data = CIFAR10Source(path=str(copy)).load(tmp_path / "cache")
    expected = expected_splits()
    assert (len(data.train), len(data.val), len(data.test)) == (54, 6, 30)
    assert data.train.x.shape == (54, 3, 32, 32) and data.train.x.dtype.is_floating_point is False
    for split, rows in expected.items():
        s = data.split(split)
        assert [code_of(s.x[i].numpy()) for i in range(len(s))] == [c for c, _, _ in rows]  # in order
        assert s.y.tolist() == [y for _, y, _ in rows] and s.a.tolist() == [0] * len(rows)
        assert data.groups(split).tolist() == s.y.tolist()  # the class is the group
        for i in range(len(s)):  # pixels exactly as given: channels, rows and columns
            assert np.array_equal(s.x[i].numpy(), image(rows[i][0]).transpose(2, 0, 1))
    assert data.num_groups == 10 and data.group_name(3) == "cat, any" and data.augment == "crop_flip"


def test_the_cache_is_reused(copy, tmp_path):
    source = CIFAR10Source(path=str(copy))
    assert_cache_is_reused(source, tmp_path / "cache")


def test_presets_and_task_grid():
    quick, paper = CIFAR10Source(), CIFAR10Source(preset="paper")
    assert (quick.model.backbone, quick.model.image_size, quick.resize()) == ("test_resnet", 32, 32)
    assert (paper.model.backbone, paper.model.image_size, paper.resize(), paper.model.pretrained) == ("resnet18", 32, 32, "")
    r = paper.recipe
    assert (r.lr, r.momentum, r.weight_decay, r.batch_size, r.epochs, r.schedule) == (0.1, 0.9, 5e-4, 128, 200, "cosine")
    ts = tasks()
    assert len(ts) == 7 and {t.forget_group for t in ts} == {0} and not any(t.default for t in ts)
    assert [t.id for t in ts][:2] == ["cifar10/g0-r0.1-skew1.0", "cifar10/g0-r0.1-uniform"]
    assert ts[-1].id == "cifar10/g0-r1-skew1.0" and ts[-1].forget_size == 1.0 and ts[-1].skew == 1.0
    with pytest.raises(BenchmarkError, match="no preset 'huge'"):
        CIFAR10Source(preset="huge").model


def test_missing_and_malformed_copies_say_what_is_expected(tmp_path):
    with pytest.raises(BenchmarkError, match="does not exist.*cifar-10-batches-py"):
        CIFAR10Source(path=str(tmp_path / "nowhere")).records()
    (tmp_path / "empty").mkdir()
    with pytest.raises(BenchmarkError, match="not a copy.*cifar-10-batches-py"):
        CIFAR10Source(path=str(tmp_path / "empty")).records()
    partial = release_fixture(tmp_path / "partial")
    (partial / "cifar-10-batches-py" / "test_batch").unlink()
    with pytest.raises(BenchmarkError, match="lacks test_batch.*data_batch_1"):
        CIFAR10Source(path=str(partial)).records()
    bad = release_fixture(tmp_path / "bad")
    (bad / "cifar-10-batches-py" / "data_batch_2").write_bytes(b"not a pickle")
    with pytest.raises(BenchmarkError, match="data_batch_2 is malformed.*b'data'"):
        CIFAR10Source(path=str(bad)).records()
    wrong = release_fixture(tmp_path / "wrong")
    (wrong / "cifar-10-batches-py" / "data_batch_3").write_bytes(pickle.dumps({b"labels": [1], b"data": np.zeros((1, 100), np.uint8)}))
    with pytest.raises(BenchmarkError, match=r"data_batch_3 is malformed.*\[1, 100\]"):
        CIFAR10Source(path=str(wrong)).records()


def test_hub_copies_with_a_missing_split_column_or_unknown_labels(tmp_path):
    with pytest.raises(BenchmarkError, match=r"split\(s\) \['test'\] missing.*uoft-cs/cifar10"):
        CIFAR10Source(path=str(hub_fixture(tmp_path / "a", "arrow", splits=("train",)))).records()
    with pytest.raises(BenchmarkError, match="column 'label' missing.*columns img, label"):
        CIFAR10Source(path=str(hub_fixture(tmp_path / "b", "parquet", label="fine_label"))).records()
    with pytest.raises(BenchmarkError, match=r"unknown label values \[12\]"):
        CIFAR10Source(path=str(hub_fixture(tmp_path / "c", "parquet", labels=12))).records()


def test_data_check_names_mismatches(cli, copy):
    code, out, _ = cli("data", "check", "cifar10", "--from", str(copy))
    out = " ".join(out.split())  # the console wraps long lines
    assert code == 1
    assert "train: 60 rows; per group [6, 6, 6, 6, 6, 6, 6, 6, 6, 6]; published [5000, 5000, 5000" in out
    assert "test: 30 rows; per group [3, 3, 3, 3, 3, 3, 3, 3, 3, 3]" in out
    assert "mismatch: train group 0: found 6, published 5000" in out and "20 mismatches" in out


def test_class_wise_tasks_get_an_avg_gap():
    from benchmark.report.scoring import seed_scores

    # what a CIFAR-10 cell records: with a single attribute value, equalized odds (and
    # demographic parity) compare a* with an empty complement, so both are null
    metrics = {"retain_acc": 90.0, "forget_acc": 10.0, "test_acc": 80.0, "mia_forget_nonmember": 50.0,
               "equalized_odds": None, "demographic_parity": None, "forget_group_test_acc": 0.0, "unlearn_seconds": 1.0}
    gold = {"metrics": {**metrics, "forget_acc": 0.0, "unlearn_seconds": 10.0}, "is_gold": True}
    scored, _ = seed_scores({"metrics": metrics, "is_gold": False}, gold)
    assert scored["avg_gap"] == pytest.approx(10.0 / 5)




@pytest.mark.slow
def test_tiny_benchmark_on_cifar10(cli, tmp_path, one_thread):
    copy = release_fixture(tmp_path / "cifar")
    board = run_tiny_benchmark(cli, tmp_path, "cifar10/g0-r1-skew1.0", copy, ["original", "finetune", "cf_k"])
    assert {e["method"] for e in board["entries"]} == {"original", "finetune", "cf_k", "retrain"}
    in_class_0 = sum(y == 0 for _, y, _ in expected_splits()["train"])
    assert board["tasks"][0]["forget_size"] == in_class_0 and board["tasks"][0]["dataset"] == "cifar10"
