"""FairFace in each format users hold it: Hub parquet copy, save_to_disk copy, original release;
MIU's split (FairFace train 90/10 into TRAIN/VAL, FairFace validation as TEST)."""

import shutil
from pathlib import Path

import pytest

from benchmark.errors import BenchmarkError
from tasks.common import seeded_split
from tasks.fairface import AGES, RACES, FairFaceSource, tasks
from tests.fixtures import code_of, coded_image, expect_layout_error, hub_copy, labelled_rows, run_tiny_benchmark

# g* = (age 20-29, Black) = 23, and a handful of other (age, race) cells: every race, most ages
GROUPS = [(3, 2), (0, 0), (1, 3), (3, 0), (5, 5), (8, 6), (4, 1), (2, 4), (7, 2)]
DIST_ROWS = {"train": labelled_rows(10, GROUPS, 0), "validation": labelled_rows(3, GROUPS, 300, 1)}
RELEASE = {"train": ("fairface_label_train.csv", "train"), "validation": ("fairface_label_val.csv", "val")}
LAYOUT = "expected the original FairFace folder"


def features(race_names=RACES):
    import datasets

    return datasets.Features({
        "image": datasets.Image(),
        "age": datasets.ClassLabel(names=list(AGES)),
        "gender": datasets.ClassLabel(names=["Male", "Female"]),
        "race": datasets.ClassLabel(names=list(race_names)),
        "service_test": datasets.Value("bool"),
    })


def hub_fixture(root: Path, kind: str, splits=("train", "validation"), offset: int = 0, race_names=RACES) -> Path:
    columns = {
        split: {
            "image": [coded_image(c + offset) for c, _, _ in DIST_ROWS[split]],
            "age": [y for _, y, _ in DIST_ROWS[split]],
            "gender": [c % 2 for c, _, _ in DIST_ROWS[split]],
            "race": [list(race_names).index(RACES[a]) for _, _, a in DIST_ROWS[split]],
            "service_test": [c % 3 == 0 for c, _, _ in DIST_ROWS[split]],
        }
        for split in splits
    }
    return hub_copy(root, columns, "image", kind, features=features(race_names))


def release_fixture(root: Path) -> Path:
    for split, (csv, folder) in RELEASE.items():
        (root / folder).mkdir(parents=True)
        lines = ["file,age,gender,race,service_test"]
        for c, y, a in DIST_ROWS[split]:
            coded_image(c).save(root / folder / f"{c + 1}.jpg", format="PNG")  # lossless codes under .jpg
            lines.append(f"{folder}/{c + 1}.jpg,{AGES[y]},{'Male' if c % 2 else 'Female'},{RACES[a]},{c % 3 == 0}")
        (root / csv).write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(params=["parquet", "arrow", "release"])
def copy(request, tmp_path) -> Path:
    root = tmp_path / request.param
    return release_fixture(root) if request.param == "release" else hub_fixture(root, request.param)


def label_of(code: int) -> tuple[int, int]:
    return next((y, a) for rows in DIST_ROWS.values() for c, y, a in rows if c == code)


def test_every_format_loads_with_miu_splits_and_the_right_groups_row_by_row(copy, tmp_path):
    data = FairFaceSource(path=str(copy)).load(tmp_path / "cache")
    n = len(DIST_ROWS["train"])
    train_rows, val_rows = seeded_split(n, 0.9, 0)
    assert (len(data.train), len(data.val), len(data.test)) == (len(train_rows), len(val_rows), len(DIST_ROWS["validation"])) == (81, 9, 27)
    assert data.train.x.shape == (81, 3, 64, 64) and data.num_groups == 63
    expected_codes = {
        "train": [DIST_ROWS["train"][i][0] for i in train_rows],
        "val": [DIST_ROWS["train"][i][0] for i in val_rows],
        "test": [c for c, _, _ in DIST_ROWS["validation"]],
    }
    for split, codes in expected_codes.items():
        s = data.split(split)
        assert [code_of(x.numpy()) for x in s.x] == codes  # the seeded 90/10 split, in order
        for i in range(len(s)):
            assert (int(s.y[i]), int(s.a[i])) == label_of(code_of(s.x[i].numpy()))
        assert data.groups(split).tolist() == (s.y * 7 + s.a).tolist()
    assert data.group_counts("train")[23] == sum(1 for c in expected_codes["train"] if label_of(c) == (3, 2))
    assert data.group_name(23) == "20-29, Black" and data.group_name(62) == "more than 70, Southeast Asian"


def test_class_labels_in_another_order_are_mapped_by_name(tmp_path):
    shuffled = sorted(RACES)
    copy = hub_fixture(tmp_path / "hub", "parquet", race_names=shuffled)
    table = FairFaceSource(path=str(copy)).distributed()
    assert table["validation"][1].tolist() == [a for _, _, a in DIST_ROWS["validation"]]
    assert table["train"][0].tolist() == [y for _, y, _ in DIST_ROWS["train"]]


