"""Our checks of the seed papers' claims on a leaderboard (the JSON record alone).

Each claim is checked per task (or per family of tasks that differ only in skew) and gets a
verdict: ``supported``, ``contradicted``, ``inconclusive``, or ``not measured`` (with the
reason) when the methods, tasks or metrics it needs are absent.

Paired claims compare two entries seed by seed: d_s = x_s − y_s over the seeds where both are
defined, and the 95% t-interval

    mean(d) ± t_{0.975, n−1} · sd(d) / √n        (sd: sample standard deviation, n seeds)

is "above 0" when its lower end is > 0 and "below 0" when its upper end is < 0. FR-2 is a
rank correlation across methods, with a bootstrap interval over methods.

The sections: the statistics (plain functions), the claims (one function each, from a
Leaderboard to Findings), and the views (a rich table and a Markdown page).
"""

from __future__ import annotations

import math
import statistics
import warnings
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np
from scipy import stats

from benchmark.report.leaderboard import Entry, Leaderboard
from benchmark.report.scoring import paired_interval, values_by_seed
from benchmark.report.statistics import LEVEL, Interval, t_interval, t_quantile

SUPPORTED, CONTRADICTED, INCONCLUSIVE, NOT_MEASURED = "supported", "contradicted", "inconclusive", "not measured"
GOLD, RW_GOLD, ORIGINAL, MIU, SOFT, HARD = "retrain", "retrain+rw", "original", "miu", "soft_weighted", "hard_weighted"
G_ACC, AVG_GAP, WORST, TEST_ACC, EO, PGD, FGAP = (
    "forget_group_test_acc", "avg_gap", "worst_group_acc", "test_acc", "equalized_odds", "pgd_acc", "fairness_gap",
)


# -- statistics (the t-interval is the leaderboard's: benchmark/report/statistics.py) ------
def seeds_needed(mean: float, sd: float, level: float = LEVEL) -> int | None:
    """A projection: the smallest n ≥ 2 with t_{(1+level)/2, n−1} · sd / √n < |mean|, i.e. the
    seeds that would put the interval clear of 0 if the observed mean and sd held. None when
    mean = 0 (no n does) or either is undefined."""
    if not (math.isfinite(mean) and math.isfinite(sd)) or mean == 0:
        return None
    if sd == 0:
        return 2
    q = (1 + level) / 2
    # t_{q, n−1} > z_q, so every n below (z_q · sd / |mean|)² fails: start the search there
    n = max(2, math.floor((float(stats.norm.ppf(q)) * sd / abs(mean)) ** 2))
    while t_quantile(q, n - 1) * sd / math.sqrt(n) >= abs(mean):
        n += 1
    return n


def sign_verdict(iv: Interval) -> str:
    """supported if the interval is above 0, contradicted if below, else inconclusive."""
    return {1: SUPPORTED, -1: CONTRADICTED, 0: INCONCLUSIVE}[iv.side]


def all_above_verdict(ivs: Sequence[Interval]) -> str:
    """supported if every interval is above 0, contradicted if any is below, else inconclusive."""
    if any(iv.side < 0 for iv in ivs):
        return CONTRADICTED
    return SUPPORTED if all(iv.side > 0 for iv in ivs) else INCONCLUSIVE


def miu3_verdict(others: Sequence[Interval], worst_group: Interval) -> str:
    """others: d = avg_gap(method) − avg_gap(MIU) per approximate method; worst_group:
    d = worst_group_acc(MIU) − worst_group_acc(original). Contradicted if some method is
    significantly better than MIU (its interval below 0) or MIU loses worst-group accuracy
    significantly (below 0); supported if MIU is significantly better than every method (every
    interval above 0) and does not; else inconclusive."""
    if any(iv.side < 0 for iv in others) or worst_group.side < 0:
        return CONTRADICTED
    return SUPPORTED if others and all(iv.side > 0 for iv in others) else INCONCLUSIVE


@dataclass(frozen=True)
class Correlation:
    """Spearman's ρ over k paired points and its bootstrap interval (``method``: the
    scipy.stats.bootstrap interval method that gave it)."""

    rho: float
    low: float
    high: float
    k: int
    method: str = ""


