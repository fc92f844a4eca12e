"""The leaderboard's statistics (and the claims'): intervals over seeds, a paired bootstrap over
TEST rows, rank bands and the "like gold" test. Plain functions of numbers and arrays; which
entries and metrics they are applied to is scoring.py's business.

At level L = 0.95 (two-sided):

- t-interval over seeds, of values x_1..x_n (one per seed; the per-seed differences of two
  entries for a paired comparison): mean ± t_{(1+L)/2, n−1} · sd / √n, sd the sample standard
  deviation, t Student's quantile (scipy.stats.t); undefined for n < 2
- paired bootstrap over TEST rows: the n TEST rows of a task are the same rows for every
  method and seed, so a resample draws n row positions with replacement once and every cell's
  predictions are read at those same positions (scipy.stats.bootstrap, ``paired=True``).
  A statistic is a mean over seeds of a per-cell accuracy (``test_acc``, ``group_acc/<g>`` ...),
  or a difference of two such means (method − gold, seed for seed). Its interval is the
  (1−L)/2 and (1+L)/2 percentiles of the statistic over B = 1,000 resamples, random_state 0.
  It measures the test-set sampling noise of the trained models, not the seed-to-seed spread
- rank band of entry i among N ranked entries with intervals [lo_j, hi_j] of the ranking key
  (lower is better): best_i = 1 + #{j ≠ i : hi_j < lo_i}, worst_i = N − #{j ≠ i : lo_j > hi_i};
  the ranks i could hold when every entry whose interval overlaps its own may be tied with it
- like gold: every interval of (method − gold) contains 0
"""

from __future__ import annotations

import math
import statistics
import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np
from scipy import stats

from benchmark.metrics.predictions import Predictions

LEVEL = 0.95
N_RESAMPLES = 1000
RANDOM_STATE = 0
#: cells × rows × resamples held at once by the bootstrap (as booleans): about 50 MB
_BATCH_CELLS = 50_000_000

STATISTICS = {
    "level": LEVEL,
    "seeds": "ci: the 95% t-interval over seeds of the defined values, mean ± t(0.975, n−1) · sd / √n "
    "(sd the sample standard deviation, scipy.stats.t); null with fewer than 2 seeds",
    "bootstrap": "boot: the 95% percentile interval of the seed-mean accuracy from a paired bootstrap over TEST "
    "rows (scipy.stats.bootstrap, paired=True, random_state 0): each resample draws the same TEST rows for "
    "every seed, method and gold of a task; only for accuracies on TEST, from the cells' predictions; "
    "it measures test-set sampling noise, not the spread over seeds",
    "n_resamples": N_RESAMPLES,
    "vs_gold": "per Avg. Gap component, the 95% interval of method − gold: the paired bootstrap over TEST rows "
    "for test_acc and forget_group_test_acc (the same resamples for method and gold), the paired t-interval "
    "over seeds of the per-seed differences for the others; absent where undefined",
    "rank_band": "the ranks an entry could hold at the 95% level: best = 1 + the entries whose avg_gap ci lies "
    "wholly below its own, worst = the ranked entries − those whose ci lies wholly above its own "
    "(overlapping intervals may tie; one seed: the point mean)",
    "like_gold": "true when every vs_gold interval contains 0: the method cannot be told apart from its gold "
    "at the 95% level on the Avg. Gap components; null for gold rows and where no interval is defined",
}


# -- intervals over seeds -------------------------------------------------------------
@dataclass(frozen=True)
class Interval:
    """The t-interval of values (paired differences) over ``seeds``:
    mean ± t_{(1+level)/2, n−1} · sd / √n; NaN ends with fewer than 2 seeds."""

    mean: float
    sd: float
    n: int
    low: float
    high: float
    seeds: tuple[int, ...] = ()

    @property
    def side(self) -> int:
        """+1 if the interval is entirely above 0, −1 if entirely below, else 0."""
        return 1 if self.low > 0 else -1 if self.high < 0 else 0

    @property
    def ends(self) -> tuple[float, float] | None:
        """(low, high), or None when undefined (fewer than 2 seeds)."""
        return (self.low, self.high) if self.n >= 2 else None


@lru_cache(maxsize=None)
def t_quantile(q: float, df: int) -> float:
    """Student's t quantile t_{q, df} (scipy.stats.t; cached: a leaderboard asks for a few
    values thousands of times)."""
    return float(stats.t.ppf(q, df))


def t_interval(values: Sequence[float], seeds: Sequence[int] = (), level: float = LEVEL) -> Interval:
    """mean ± t_{(1+level)/2, n−1} · sd / √n of ``values``."""
    n = len(values)
    mean = statistics.fmean(values) if n else math.nan
    if n < 2:
        return Interval(mean, math.nan, n, math.nan, math.nan, tuple(seeds))
    sd = statistics.stdev(values)
    half = t_quantile((1 + level) / 2, n - 1) * sd / math.sqrt(n)
    return Interval(mean, sd, n, mean - half, mean + half, tuple(seeds))


# -- ranks and the gold test ----------------------------------------------------------
def rank_bands(intervals: Sequence[tuple[float, float]]) -> list[tuple[int, int]]:
    """(best, worst) rank of each of the N entries whose ranking key (lower is better) has the
    interval [lo, hi]: best = 1 + #{others with hi < lo}, worst = N − #{others with lo > hi}."""
    n = len(intervals)
    bands = []
    for i, (low, high) in enumerate(intervals):
        others = [iv for j, iv in enumerate(intervals) if j != i]
        bands.append((1 + sum(h < low for _, h in others), n - sum(lo > high for lo, _ in others)))
    return bands


