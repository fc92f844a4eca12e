"""Adult / Census Income (Kohavi & Becker, UCI 1996): a table dataset, income by sex.

y = income > 50K (1), a = sex (0 Female, 1 Male), groups g = 2y + a; g* = 2, the
high-income women (the smallest cell: about 3.6% of adult.data).

Inputs: one float32 row of ``NUM_FEATURES`` = 103 values in [0, 1] per person, the same for
every copy of the data: the 6 numeric columns (age, fnlwgt, education-num, capital-gain,
capital-loss, hours-per-week) min-max scaled with TRAIN's minimum and maximum (clipped to
[0, 1] on VAL and TEST), then the 7 categorical columns one-hot over the fixed vocabularies of
UCI's adult.names (``VOCABULARIES``; a missing value, '?', is all zeros). ``sex`` (the group
attribute) and ``income`` (the target) are left out of the inputs; ``relationship`` (Husband,
Wife) stays in, as in the usual Adult benchmarks, so sex can still be inferred from it.
``FEATURE_NAMES`` names every column.

Reads, with no ``path``, the UCI release shipped inside this package (``tasks/data/adult``:
adult.data and adult.test gzipped, unchanged otherwise; CC BY 4.0; see its README.md), so the
default benchmark needs no download. A ``path`` names another copy, in this order of
preference: a local copy of the Hub dataset ``scikit-learn/adult-census-income`` (a copy of
Kaggle's adult.csv, which is UCI's adult.data: one split, train, 32,561 rows; columns age,
workclass, fnlwgt, education, education.num, marital.status, occupation, relationship, race,
sex, capital.gain, capital.loss, hours.per.week, native.country, income with values
'<=50K'/'>50K'; as parquet files, a ``save_to_disk`` folder, or a clone of the Hub repository
with its adult.csv), or the original UCI release (a folder with adult.data and adult.test, or
their .gz forms: no header, 15 comma-separated columns, '?' for a missing value; adult.test
starts with a '|1x3 Cross validator' line and ends its income values with '.'). ``path="hub"``
reads the Hub itself.

Splits. UCI release: TRAIN and VAL a seeded 90/10 split of adult.data (``seeded_split``,
seed 0: 29,305 / 3,256 rows), TEST = adult.test (16,281 rows). The Hub copy holds adult.data
only, so its one split is cut seeded 70/10/20 into TRAIN/VAL/TEST (``hub_splits``: 22,793 /
3,256 / 6,512 rows of the 32,561) — a TEST drawn from adult.data, not UCI's adult.test, so
results from the two copies are not comparable.

Presets. ``paper`` keeps every row. ``quick`` (the default) keeps a seeded sample of 3,000
TRAIN and 750 VAL rows in which each group keeps its share (``proportional_sample``), and all
of TEST: the membership-inference attack fits random forests on every RETAIN and VAL row (about
30 s a cell at the full size on one core, about 1.5 s at this one). The sample is part of the
fingerprint, and of the dataset's ``title`` in the leaderboard.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from benchmark import (
    BenchmarkError, DatasetWriter, holds, Layout, LocalCopy, miu_grid, ModelSpec, open_hub, PresetSource, proportional_sample,
    Recipe, Report, seeded_split, Task,
)

COLUMNS = (
    "age", "workclass", "fnlwgt", "education", "education-num", "marital-status", "occupation",
    "relationship", "race", "sex", "capital-gain", "capital-loss", "hours-per-week", "native-country", "income",
)  # UCI's order; the Hub copy writes '.' for '-'
NUMERIC = ("age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week")
# The values of each categorical column, in the order of UCI's adult.names.
VOCABULARIES: dict[str, tuple[str, ...]] = {
    "workclass": ("Private", "Self-emp-not-inc", "Self-emp-inc", "Federal-gov", "Local-gov", "State-gov",
                  "Without-pay", "Never-worked"),
    "education": ("Bachelors", "Some-college", "11th", "HS-grad", "Prof-school", "Assoc-acdm", "Assoc-voc", "9th",
                  "7th-8th", "12th", "Masters", "1st-4th", "10th", "Doctorate", "5th-6th", "Preschool"),
    "marital-status": ("Married-civ-spouse", "Divorced", "Never-married", "Separated", "Widowed",
                       "Married-spouse-absent", "Married-AF-spouse"),
    "occupation": ("Tech-support", "Craft-repair", "Other-service", "Sales", "Exec-managerial", "Prof-specialty",
                   "Handlers-cleaners", "Machine-op-inspct", "Adm-clerical", "Farming-fishing", "Transport-moving",
                   "Priv-house-serv", "Protective-serv", "Armed-Forces"),
    "relationship": ("Wife", "Own-child", "Husband", "Not-in-family", "Other-relative", "Unmarried"),
    "race": ("White", "Asian-Pac-Islander", "Amer-Indian-Eskimo", "Other", "Black"),
    "native-country": ("United-States", "Cambodia", "England", "Puerto-Rico", "Canada", "Germany",
                       "Outlying-US(Guam-USVI-etc)", "India", "Japan", "Greece", "South", "China", "Cuba", "Iran",
                       "Honduras", "Philippines", "Italy", "Poland", "Jamaica", "Vietnam", "Mexico", "Portugal",
                       "Ireland", "France", "Dominican-Republic", "Laos", "Ecuador", "Taiwan", "Haiti", "Columbia",
                       "Hungary", "Guatemala", "Nicaragua", "Scotland", "Thailand", "Yugoslavia", "El-Salvador",
                       "Trinadad&Tobago", "Peru", "Hong", "Holand-Netherlands"),
}
MISSING = "?"
FEATURE_NAMES = (*NUMERIC, *(f"{c}={v}" for c, vocab in VOCABULARIES.items() for v in vocab))
NUM_FEATURES = len(FEATURE_NAMES)  # 6 + 97 = 103
INCOME = {"<=50K": 0, ">50K": 1}
SEX = {"Female": 0, "Male": 1}
HUB_SPLIT = "train"
VAL_SHARE = 0.1  # UCI: of adult.data
HUB_SHARES = (0.7, 0.1, 0.2)  # the Hub copy: TRAIN / VAL / TEST of its one split
UCI_FILES = {"train": "adult.data", "test": "adult.test"}  # each may also be gzipped (.gz)
SAMPLE_SEEDS = {"train": 2, "val": 3}  # the quick preset's samples (0 and 1 cut the splits)


@dataclass(frozen=True)
class Table:
    """Rows of one split, parsed: numeric values, category ids (-1 missing), target, attribute."""

    numeric: np.ndarray  # float64 [N, 6]
    categories: np.ndarray  # int64 [N, 7]
    y: np.ndarray
    a: np.ndarray

    def take(self, rows: np.ndarray) -> Table:
        return Table(self.numeric[rows], self.categories[rows], self.y[rows], self.a[rows])

    def __len__(self) -> int:
        return len(self.y)


def features(table: Table, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """float32 [N, NUM_FEATURES] in [0, 1]: scaled numeric columns, then the one-hot blocks."""
    n = len(table)
    x = np.zeros((n, NUM_FEATURES), dtype=np.float32)
    span = np.where(high > low, high - low, 1.0)
    x[:, : len(NUMERIC)] = np.clip((table.numeric - low) / span, 0.0, 1.0)
    offset = len(NUMERIC)
    rows = np.arange(n)
    for j, vocab in enumerate(VOCABULARIES.values()):
        ids = table.categories[:, j]
        known = ids >= 0
        x[rows[known], offset + ids[known]] = 1.0
        offset += len(vocab)
    return x


def hub_splits(n: int) -> dict[str, np.ndarray]:
    """Rows (sorted) of the Hub copy's one split that make TRAIN, VAL and TEST: a seeded
    20% for TEST, then 1/8 of the rest (10% of all) for VAL."""
    test, rest = seeded_split(n, HUB_SHARES[2], seed=0)
    val, train = seeded_split(len(rest), 0.125, seed=1)  # 1/8 of the 80% left: 10% of all
    return {"train": rest[train], "val": rest[val], "test": test}


@dataclass(frozen=True)
class AdultSource(LocalCopy, PresetSource):
    path: str | None = None
    preset: str = "quick"
    name: str = "adult"

    hub_id: ClassVar[str] = "scikit-learn/adult-census-income"
    num_classes: ClassVar[int] = 2
    num_attributes: ClassVar[int] = 2
    class_names: ClassVar[tuple[str, ...]] = ("<=50K", ">50K")
    attribute_names: ClassVar[tuple[str, ...]] = ("female", "male")
    version: ClassVar[int] = 1
    # UCI's totals (adult.names: 32,561 train, 16,281 test). The Hub copy is adult.data alone:
    # its one split, train, holds the same 32,561 rows.
    published_counts = {"train": 32561, "test": 16281}
    layouts = (
        "a local copy of the Hub dataset scikit-learn/adult-census-income (parquet files, a save_to_disk folder "
        "or a clone with adult.csv; split train; columns age, workclass, fnlwgt, education, education.num, "
        "marital.status, occupation, relationship, race, sex, capital.gain, capital.loss, hours.per.week, "
        "native.country, income ('<=50K'/'>50K')), or the UCI folder with adult.data and adult.test or their .gz "
        "forms (no header, 15 comma-separated columns age, workclass, ..., native-country, income)"
    )
    shipped: ClassVar[Path | None] = Path(__file__).parent / "data" / "adult"
    shipped_files: ClassVar[tuple[str, ...]] = ("adult.data.gz", "adult.test.gz")
    _model = ModelSpec(backbone="mlp:128,64", image_size=0, mean=(), std=(), channels_last=False, in_features=NUM_FEATURES)
    # REFERENCE gives no recipe for Adult (none of the seed papers uses it): ours, an MLP
    # 103-128-64-2 with SGD (momentum 0.9) lr 0.05, batch 256, wd 5e-4, best-validation weights.
    presets = {
        "quick": (_model, Recipe(epochs=5, batch_size=256, lr=0.05, warmup_epochs=1)),
        "paper": (_model, Recipe(epochs=10, batch_size=256, lr=0.05, warmup_epochs=1)),
    }
    # rows kept of TRAIN and VAL per preset (a group-proportional sample; None: every row)
    subsample: ClassVar[dict[str, dict[str, int] | None]] = {"quick": {"train": 3000, "val": 750}, "paper": None}

    # -- identity ------------------------------------------------------------------
    def identity(self) -> dict[str, Any]:
        sample = self.sample()  # absent with every row, so the paper preset's caches are those of before
        return {"version": self.version, "from": self.where(), "features": NUM_FEATURES, **({"sample": sample} if sample else {})}

    def sample(self) -> dict[str, int] | None:
        """The rows the preset keeps of TRAIN and VAL (None: every row)."""
        self._chosen()  # an unknown preset fails here, naming the presets
        return self.subsample.get(self.preset)

    @property
    def title(self) -> str:
        """'Adult', and with the quick preset how many rows it keeps of the release's."""
        sample = self.sample()
        if not sample:
            return self.name
        full = self.full_sizes()
        kept = ", ".join(f"{min(sample[s], full[s]):,} of {full[s]:,} {s.upper()}" for s in ("train", "val"))
        return f"Adult ({self.preset}: {kept} rows)"

    def full_sizes(self) -> dict[str, int]:
        """TRAIN and VAL rows before the sample, as the release this copy is (UCI's, or the Hub's
        adult.data alone) gives them: its published size cut by the split rule."""
        n = self.published_counts["train"]
        root = self.location()
        layout = self.layout(root) if root is not None and root.exists() else None
        if root is None or (layout is not None and layout.read != self._from_uci):
            return {s: len(rows) for s, rows in hub_splits(n).items() if s != "test"}
        val, train = seeded_split(n, VAL_SHARE, seed=0)
        return {"train": len(train), "val": len(val)}

    # -- reading: the splits as distributed, UCI {'train': adult.data, 'test': adult.test}, the Hub {'train'}
    def readers(self) -> tuple[Layout, ...]:
        return (
            self.hub_copy(),
            Layout(holds("adult.csv"), self._from_clone),
            Layout(holds(*UCI_FILES.values(), *(f"{f}.gz" for f in UCI_FILES.values())), self._from_uci),
        )

    def from_hub(self, root: Path | None) -> dict[str, Table]:
        frame = open_hub(self.hub_id, root, [HUB_SPLIT])[HUB_SPLIT].to_pandas()
        return {HUB_SPLIT: self._parse(frame, f"{root or self.hub_id} ({HUB_SPLIT})")}

    def _from_clone(self, root: Path) -> dict[str, Table]:
        return {HUB_SPLIT: self._parse(_read_csv(root / "adult.csv"), str(root / "adult.csv"))}

    def _from_uci(self, root: Path) -> dict[str, Table]:
        out = {}
        for split, name in UCI_FILES.items():
            file = next((root / f for f in (name, f"{name}.gz") if (root / f).is_file()), None)
            if file is None:
                raise BenchmarkError(f"{self.name}: {root / name} is missing (nor is there {name}.gz)")
            out[split] = self._parse(_read_uci(file), str(file))
        return out

    def _parse(self, frame: Any, where: str) -> Table:
        """Check and convert one split's columns (UCI or Hub names)."""
        import pandas as pd

        frame = frame.rename(columns={c: str(c).strip().replace(".", "-") for c in frame.columns})
        missing = [c for c in COLUMNS if c not in frame.columns]
        if missing:
            raise BenchmarkError(f"{where}: column(s) {missing} missing; found {list(frame.columns)}")
        numeric = np.empty((len(frame), len(NUMERIC)))
        for j, name in enumerate(NUMERIC):
            values = pd.to_numeric(frame[name], errors="coerce")
            if values.isna().any():
                bad = frame[name][values.isna()].iloc[0]
                raise BenchmarkError(f"{where}: column {name} holds {bad!r}, not a number")
            numeric[:, j] = values.to_numpy(dtype=np.float64)
        categories = np.empty((len(frame), len(VOCABULARIES)), dtype=np.int64)
        for j, (name, vocab) in enumerate(VOCABULARIES.items()):
            categories[:, j] = _codes(frame[name], {MISSING: -1, **{v: i for i, v in enumerate(vocab)}}, name, where)
        income = frame["income"].astype(str).str.strip().str.rstrip(".")  # adult.test: '<=50K.'
        y = _codes(income, INCOME, "income", where)
        a = _codes(frame["sex"], SEX, "sex", where)
        return Table(numeric, categories, y, a)

    def splits(self) -> dict[str, Table]:
        """TRAIN, VAL and TEST as this benchmark uses them (see the module's docstring)."""
        dist = self.read()
        if "test" in dist:  # UCI
            val, train = seeded_split(len(dist["train"]), VAL_SHARE, seed=0)
            splits = {"train": dist["train"].take(train), "val": dist["train"].take(val), "test": dist["test"]}
        else:
            splits = {split: dist[HUB_SPLIT].take(rows) for split, rows in hub_splits(len(dist[HUB_SPLIT])).items()}
        return self.sampled(splits)

    def sampled(self, splits: dict[str, Table]) -> dict[str, Table]:
        """The splits with the preset's sample of TRAIN and VAL taken (TEST whole)."""
        sample = self.sample() or {}
        return {
            split: table.take(proportional_sample(2 * table.y + table.a, sample[split], SAMPLE_SEEDS[split]))
            if split in sample else table
            for split, table in splits.items()
        }

    # -- writing -------------------------------------------------------------------
    def write(self, out: DatasetWriter, report: Report = lambda what, done, total: None) -> None:
        splits = self.splits()
        train = splits["train"].numeric
        low, high = train.min(axis=0), train.max(axis=0)
        for split, table in splits.items():
            report(f"encoding {self.name} {split}", 0, len(table))
            out.put(split, features(table, low, high), table.y, table.a)
            report(f"encoding {self.name} {split}", len(table), len(table))
        out.finish(
            num_classes=self.num_classes,
            num_attributes=self.num_attributes,
            class_names=self.class_names,
            attribute_names=self.attribute_names,
            augment="none",
        )


