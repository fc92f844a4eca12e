"""Adult in each format users hold it: Hub parquet copy, save_to_disk copy, a clone with
adult.csv, the Hub's older parquet conversion, and the UCI release (adult.data, adult.test)."""

from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark.errors import BenchmarkError
from benchmark.model import build_model
from tasks.adult import COLUMNS, FEATURE_NAMES, NUM_FEATURES, NUMERIC, VOCABULARIES, AdultSource, hub_splits, tasks
from tasks.common import seeded_split
from tests.fixtures import assert_cache_is_reused, hub_copy, run_tiny_benchmark

LOW = {"age": 20, "fnlwgt": 10000, "education-num": 1, "capital-gain": 0, "capital-loss": 0, "hours-per-week": 10}
HIGH = {"age": 70, "fnlwgt": 510000, "education-num": 16, "capital-gain": 10000, "capital-loss": 2000, "hours-per-week": 90}
CATEGORICAL = list(VOCABULARIES)

# Hand-made records and the rows they must become (numeric scaled with TRAIN's LOW..HIGH,
# which every copy's TRAIN holds: a third of the generated rows sit at each end).
HALF = dict(age=45, workclass="Self-emp-inc", fnlwgt=260000, education="Masters", **{"education-num": 16},
            **{"marital-status": "Never-married"}, occupation="?", relationship="Wife", race="Black", sex="Female",
            **{"capital-gain": 2500, "capital-loss": 0, "hours-per-week": 50, "native-country": "Holand-Netherlands"},
            income=">50K")
HALF_ROW = {"age": 0.5, "fnlwgt": 0.5, "education-num": 1.0, "capital-gain": 0.25, "hours-per-week": 0.5,
            "workclass=Self-emp-inc": 1, "education=Masters": 1, "marital-status=Never-married": 1, "relationship=Wife": 1,
            "race=Black": 1, "native-country=Holand-Netherlands": 1}
OUTSIDE = dict(HALF, age=95, fnlwgt=10000, **{"hours-per-week": 5, "capital-loss": 4000}, workclass="?",
               **{"native-country": "?"}, sex="Male", income="<=50K", occupation="Armed-Forces")
OUTSIDE_ROW = {"age": 1.0, "education-num": 1.0, "capital-gain": 0.25, "capital-loss": 1.0, "education=Masters": 1,
               "marital-status=Never-married": 1, "occupation=Armed-Forces": 1, "relationship=Wife": 1, "race=Black": 1}