def contains_zero(intervals: Sequence[tuple[float, float]]) -> bool | None:
    """True when every interval contains 0 (low ≤ 0 ≤ high), False when one does not, None
    when there is none."""
    if not intervals:
        return None
    return all(low <= 0 <= high for low, high in intervals)


# -- the paired bootstrap over TEST rows ----------------------------------------------
@dataclass(frozen=True)
class TestRows:
    """A task's TEST rows in one order (by row index): each row's group, and for each cell
    whether its prediction of the row is right (``correct[c]``, a bool array)."""

    groups: np.ndarray
    num_groups: int
    forget_group: int
    correct: tuple[np.ndarray, ...]


@dataclass(frozen=True)
class Query:
    """A statistic of a task's cells: the mean over the cells ``plus`` of accuracy ``metric``,
    minus the mean over ``minus`` when given (same length: seed for seed, method − gold)."""

    metric: str
    plus: tuple[int, ...]
    minus: tuple[int, ...] = ()


def align_test_rows(predictions: Sequence[Predictions | None]) -> tuple[TestRows | None, list[int | None]]:
    """The TEST rows of a task's cells, sorted by row index, and where each cell's correctness
    sits in ``TestRows.correct`` (None for a cell without predictions, or whose TEST rows,
    groups or forget group differ from the first cell's: it cannot be paired with the others)."""
    rows: TestRows | None = None
    positions: list[int | None] = []
    correct: list[np.ndarray] = []
    for p in predictions:
        if p is None:
            positions.append(None)
            continue
        test = p.mask("test")
        order = np.argsort(p.index[test], kind="stable")
        index, groups = p.index[test][order], p.g[test][order]
        if rows is None:
            rows, reference = TestRows(groups, p.num_groups, p.forget_group, ()), index
        if not (np.array_equal(index, reference) and np.array_equal(groups, rows.groups)
                and (p.num_groups, p.forget_group) == (rows.num_groups, rows.forget_group)):
            positions.append(None)
            continue
        positions.append(len(correct))
        correct.append(p.correct[test][order])
    if rows is None:
        return None, positions
    return TestRows(rows.groups, rows.num_groups, rows.forget_group, tuple(correct)), positions


def accuracies(correct: np.ndarray, groups: np.ndarray, num_groups: int, forget_group: int) -> dict[str, np.ndarray]:
    """Per cell, the TEST accuracies (%) of benchmark/metrics/groups.py, vectorised:
    ``correct`` [cells, ..., n] bool, ``groups`` [..., n]. test_acc = 100 · mean [ŷ = y];
    group_acc/g = the same over the rows of g (NaN where g has no row); worst_group_acc = min_g,
    group_acc_gap = max_g − min_g over the groups with rows; forget_group_test_acc = group_acc/g*.
    Each value has the shape [cells, ...]."""
    out = {"test_acc": 100.0 * np.count_nonzero(correct, axis=-1) / correct.shape[-1]}
    for g in range(num_groups):
        rows = groups == g
        count = np.count_nonzero(rows, axis=-1)
        hits = np.count_nonzero(correct & rows, axis=-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[f"group_acc/{g}"] = np.where(count > 0, 100.0 * hits / count, np.nan)
    per_group = np.stack([out[f"group_acc/{g}"] for g in range(num_groups)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a resample without any row of a group: NaN
        out["worst_group_acc"] = np.nanmin(per_group, axis=0)
        out["group_acc_gap"] = np.nanmax(per_group, axis=0) - out["worst_group_acc"]
    out["forget_group_test_acc"] = out.get(f"group_acc/{forget_group}", np.full_like(out["test_acc"], np.nan))
    return out


def _query_values(per_cell: dict[str, np.ndarray], queries: Sequence[Query]) -> np.ndarray:
    """Each query's value from the per-cell accuracies: shape [queries, ...]."""
    values = []
    for q in queries:
        x = per_cell[q.metric]
        value = x[list(q.plus)].mean(axis=0)
        if q.minus:
            value = value - x[list(q.minus)].mean(axis=0)
        values.append(value)
    return np.stack(values)


def query_values(rows: TestRows, queries: Sequence[Query]) -> np.ndarray:
    """Each query's value on the TEST rows as they are (no resampling): shape [queries]."""
    per_cell = accuracies(np.stack(rows.correct), rows.groups, rows.num_groups, rows.forget_group)
    return _query_values(per_cell, queries)


def paired_bootstrap(
    rows: TestRows, queries: Sequence[Query], n_resamples: int = N_RESAMPLES,
    random_state: int = RANDOM_STATE, level: float = LEVEL,
) -> list[tuple[float, float] | None]:
    """Each query's percentile interval from scipy.stats.bootstrap over the TEST rows, the
    samples (the groups and every cell's correctness) resampled as pairs; None where a
    resample leaves it undefined (NaN) or there are fewer than 2 rows."""
    if not queries or not rows.correct or len(rows.groups) < 2:
        return [None] * len(queries)

    def statistic(groups: np.ndarray, *correct: np.ndarray, axis: int = -1) -> np.ndarray:
        per_cell = accuracies(np.stack(correct), groups, rows.num_groups, rows.forget_group)
        return _query_values(per_cell, queries)

    batch = max(1, _BATCH_CELLS // (len(rows.correct) * len(rows.groups)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns once for an undefined (NaN) interval: None here
        ci = stats.bootstrap(
            (rows.groups, *rows.correct), statistic, paired=True, vectorized=True, axis=-1,
            n_resamples=n_resamples, batch=batch, confidence_level=level, method="percentile",
            random_state=random_state,
        ).confidence_interval
    lows, highs = np.atleast_1d(ci.low), np.atleast_1d(ci.high)
    return [(float(lo), float(hi)) if np.isfinite(lo) and np.isfinite(hi) else None for lo, hi in zip(lows, highs)]