def _codes(values: Any, codes: dict[str, int], name: str, where: str) -> np.ndarray:
    """Integer codes of a column of strings (stripped); an unknown value is an error naming it."""
    text = values.astype(str).str.strip()
    mapped = text.map(codes)
    if mapped.isna().any():
        unknown = sorted(set(text[mapped.isna()]))[:5]
        raise BenchmarkError(f"{where}: column {name} has unknown value(s) {unknown}; known: {sorted(codes)}")
    return mapped.to_numpy(dtype=np.int64)


def _read_uci(file: Path) -> Any:
    """adult.data or adult.test: 15 comma-separated columns, no header ('|' lines skipped)."""
    import pandas as pd

    try:  # a .gz file is decompressed on the way (pandas goes by the suffix)
        frame = pd.read_csv(file, header=None, skipinitialspace=True, comment="|", dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError, OSError, EOFError,
            zlib.error) as err:  # OSError covers gzip.BadGzipFile
        raise BenchmarkError(f"{file} is malformed ({type(err).__name__}: {err})") from None
    if frame.shape[1] != len(COLUMNS):
        raise BenchmarkError(f"{file} is malformed: {frame.shape[1]} columns, not {len(COLUMNS)}")
    empty = (frame == "").any(axis=1)
    if empty.any():
        raise BenchmarkError(f"{file} is malformed: row {int(np.flatnonzero(empty)[0]) + 1} has an empty field")
    frame.columns = list(COLUMNS)
    return frame


def _read_csv(file: Path) -> Any:
    """The Hub repository's adult.csv (a header line, Hub column names)."""
    import pandas as pd

    try:
        return pd.read_csv(file, skipinitialspace=True, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as err:
        raise BenchmarkError(f"{file} is malformed ({type(err).__name__}: {err})") from None


def tasks(**settings: Any) -> list[Task]:
    """MIU's grid on Adult: g* = high-income women (2), r in {0.1, 0.5, 0.9}, skew 1.0 and
    uniform; the default benchmark runs r = 0.9 (the shipped copy needs no download). Settings:
    ``path`` (a local copy; "hub" the Hub; none the shipped UCI release), ``preset`` ('quick', a
    group-proportional sample of TRAIN and VAL, or 'paper')."""
    return miu_grid(AdultSource(**settings), forget_group=2, default_fraction=0.9)