def generated(n: int, seed: int) -> list[dict]:
    """n records, group g = 2y + a equally often; numeric values at LOW, HIGH or between."""
    rng = np.random.default_rng(seed)
    groups = rng.permutation(np.arange(n) % 4)
    rows = []
    for i, g in enumerate(groups):
        row = {}
        for c in NUMERIC:
            row[c] = [LOW[c], HIGH[c], int(rng.integers(LOW[c], HIGH[c] + 1))][i % 3]
        for j, c in enumerate(CATEGORICAL):
            vocab = VOCABULARIES[c]
            row[c] = "?" if c in ("workclass", "occupation", "native-country") and (i + j) % 9 == 0 else vocab[(i * 5 + j) % len(vocab)]
        row["sex"] = ["Female", "Male"][g % 2]
        row["income"] = ["<=50K", ">50K"][g // 2]
        rows.append(row)
    return rows


DATA = [HALF] + generated(47, 0)  # adult.data, or the Hub's one split
TEST = [HALF, OUTSIDE] + generated(22, 1)  # adult.test


def uci_line(row: dict, test: bool) -> str:
    values = [str(row[c]) for c in COLUMNS]
    if test:
        values[-1] += "."
    return ", ".join(values)


def uci_fixture(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "adult.data").write_text("\n".join(uci_line(r, False) for r in DATA) + "\n\n")
    (root / "adult.test").write_text("|1x3 Cross validator\n" + "\n".join(uci_line(r, True) for r in TEST) + "\n")
    (root / "adult.names").write_text("| This data was extracted from the census bureau database\n")
    return root


def hub_columns(rows: list[dict], drop: str = "") -> dict[str, list]:
    return {c.replace("-", "."): [r[c] for r in rows] for c in COLUMNS if c != drop}


def hub_fixture(root: Path, kind: str, drop: str = "", split: str = "train") -> Path:
    if kind == "csv":  # a clone of the Hub repository
        import pandas as pd

        root.mkdir(parents=True)
        pd.DataFrame(hub_columns(DATA, drop)).to_csv(root / "adult.csv", index=False)
        return root
    if kind == "converted":  # the Hub's parquet conversion today: default/train/0000.parquet
        import pandas as pd

        (root / "default" / "train").mkdir(parents=True)
        pd.DataFrame(hub_columns(DATA, drop)).to_parquet(root / "default" / "train" / "0000.parquet")
        return root
    if kind == "legacy":  # the Hub's older parquet conversion
        import pandas as pd

        (root / "scikit-learn--adult-census-income").mkdir(parents=True)
        pd.DataFrame(hub_columns(DATA, drop)).to_parquet(root / "scikit-learn--adult-census-income" / "csv-train.parquet")
        return root
    return hub_copy(root, {split: hub_columns(DATA, drop)}, "", kind)


@pytest.fixture(params=["parquet", "converted", "arrow", "csv", "legacy", "uci"])
def copy(request, tmp_path) -> Path:
    root = tmp_path / request.param
    return uci_fixture(root) if request.param == "uci" else hub_fixture(root, request.param)


def expected_splits(kind: str) -> dict[str, list[dict]]:
    if kind == "uci":
        val, train = seeded_split(len(DATA), 0.1, seed=0)
        return {"train": [DATA[i] for i in train], "val": [DATA[i] for i in val], "test": TEST}
    return {s: [DATA[i] for i in rows] for s, rows in hub_splits(len(DATA)).items()}


def row_of(expected: dict) -> np.ndarray:
    x = np.zeros(NUM_FEATURES, dtype=np.float32)
    for name, value in expected.items():
        x[FEATURE_NAMES.index(name)] = value
    return x


def test_feature_layout_is_fixed():
    assert NUM_FEATURES == 103 == 6 + 8 + 16 + 7 + 14 + 6 + 5 + 41
    assert FEATURE_NAMES[:7] == (*NUMERIC, "workclass=Private") and FEATURE_NAMES[-1] == "native-country=Holand-Netherlands"
    assert not any(n.startswith(("sex", "income")) for n in FEATURE_NAMES)


def test_every_format_loads_with_the_right_groups_row_by_row(copy, tmp_path):
    data = AdultSource(path=str(copy)).load(tmp_path / "cache")
    kind = copy.name
    expected = expected_splits(kind)
    sizes = (44, 4, 24) if kind == "uci" else (35, 4, 9)
    assert (len(data.train), len(data.val), len(data.test)) == sizes
    assert data.train.x.shape == (sizes[0], NUM_FEATURES) and data.train.x.dtype == torch.float32
    for split, rows in expected.items():
        s = data.split(split)
        x = s.x.numpy()
        assert x.min() >= 0.0 and x.max() <= 1.0
        assert s.y.tolist() == [int(r["income"] == ">50K") for r in rows]
        assert s.a.tolist() == [int(r["sex"] == "Male") for r in rows]
        assert data.groups(split).tolist() == (s.y * 2 + s.a).tolist()
        for i, r in enumerate(rows):  # each one-hot block names the record's value, or nothing for '?'
            for c in CATEGORICAL:
                hot = [FEATURE_NAMES[j] for j in np.flatnonzero(x[i]) if FEATURE_NAMES[j].startswith(c + "=")]
                assert hot == ([] if r[c] == "?" else [f"{c}={r[c]}"])
        for i, r in enumerate(rows):  # the hand-made records, exactly
            if r is HALF:
                assert np.array_equal(x[i], row_of(HALF_ROW)), split
            if r is OUTSIDE:
                assert np.array_equal(x[i], row_of(OUTSIDE_ROW)), split
    if kind == "uci":
        assert np.array_equal(data.test.x[0].numpy(), row_of(HALF_ROW))
        assert np.array_equal(data.test.x[1].numpy(), row_of(OUTSIDE_ROW))
    assert data.group_name(2) == ">50K, female" and data.augment == "none" and data.num_groups == 4


def test_the_cache_is_reused(tmp_path):
    source = AdultSource(path=str(uci_fixture(tmp_path / "uci")))
    assert_cache_is_reused(source, tmp_path / "cache")


def test_presets_model_and_task_grid():
    for preset in ("quick", "paper"):
        source = AdultSource(preset=preset)
        m = source.model
        assert (m.backbone, m.image_size, m.mean, m.std, m.channels_last, m.in_features) == ("mlp:128,64", 0, (), (), False, 103)
        assert source.recipe.batch_size == 256
    model = build_model(AdultSource().model, 2, seed=0).eval()
    assert model(torch.rand(5, NUM_FEATURES)).shape == (5, 2) and model.stages() == ["blocks.0", "blocks.1"]
    ts = tasks()
    assert len(ts) == 6 and {t.forget_group for t in ts} == {2} and not any(t.default for t in ts)
    assert [t.id for t in ts][:2] == ["adult/g2-r0.1-skew1.0", "adult/g2-r0.1-uniform"]


def test_hub_splits_are_a_seeded_70_10_20_partition():
    parts = hub_splits(32561)
    assert {s: len(r) for s, r in parts.items()} == {"train": 22793, "val": 3256, "test": 6512}
    assert np.array_equal(np.sort(np.concatenate(list(parts.values()))), np.arange(32561))
    assert all(np.array_equal(parts[s], hub_splits(32561)[s]) for s in parts)


def test_missing_and_malformed_copies_say_what_is_expected(tmp_path):
    with pytest.raises(BenchmarkError, match="does not exist.*adult.data and adult.test"):
        AdultSource(path=str(tmp_path / "nowhere")).splits()
    (tmp_path / "empty").mkdir()
    with pytest.raises(BenchmarkError, match="not a copy.*scikit-learn/adult-census-income"):
        AdultSource(path=str(tmp_path / "empty")).splits()
    partial = uci_fixture(tmp_path / "partial")
    (partial / "adult.test").unlink()
    with pytest.raises(BenchmarkError, match="adult.test is missing"):
        AdultSource(path=str(partial)).splits()
    short = uci_fixture(tmp_path / "short")
    (short / "adult.data").write_text("39, State-gov, 77516, Bachelors\n")
    with pytest.raises(BenchmarkError, match="adult.data is malformed: 4 columns, not 15"):
        AdultSource(path=str(short)).splits()
    ragged = uci_fixture(tmp_path / "ragged")
    (ragged / "adult.data").write_text(uci_line(DATA[0], False) + "\n" + uci_line(DATA[1], False) + ", 7\n")
    with pytest.raises(BenchmarkError, match="adult.data is malformed.*ParserError"):
        AdultSource(path=str(ragged)).splits()
    words = uci_fixture(tmp_path / "words")
    (words / "adult.test").write_text(uci_line(dict(HALF, age="old"), True) + "\n")
    with pytest.raises(BenchmarkError, match="column age holds 'old', not a number"):
        AdultSource(path=str(words)).splits()


def test_unknown_values_missing_columns_and_splits(tmp_path):
    odd = uci_fixture(tmp_path / "odd")
    (odd / "adult.test").write_text(uci_line(dict(HALF, income="maybe"), True) + "\n")
    with pytest.raises(BenchmarkError, match=r"column income has unknown value\(s\) \['maybe'\]"):
        AdultSource(path=str(odd)).splits()
    (odd / "adult.test").write_text(uci_line(dict(HALF, sex="F"), True) + "\n")
    with pytest.raises(BenchmarkError, match=r"column sex has unknown value\(s\) \['F'\]"):
        AdultSource(path=str(odd)).splits()
    (odd / "adult.test").write_text(uci_line(dict(HALF, race="Martian"), True) + "\n")
    with pytest.raises(BenchmarkError, match=r"column race has unknown value\(s\) \['Martian'\]"):
        AdultSource(path=str(odd)).splits()
    for kind in ("parquet", "csv"):
        with pytest.raises(BenchmarkError, match=r"column\(s\) \['sex'\] missing.*sex, capital.gain"):
            AdultSource(path=str(hub_fixture(tmp_path / f"nosex-{kind}", kind, drop="sex"))).splits()
    with pytest.raises(BenchmarkError, match=r"split\(s\) \['train'\] missing; found \['test'\].*adult-census-income"):
        AdultSource(path=str(hub_fixture(tmp_path / "nosplit", "arrow", split="test"))).splits()


def test_data_check_names_mismatches(cli, tmp_path):
    code, out, _ = cli("data", "check", "adult", "--from", str(uci_fixture(tmp_path / "uci")))
    out = " ".join(out.split())  # the console wraps long lines
    assert code == 1
    assert "train: 48 rows; per group [12, 12, 13, 11]; published 32561 rows" in out
    assert "test: 24 rows; per group" in out and "mismatch: test: found 24 rows, published 16281" in out
    code, out, _ = cli("data", "check", "adult", "--from", str(hub_fixture(tmp_path / "hub", "parquet")))
    assert code == 1 and "train: 48 rows" in " ".join(out.split()) and "1 mismatch with" in " ".join(out.split())


def test_attacks_run_on_table_rows():
    from benchmark.metrics.robustness import AttackSettings, robust_metrics

    model = build_model(AdultSource().model, 2, seed=0).eval()
    x, y = torch.rand(8, NUM_FEATURES), torch.arange(8) % 2
    out = robust_metrics(model, x, y, y, 2, AttackSettings(rows=8, square_queries=5, aa_steps=2, pgd_steps=2), torch.device("cpu"))
    assert set(out) == {"pgd_acc", "pgd_worst_group_acc", "autoattack_reduced_acc", "autoattack_reduced_worst_group_acc"}




@pytest.mark.slow
def test_tiny_benchmark_on_adult(cli, tmp_path, one_thread):
    copy = uci_fixture(tmp_path / "adult")
    board = run_tiny_benchmark(cli, tmp_path, "adult/g2-r0.5-skew1.0", copy, ["original", "finetune", "cf_k"])
    assert {e["method"] for e in board["entries"]} == {"original", "finetune", "cf_k", "retrain"}
    in_g2 = sum(r["income"] == ">50K" and r["sex"] == "Female" for r in expected_splits("uci")["train"])
    assert board["tasks"][0]["forget_size"] == round(0.5 * in_g2) and board["tasks"][0]["dataset"] == "adult"