def _rho(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """Spearman's ρ along ``axis``; a resample where one side is constant (ρ undefined)
    counts as ρ = 0, no rank association."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if hasattr(stats, "spearmanrho"):  # scipy ≥ 1.17: vectorised
            rho = np.asarray(stats.spearmanrho(x, y, axis=axis).statistic, dtype=float)
        else:
            xs, ys = np.moveaxis(x, axis, -1), np.moveaxis(y, axis, -1)
            flat = [stats.spearmanr(a, b)[0] for a, b in zip(xs.reshape(-1, xs.shape[-1]), ys.reshape(-1, ys.shape[-1]))]
            rho = np.asarray(flat, dtype=float).reshape(xs.shape[:-1])
    return np.nan_to_num(rho, nan=0.0)


def spearman_interval(
    x: Sequence[float], y: Sequence[float], level: float = LEVEL, n_resamples: int = 10_000, random_state: int = 0
) -> Correlation:
    """ρ = Spearman(x, y) and its interval from scipy.stats.bootstrap over the k points,
    resampled as pairs: BCa, or the percentile interval where BCa is undefined."""
    xa, ya = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(np.unique(xa)) < 2 or len(np.unique(ya)) < 2:
        return Correlation(math.nan, math.nan, math.nan, len(xa))
    rho = float(_rho(xa, ya))
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ci = stats.bootstrap(
                (xa, ya), _rho, paired=True, vectorized=True, n_resamples=n_resamples,
                confidence_level=level, method=method, random_state=random_state,
            ).confidence_interval
        if math.isfinite(ci.low) and math.isfinite(ci.high):
            return Correlation(rho, float(ci.low), float(ci.high), len(xa), method)
    return Correlation(rho, math.nan, math.nan, len(xa))


def correlation_verdict(c: Correlation) -> str:
    """supported if the interval is entirely below 0 (a larger fairness gap, lower robust
    accuracy), contradicted if entirely above, else inconclusive."""
    return SUPPORTED if c.high < 0 else CONTRADICTED if c.low > 0 else INCONCLUSIVE


# -- findings -------------------------------------------------------------------------
@dataclass(frozen=True)
class Claim:
    id: str
    source: str
    statement: str
    test: str


@dataclass(frozen=True)
class Comparison:
    """One method's paired difference, listed under a finding."""

    label: str
    interval: Interval


@dataclass(frozen=True)
class Finding:
    """One claim on one task (or family): the numbers (with intervals), the test, the seeds
    it used, the verdict; ``needed`` is the seeds-needed projection of an inconclusive paired
    claim, ``reason`` says why it was not measured."""

    claim: str
    scope: str
    verdict: str
    numbers: str = ""
    test: str = ""
    seeds: tuple[int, ...] = ()
    needed: str = ""
    reason: str = ""
    details: tuple[Comparison, ...] = ()


T_TEST = "paired t-interval over seeds (scipy.stats.t), 95%"
CLAIMS = [
    Claim("MIU-1", "seed 000", "the gold's accuracy on g* falls as the forget set's skew rises",
          f"retrain's forget_group_test_acc, d = uniform − skew 1.0 per seed, {T_TEST}; supported if above 0, contradicted if below"),
    Claim("MIU-2", "seed 000", "the REWEIGHT gold (retrain+rw) restores g*'s accuracy at skew 1.0",
          f"d = forget_group_test_acc(retrain+rw) − forget_group_test_acc(retrain) per seed, {T_TEST}; supported if above 0, contradicted if below"),
    Claim("MIU-3", "seed 000", "MIU has the lowest Avg. Gap among approximate methods at skew 1.0, without losing worst-group accuracy",
          f"per approximate method (not a gold, not original), d = avg_gap(method) − avg_gap(miu) per seed; and "
          f"d = worst_group_acc(miu) − worst_group_acc(original); {T_TEST}. Supported if every method's interval is above 0 "
          "and the worst-group interval is not below 0; contradicted if some method's interval is below 0 or the "
          "worst-group interval is below 0"),
    Claim("SW-1", "seed 001", "soft weights close a fairness gap with less utility loss than hard weights",
          f"d_u = test_acc(soft_weighted) − test_acc(hard_weighted) and c = equalized_odds(original) − "
          f"equalized_odds(soft_weighted) per seed, {T_TEST}; supported if both are above 0, contradicted if either is below"),
    Claim("FR-1", "seed 002", "approximate methods keep less robust accuracy than the gold",
          f"per seed, the mean over approximate methods (miu included; no golds, not original) of pgd_acc(its gold) − "
          f"pgd_acc(method), {T_TEST}; supported if above 0, contradicted if below; and each method's own interval"),
    Claim("FR-2", "seed 002", "a larger fairness gap goes with lower robust accuracy",
          "Spearman's ρ across methods (approximate methods and golds, means over seeds) between fairness_gap and "
          "pgd_acc; 95% interval from scipy.stats.bootstrap over methods (pairs resampled, 10,000 resamples, "
          "random_state 0; BCa, percentile where BCa is undefined; a resample in which one metric is constant counts as "
          "ρ = 0); supported if entirely below 0, contradicted if entirely above"),
]
CLAIM = {c.id: c for c in CLAIMS}


class Missing(Exception):
    """What a claim needs and the leaderboard lacks (the finding is 'not measured')."""


def _entry(board: Leaderboard, task: str, method: str) -> Entry:
    for e in board.entries_for(task):
        if e.method == method:
            return e
    raise Missing(f"no {method} on {task}")


def _values(e: Entry, metric: str) -> dict[int, float]:
    """The metric's defined values of ``e`` by seed."""
    found = values_by_seed(e, metric)
    if not found:
        raise Missing(f"{metric} of {e.method} on {e.task} is not measured")
    return found


def paired(a: Entry, b: Entry, metric: str, metric_b: str | None = None) -> Interval:
    """The t-interval of d_s = metric(a, s) − metric_b(b, s) over the seeds both define."""
    _values(a, metric), _values(b, metric_b or metric)  # each measured, or Missing says which is not
    iv = paired_interval(a, b, metric, metric_b)
    if not iv.n:
        raise Missing(f"{a.method} and {b.method} on {a.task} share no seed")
    return iv


def approximate(board: Leaderboard, task: str, with_miu: bool) -> list[Entry]:
    """The task's approximate methods: every entry but the golds and original (and miu unless ``with_miu``)."""
    left_out = {ORIGINAL} | (set() if with_miu else {MIU})
    return [e for e in board.entries_for(task) if not e.is_gold and e.method not in left_out]


def _skew(task: dict) -> float | None:
    return None if task["skew"] == "uniform" else float(task["skew"])


def skew1_tasks(board: Leaderboard) -> list[dict]:
    return [t for t in board.tasks if _skew(t) == 1.0]


def families(board: Leaderboard) -> dict[str, list[dict]]:
    """Tasks that differ only in skew (same dataset, data, forget group, size and fraction_of),
    the families with a 'uniform' and a skew-1.0 task, each in rising skew."""
    grouped: dict[tuple, list[dict]] = {}
    for t in board.tasks:
        key = (t["dataset"], t.get("dataset_fingerprint"), t["forget_group"], t["forget_size"], t.get("fraction_of"))
        grouped.setdefault(key, []).append(t)
    found = {}
    for (dataset, _, group, size, _), tasks in grouped.items():
        skews = [_skew(t) for t in tasks]
        if None in skews and 1.0 in skews:
            spec = tasks[0].get("forget_size_spec")
            name = f"{dataset}, g* = {group}, forget {size}" + (f" ({spec})" if spec else "")
            found[name] = sorted(tasks, key=lambda t: -1.0 if _skew(t) is None else _skew(t))
    return found


# -- number formats -----------------------------------------------------------------
def fmt(x: float, digits: int = 2) -> str:
    return f"{x:.{digits}f}".replace("-", "−") if math.isfinite(x) else "–"


def fmt_iv(iv: Interval) -> str:
    """'mean [low, high]', or the mean and the reason there is no interval."""
    if iv.n < 2:
        return f"{fmt(iv.mean)} (one seed: no interval)"
    return f"{fmt(iv.mean)} [{fmt(iv.low)}, {fmt(iv.high)}]"


def _count(k: int, noun: str) -> str:
    return f"{k} {noun}{'' if k == 1 else 's'}"


def _pm(e: Entry, metric: str) -> str:
    s = e.metrics.get(metric)
    return "–" if s is None else f"{fmt(s.mean, 1)} ± {fmt(s.std, 1)}"


def projection(ivs: Iterable[tuple[str, Interval]]) -> str:
    """Seeds that would separate every undecided interval from 0 if its observed mean and sd
    held (the largest seeds_needed, and which comparison needs it)."""
    undecided = [(label, iv) for label, iv in ivs if iv.side == 0]
    if not undecided:
        return ""
    if any(iv.n < 2 for _, iv in undecided):
        return "– (one seed: no spread to project from)"
    needs = [(seeds_needed(iv.mean, iv.sd), label) for label, iv in undecided]
    if any(n is None for n, _ in needs):
        return "∞/none (an observed mean difference is 0)"
    n, label = max(needs)
    return f"{n} seeds" + (f" ({label})" if label and len(undecided) > 1 else "")


def _finding(claim: str, scope: str, build: Callable[[], Finding]) -> Finding:
    try:
        return build()
    except Missing as why:
        return Finding(claim, scope, NOT_MEASURED, reason=str(why))


def _t_test(iv: Interval) -> str:
    return f"paired t, {_count(iv.n, 'seed')}"


# -- the claims -----------------------------------------------------------------------
def miu1(board: Leaderboard) -> list[Finding]:
    """MIU-1: d_s = g*-acc(retrain, uniform) − g*-acc(retrain, skew 1.0) per family."""
    found = families(board)
    if not found:
        return [Finding("MIU-1", "–", NOT_MEASURED, reason="no tasks differing only in skew with both 'uniform' and skew 1.0")]

    def build(name: str, tasks: list[dict]) -> Finding:
        iv = paired(_entry(board, tasks[0]["id"], GOLD), _entry(board, tasks[-1]["id"], GOLD), G_ACC)
        golds = [(t, e) for t in tasks for e in board.entries_for(t["id"]) if e.method == GOLD]
        levels = " → ".join(f"{_skew_name(t)} {_pm(e, G_ACC)}" for t, e in golds)
        numbers = f"retrain g* acc: {levels}; d (uniform − skew 1.0) = {fmt_iv(iv)}"
        return Finding("MIU-1", name, sign_verdict(iv), numbers, _t_test(iv), iv.seeds, projection([("", iv)]))

    return [_finding("MIU-1", name, lambda name=name, tasks=tasks: build(name, tasks)) for name, tasks in found.items()]


def _skew_name(task: dict) -> str:
    return "uniform" if _skew(task) is None else f"skew {task['skew']}"


def _per_task(claim: str, tasks: list[dict], build: Callable[[str], Finding], none: str) -> list[Finding]:
    """``build`` on every task of ``tasks`` (a not-measured finding where it lacks something)."""
    if not tasks:
        return [Finding(claim, "–", NOT_MEASURED, reason=none)]
    return [_finding(claim, t["id"], lambda t=t: build(t["id"])) for t in tasks]


def miu2(board: Leaderboard) -> list[Finding]:
    """MIU-2: d_s = g*-acc(retrain+rw) − g*-acc(retrain) at skew 1.0."""

    def build(task: str) -> Finding:
        rw, plain = _entry(board, task, RW_GOLD), _entry(board, task, GOLD)
        iv = paired(rw, plain, G_ACC)
        numbers = f"g* acc retrain+rw {_pm(rw, G_ACC)} vs retrain {_pm(plain, G_ACC)}; d = {fmt_iv(iv)}"
        return Finding("MIU-2", task, sign_verdict(iv), numbers, _t_test(iv), iv.seeds, projection([("", iv)]))

    return _per_task("MIU-2", skew1_tasks(board), build, "no task at skew 1.0")


def miu3(board: Leaderboard) -> list[Finding]:
    """MIU-3: d_s = avg_gap(method) − avg_gap(miu) per approximate method, and
    d_s = worst_group_acc(miu) − worst_group_acc(original), at skew 1.0."""

    def build(task: str) -> Finding:
        miu, original = _entry(board, task, MIU), _entry(board, task, ORIGINAL)
        _values(miu, AVG_GAP)  # raises Missing when MIU has no avg_gap
        others = [e for e in approximate(board, task, with_miu=False) if AVG_GAP in e.metrics and e.metrics[AVG_GAP].n]
        if not others:
            raise Missing(f"no approximate method with avg_gap on {task}")
        comparisons = [Comparison(e.method, _paired_or_none(e, miu, AVG_GAP)) for e in others]
        comparisons = [c for c in comparisons if c.interval is not None]
        wg = paired(miu, original, WORST)
        ivs = [c.interval for c in comparisons]
        verdict = miu3_verdict(ivs, wg)
        return Finding("MIU-3", task, verdict, _miu3_numbers(miu, others, ivs, wg), _t_test(wg), _seeds(ivs + [wg]),
                       projection([(c.label, c.interval) for c in comparisons]) if verdict == INCONCLUSIVE else "",
                       details=tuple(comparisons))

    return _per_task("MIU-3", skew1_tasks(board), build, "no task at skew 1.0")


def _paired_or_none(a: Entry, b: Entry, metric: str) -> Interval | None:
    try:
        return paired(a, b, metric)
    except Missing:
        return None


def _seeds(ivs: Iterable[Interval]) -> tuple[int, ...]:
    return tuple(sorted({s for iv in ivs for s in iv.seeds}))


def _miu3_numbers(miu: Entry, others: list[Entry], ivs: list[Interval], wg: Interval) -> str:
    field = sorted([(e.metrics[AVG_GAP].mean, e.method) for e in others + [miu]])
    rank = 1 + sum(v < miu.metrics[AVG_GAP].mean for v, _ in field)
    best_gap, best = field[0]
    beats, beaten = sum(iv.side > 0 for iv in ivs), sum(iv.side < 0 for iv in ivs)
    return (
        f"miu avg gap {_pm(miu, AVG_GAP)}, rank {rank} of {len(field)} (best: {best}, {fmt(best_gap)}); "
        f"significantly lower than {beats} of {_count(len(ivs), 'method')}, significantly higher than {beaten}; "
        f"worst-group acc miu − original = {fmt_iv(wg)}"
    )


def sw1(board: Leaderboard) -> list[Finding]:
    """SW-1: d_u = test_acc(soft) − test_acc(hard) and c = EO(original) − EO(soft), per task."""

    def build(task: str) -> Finding:
        soft, hard, original = _entry(board, task, SOFT), _entry(board, task, HARD), _entry(board, task, ORIGINAL)
        utility, closure = paired(soft, hard, TEST_ACC), paired(original, soft, EO)
        numbers = f"test acc soft − hard = {fmt_iv(utility)}; eq. odds original − soft = {fmt_iv(closure)}"
        verdict = all_above_verdict([utility, closure])
        needed = projection([("utility", utility), ("gap closure", closure)]) if verdict == INCONCLUSIVE else ""
        return Finding("SW-1", task, verdict, numbers, _t_test(utility), _seeds([utility, closure]), needed)

    return _per_task("SW-1", board.tasks, build, "no task")


def fr1(board: Leaderboard) -> list[Finding]:
    """FR-1: per seed, D_s = mean over approximate methods m of pgd_acc(gold of m, s) − pgd_acc(m, s)."""

    def build(task: str) -> Finding:
        comparisons = []
        for e in approximate(board, task, with_miu=True):
            try:
                comparisons.append(Comparison(e.method, paired(_entry(board, task, e.gold or GOLD), e, PGD)))
            except Missing:
                continue
        if not comparisons:
            raise Missing(f"no approximate method with pgd_acc and its gold's on {task}")
        iv = t_interval(*_seed_means(board, task, [c.label for c in comparisons]))
        below, above = sum(c.interval.side > 0 for c in comparisons), sum(c.interval.side < 0 for c in comparisons)
        numbers = (
            f"mean over {_count(len(comparisons), 'method')} of pgd acc gold − method = {fmt_iv(iv)}; "
            f"individually {below} significantly below their gold, {above} above"
        )
        verdict = sign_verdict(iv)
        return Finding("FR-1", task, verdict, numbers, _t_test(iv), iv.seeds, projection([("", iv)]), details=tuple(comparisons))

    return _per_task("FR-1", board.tasks, build, "no task")


def _seed_means(board: Leaderboard, task: str, methods: list[str]) -> tuple[list[float], list[int]]:
    """Per seed, the mean over ``methods`` (those defined at that seed) of pgd_acc(gold) − pgd_acc(method)."""
    by_seed: dict[int, list[float]] = {}
    for name in methods:
        e = _entry(board, task, name)
        x, g = _values(e, PGD), _values(_entry(board, task, e.gold or GOLD), PGD)
        for s in set(x) & set(g):
            by_seed.setdefault(s, []).append(g[s] - x[s])
    seeds = sorted(by_seed)
    return [statistics.fmean(by_seed[s]) for s in seeds], seeds


def fr2(board: Leaderboard, n_resamples: int = 10_000, random_state: int = 0) -> list[Finding]:
    """FR-2: Spearman's ρ across methods (approximate and golds) of mean fairness_gap vs mean pgd_acc."""

    def build(task: str) -> Finding:
        rows = [e for e in board.entries_for(task) if e.method != ORIGINAL and _defined(e, FGAP) and _defined(e, PGD)]
        if len(rows) < 3:
            raise Missing(f"fewer than 3 methods with fairness_gap and pgd_acc on {task}")
        c = spearman_interval([e.metrics[FGAP].mean for e in rows], [e.metrics[PGD].mean for e in rows],
                              n_resamples=n_resamples, random_state=random_state)
        seeds = tuple(sorted({s for e in rows for s in e.seeds}))
        if not math.isfinite(c.rho):
            return Finding("FR-2", task, INCONCLUSIVE, f"ρ undefined over {_count(c.k, 'method')}: fairness_gap or pgd_acc is constant across them",
                           "Spearman", seeds, "n/a (an interval over methods, not seeds)")
        numbers = f"ρ = {fmt(c.rho)} [{fmt(c.low)}, {fmt(c.high)}] over {_count(c.k, 'method')}"
        verdict = correlation_verdict(c)
        test = f"Spearman, {c.method or 'no'} bootstrap over {_count(c.k, 'method')}"
        return Finding("FR-2", task, verdict, numbers, test, seeds, "n/a (an interval over methods, not seeds)" if verdict == INCONCLUSIVE else "")

    return _per_task("FR-2", board.tasks, build, "no task")


def _defined(e: Entry, metric: str) -> bool:
    s = e.metrics.get(metric)
    return s is not None and math.isfinite(s.mean)


def evaluate(board: Leaderboard, n_resamples: int = 10_000, random_state: int = 0) -> list[Finding]:
    """Every claim's findings, in the order of CLAIMS."""
    return miu1(board) + miu2(board) + miu3(board) + sw1(board) + fr1(board) + fr2(board, n_resamples, random_state)


# -- views ----------------------------------------------------------------------------
def _numbers(f: Finding) -> str:
    return f.numbers if f.verdict != NOT_MEASURED else f.reason


NEEDED = "Seeds needed (projected from the observed mean and sd)"


def rich_table(findings: list[Finding]):
    from rich.table import Table

    from rich.text import Text

    colours = {SUPPORTED: "green", CONTRADICTED: "red", INCONCLUSIVE: "yellow", NOT_MEASURED: "dim"}
    table = Table(title="Claims of the seed papers, checked on this leaderboard (our numbers)", title_justify="left")
    for title in ("Claim", "Task", "Numbers (95% intervals)", "Test", "Verdict", NEEDED):
        table.add_column(title, no_wrap=title in ("Claim", "Verdict"))
    for f in findings:  # Text: the numbers' brackets are not markup
        cells = [Text(c) for c in (f.claim, f.scope, _numbers(f), f.test)]
        table.add_row(*cells, Text(f.verdict, style=colours[f.verdict]), Text(f.needed))
    return table


INTRO = (
    "These are **our** checks of the seed papers' claims on this benchmark's data: every number "
    "below is computed from this leaderboard (`leaderboard.json`), none is the papers'. Each claim "
    "is checked per task (MIU-1 per family of tasks that differ only in skew) and gets a verdict: "
    "*supported* or *contradicted* when its 95% interval clears 0 on one side, *inconclusive* when "
    "it does not, *not measured* when the methods, tasks or metrics it needs are absent. Paired "
    "claims compare two entries seed by seed (d = x − y for each seed) with a t-interval "
    "mean ± t₀.₉₇₅,ₙ₋₁ · sd/√n; with {k} seeds ({seeds}) these intervals are wide. For an "
    "inconclusive paired claim, *seeds needed* is a projection, not a result: the smallest n with "
    "t₀.₉₇₅,ₙ₋₁ · sd/√n < |mean| if the observed mean and sd held. Accuracies and differences in %."
)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|") or " "


def to_markdown(findings: list[Finding], board: Leaderboard, against: list[Finding] | None = None) -> str:
    """The claims page; with ``against`` (the findings on a second leaderboard, e.g. the one of
    hand-set settings) each claim's verdict there, and whether it changed."""
    seeds = sorted({s for e in board.entries for s in e.seeds})
    lines = [
        "# Claims of the seed papers, checked on this benchmark",
        "",
        "<!-- generated from leaderboard.json by `unlearn-bench claims --markdown`; do not edit -->",
        "",
        INTRO.format(k=len(seeds), seeds=", ".join(map(str, seeds))),
        "",
    ]
    if against is None:
        lines += ["| Claim | Statement | Task | Verdict |", "|---|---|---|---|"]
        lines += ["| " + " | ".join(map(_md_cell, (f.claim, CLAIM[f.claim].statement, f.scope, f.verdict))) + " |" for f in findings]
    else:
        before = {(f.claim, f.scope): f.verdict for f in against}
        lines += [AGAINST, "", "| Claim | Statement | Task | Verdict | With hand-set settings | Tuning changed it |", "|---|---|---|---|---|---|"]
        for f in findings:
            old = before.get((f.claim, f.scope), "not measured")
            cells = (f.claim, CLAIM[f.claim].statement, f.scope, f.verdict, old, "yes" if old != f.verdict else "no")
            lines.append("| " + " | ".join(map(_md_cell, cells)) + " |")
    for claim in CLAIMS:
        lines += _md_section(claim, [f for f in findings if f.claim == claim.id])
    return "\n".join(lines) + "\n"


AGAINST = ("Each verdict beside the verdict on the leaderboard of hand-set settings (`--against`; the methods' "
           "defaults, before `unlearn-bench tune`), and whether tuning changed it.")


def _md_section(claim: Claim, findings: list[Finding]) -> list[str]:
    lines = [
        "", f"## {claim.id} ({claim.source}): {claim.statement}", "", f"Test: {claim.test}.", "",
        f"| Task | Numbers (95% intervals) | Test | Seeds | Verdict | {NEEDED} |",
        "|---|---|---|---|---|---|",
    ]
    for f in findings:
        cells = [f.scope, _numbers(f), f.test, ", ".join(map(str, f.seeds)) or "–", f"**{f.verdict}**", f.needed or "–"]
        lines.append("| " + " | ".join(map(_md_cell, cells)) + " |")
    for f in findings:
        if f.details:
            lines += _md_details(claim, f)
    return lines


def _md_details(claim: Claim, f: Finding) -> list[str]:
    what = "avg_gap(method) − avg_gap(miu)" if claim.id == "MIU-3" else "pgd_acc(gold) − pgd_acc(method)"
    lines = ["", f"<details><summary>{claim.id} per method on {f.scope}: d = {what}</summary>", "",
             f"| Method | d, 95% interval | {NEEDED} |", "|---|---|---|"]
    for c in f.details:
        lines.append(f"| {c.label} | {fmt_iv(c.interval)} | {_md_cell(projection([('', c.interval)]) or 'separated')} |")
    return lines + ["", "</details>"]
