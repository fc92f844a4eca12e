"""Waterbirds in each format users hold it: Hub parquet copy, save_to_disk copy, original release."""

from pathlib import Path

import pytest

from benchmark.errors import BenchmarkError
from tasks.waterbirds import WaterbirdsSource, tasks
from tests.fixtures import assert_cache_is_reused, code_of, coded_image, hub_copy, labelled_rows, run_tiny_benchmark

GROUPS = [(0, 0), (0, 1), (1, 0), (1, 1)]
SPLIT_ROWS = {"train": labelled_rows(6, GROUPS, 0), "val": labelled_rows(3, GROUPS, 100, 1), "test": labelled_rows(3, GROUPS, 200, 2)}
HUB_NAMES = {"train": "train", "val": "validation", "test": "test"}


def hub_fixture(root: Path, kind: str) -> Path:
    splits = {
        HUB_NAMES[s]: {
            "image": [coded_image(c) for c, _, _ in rows],
            "label": [y for _, y, _ in rows],
            "place": [a for _, _, a in rows],
            "bird": [c % 7 for c, _, _ in rows],
        }
        for s, rows in SPLIT_ROWS.items()
    }
    return hub_copy(root, splits, "image", kind)


def release_fixture(root: Path) -> Path:
    lines = ["img_id,img_filename,y,split,place,place_filename"]
    for code, split in enumerate(("train", "val", "test")):
        for c, y, a in SPLIT_ROWS[split]:
            name = f"{c:03d}.Some_Bird/Some_Bird_{c:04d}.jpg"
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            coded_image(c).save(root / name, format="PNG")  # PNG bytes under .jpg, as lossless codes
            lines.append(f"{c},{name},{y},{code},{a},/b/bamboo_forest/{c}.jpg")
    (root / "metadata.csv").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(params=["parquet", "arrow", "release"])
def copy(request, tmp_path) -> Path:
    root = tmp_path / request.param
    return release_fixture(root) if request.param == "release" else hub_fixture(root, request.param)


def test_every_format_loads_with_the_right_groups_row_by_row(copy, tmp_path):
    source = WaterbirdsSource(path=str(copy))
    data = source.load(tmp_path / "cache")
    assert data.train.x.shape == (24, 3, 64, 64) and data.train.x.dtype.is_floating_point is False
    for split, rows in SPLIT_ROWS.items():
        s = data.split(split)
        for i in range(len(s)):
            code = code_of(s.x[i].numpy())
            _, y, a = next(r for r in rows if r[0] == code)
            assert (int(s.y[i]), int(s.a[i])) == (y, a)
        assert data.groups(split).tolist() == (s.y * 2 + s.a).tolist()
    assert data.group_name(2) == "water bird, land" and data.augment == "crop_flip"


def test_the_cache_is_reused(copy, tmp_path):
    source = WaterbirdsSource(path=str(copy))
    assert_cache_is_reused(source, tmp_path / "cache")


def test_task_grid():
    ts = tasks()
    assert len(ts) == 6 and {t.forget_group for t in ts} == {2} and not any(t.default for t in ts)
    assert [t.id for t in ts][:2] == ["waterbirds/g2-r0.1-skew1.0", "waterbirds/g2-r0.1-uniform"]


def test_missing_and_malformed_copies_say_what_is_expected(tmp_path):
    with pytest.raises(BenchmarkError, match="does not exist"):
        WaterbirdsSource(path=str(tmp_path / "nowhere")).records()
    (tmp_path / "empty").mkdir()
    with pytest.raises(BenchmarkError, match="metadata.csv"):
        WaterbirdsSource(path=str(tmp_path / "empty")).records()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "metadata.csv").write_text("a,b\n1,2\n")
    with pytest.raises(BenchmarkError, match="malformed"):
        WaterbirdsSource(path=str(bad)).records()


def test_data_check_names_mismatches(cli, copy):
    code, out, _ = cli("data", "check", "waterbirds", "--from", str(copy))
    assert code == 1
    assert "train: 24 rows; per group [6, 6, 6, 6]; published [3498, 184, 56, 1057]" in out
    assert "mismatch: train group 0: found 6, published 3498" in out


@pytest.mark.slow
def test_tiny_benchmark_on_waterbirds(cli, tmp_path):
    copy = hub_fixture(tmp_path / "wb", "parquet")
    board = run_tiny_benchmark(cli, tmp_path, "waterbirds/g2-r0.5-skew1.0", copy, ["original", "finetune"])
    assert {e["method"] for e in board["entries"]} == {"original", "finetune", "retrain"}
    assert board["tasks"][0]["forget_size"] == 3 and board["tasks"][0]["dataset"] == "waterbirds"