def test_a_whole_repository_copy_picks_the_config(tmp_path):
    repo = tmp_path / "repo"
    hub_fixture(repo / "0.25", "parquet")
    hub_fixture(repo / "1.25", "parquet", offset=1000)
    small = FairFaceSource(path=str(repo)).load(tmp_path / "cache")
    large = FairFaceSource(path=str(repo), config=1.25).load(tmp_path / "cache")  # YAML reads 1.25 as a number
    assert code_of(large.test.x[0].numpy()) == code_of(small.test.x[0].numpy()) + 1000
    assert FairFaceSource(config=1.25).config == "1.25"
    assert FairFaceSource().fingerprint() != FairFaceSource(config="1.25").fingerprint()
    with pytest.raises(BenchmarkError, match="0.5"):
        FairFaceSource(config="0.5")
    shutil.rmtree(repo / "1.25")
    with pytest.raises(BenchmarkError, match=r"holds the config\(s\) \['0.25'\], not '1.25'") as caught:
        FairFaceSource(path=str(repo), config="1.25").records()
    assert LAYOUT in str(caught.value)


def test_presets():
    paper = FairFaceSource(preset="paper")
    assert (paper.model.backbone, paper.model.image_size, paper.model.pretrained, paper.resize()) == ("resnet18", 224, "timm", 256)
    r = paper.recipe
    assert (r.lr, r.weight_decay, r.epochs, r.batch_size, r.warmup_epochs, r.schedule, r.select_best_on_val) == (
        0.1, 1e-4, 30, 32, 2, "cosine", True)
    assert FairFaceSource().model.image_size == 64


def test_task_grid():
    ts = tasks()
    assert len(ts) == 6 and {t.forget_group for t in ts} == {23} and not any(t.default for t in ts)
    assert [t.id for t in ts][:2] == ["fairface/g23-r0.1-skew1.0", "fairface/g23-r0.1-uniform"]
    assert ts[0].source.name == "fairface"


def expect_error(source: FairFaceSource, *fragments: str) -> None:
    expect_layout_error(source, LAYOUT, *fragments)


def test_missing_and_malformed_copies_say_what_is_expected(tmp_path):
    expect_error(FairFaceSource(path=str(tmp_path / "nowhere")), "does not exist")
    (tmp_path / "empty").mkdir()
    expect_error(FairFaceSource(path=str(tmp_path / "empty")), "is not a copy")
    good = release_fixture(tmp_path / "good")

    def broken(name: str) -> Path:
        return Path(shutil.copytree(good, tmp_path / name))

    bad = broken("no_val")
    (bad / "fairface_label_val.csv").unlink()
    expect_error(FairFaceSource(path=str(bad)), "fairface_label_val.csv missing (the validation split)")
    bad = broken("no_race")
    (bad / "fairface_label_train.csv").write_text("file,age,gender\ntrain/1.jpg,20-29,Male\n")
    expect_error(FairFaceSource(path=str(bad)), "malformed", "['race'] missing")
    bad = broken("unknown_age")
    csv = bad / "fairface_label_train.csv"
    csv.write_text(csv.read_text().replace(",20-29,", ",twenties,"))
    expect_error(FairFaceSource(path=str(bad)), "unknown label(s) ['twenties']", "fairface_label_train.csv age")
    bad = broken("unknown_race")
    csv = bad / "fairface_label_val.csv"
    csv.write_text(csv.read_text().replace(",Black,", ",Martian,"))
    expect_error(FairFaceSource(path=str(bad)), "unknown label(s) ['Martian']")
    bad = broken("no_image")
    (bad / "val" / "301.jpg").unlink()
    expect_error(FairFaceSource(path=str(bad)), "image file missing", "301.jpg")
    bad = broken("empty_csv")
    (bad / "fairface_label_train.csv").write_text("")
    expect_error(FairFaceSource(path=str(bad)), "malformed")
    no_validation = hub_fixture(tmp_path / "no_validation", "parquet", splits=("train",))
    expect_error(FairFaceSource(path=str(no_validation)), "['validation'] missing")


def test_data_check_compares_the_distributed_totals(cli, copy):
    code, out, _ = cli("data", "check", "fairface", "--from", str(copy))
    assert code == 1
    out = " ".join(out.split())  # the console wraps the 63 counts
    per_group = [0] * 63
    for _, y, a in DIST_ROWS["train"]:
        per_group[7 * y + a] += 1
    assert f"train: 90 rows; per group {per_group}; published 86744 rows" in out
    assert "mismatch: train: found 90 rows, published 86744" in out
    assert "mismatch: validation: found 27 rows, published 10954" in out
    assert "2 mismatches with the published counts" in out


@pytest.mark.slow
def test_tiny_benchmark_on_fairface(cli, tmp_path):
    copy = hub_fixture(tmp_path / "fairface", "parquet")
    in_train = FairFaceSource(path=str(copy)).records()["train"]
    g_star = int(((in_train.y * 7 + in_train.a) == 23).sum())
    assert g_star >= 8  # enough rows of g* in TRAIN to forget half of them and keep some
    board = run_tiny_benchmark(cli, tmp_path, "fairface/g23-r0.5-skew1.0", copy, ["original", "finetune"])
    assert {e["method"] for e in board["entries"]} == {"original", "finetune", "retrain"}
    task = board["tasks"][0]
    assert task["forget_size"] == round(0.5 * g_star) and task["dataset"] == "fairface"
    assert task["forget_group_name"] == "20-29, Black" and task["num_groups"] == 63
