"""From result cells to leaderboard entries: the metrics measured against gold per seed,
mean and spread over seeds, ranks within each task.

Per seed, with gold the cell's ``gold_method`` on the same task and seed (retrain, or
retrain+rw for REWEIGHT variants; a gold row is compared with itself):

- gap to gold of metric m: |m − m_gold| (an entry's ``gap_to_gold``, averaged over seeds)
- ``avg_gap`` = mean of the gaps over RA, FA, TA, MIA (mia_forget_nonmember), EO
  (equalized_odds) and g*-accuracy (forget_group_test_acc), REFERENCE §5; the ranking key,
  lower is better
- ``tow`` = 100 · Π over RA, FA, TA of (1 − |m − m_gold| / 100)  (tug of war; higher is better)
- ``mi_calibration_error`` = |mi_feature_group − gold's mi_feature_group| (ours, not a paper's);
  ``mi_feature_group_gold`` = gold's value; ``mi_calibration_error_se`` = √(se² + se_gold²)
  from the two estimates' standard errors (the noise floor the error should be read against)
- ``speedup_vs_gold`` = gold's unlearn_seconds / the method's

These are the catalog's metrics of source ``gold`` (``benchmark/metrics/catalog.py``; the
tests check that ``seed_scores`` writes exactly those).

Each metric's Stat keeps its per-seed values in the order of the entry's ``seeds`` (NaN where
undefined), so that entries can be compared seed by seed (benchmark/report/claims.py).

Intervals, at 95% (formulas in benchmark/report/statistics.py):

- each Stat's ``ci``: the t-interval over seeds of its defined values; ``boot``, for the
  accuracies on TEST (BOOTSTRAPPED): the paired bootstrap over TEST rows of the seed mean
- ``rank``: competition rank by mean avg_gap (ties share a rank); ``rank_band``: the ranks the
  entry could hold given the avg_gap ``ci`` of the task's ranked entries
- ``vs_gold``: per Avg. Gap component, the interval of method − gold: the paired bootstrap over
  TEST rows (same resamples for method, gold and every seed) for test_acc and
  forget_group_test_acc, the paired t-interval over seeds for the others; ``like_gold``: every
  one of them contains 0
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import replace
from typing import Any, Callable, Iterable

import numpy as np

from benchmark.metrics import catalog
from benchmark.metrics.groups import speedup
from benchmark.metrics.predictions import Predictions
from benchmark.report.leaderboard import SCHEMA_VERSION, Entry, Leaderboard, Ranking, Stat
from benchmark.report.statistics import (
    STATISTICS, Interval, Query, accuracies, align_test_rows, contains_zero, paired_bootstrap, rank_bands, t_interval,
)

Pair = tuple[float, float]

AVG_GAP_COMPONENTS = ["retain_acc", "forget_acc", "test_acc", "mia_forget_nonmember", "equalized_odds", "forget_group_test_acc"]
TOW_COMPONENTS = ["retain_acc", "forget_acc", "test_acc"]
#: the accuracies on TEST rows that get a bootstrap interval (``boot``) over TEST rows
BOOTSTRAPPED = ("test_acc", "group_acc/<g>", "worst_group_acc", "forget_group_test_acc", "group_acc_gap")


def bootstrapped(name: str) -> bool:
    """Whether the metric ``name`` (e.g. ``group_acc/2``) is one of BOOTSTRAPPED."""
    metric = catalog.find(name)
    return metric is not None and metric.name in BOOTSTRAPPED


#: the Avg. Gap components whose vs_gold interval is the bootstrap over TEST rows
BOOT_COMPONENTS = [c for c in AVG_GAP_COMPONENTS if bootstrapped(c)]
RANKING = Ranking(
    key="avg_gap",
    order="ascending",
    components=AVG_GAP_COMPONENTS,
    description="mean over the components of |metric - gold metric|, per seed, then averaged over seeds",
)


def _number(v: Any) -> float:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and v is not None else math.nan


def stat(values: Iterable[float]) -> Stat:
    """Mean, sample sd and count of the finite values, and their 95% t-interval
    mean ± t_{0.975, n−1} · sd / √n (``ci``, None for n < 2); ``values`` keeps them all, in the
    order given (one per seed), with NaN where undefined."""
    every = tuple(v if math.isfinite(v) else math.nan for v in values)
    xs = [v for v in every if math.isfinite(v)]
    if not xs:
        return Stat(math.nan, math.nan, 0, every)
    return Stat(statistics.fmean(xs), statistics.stdev(xs) if len(xs) > 1 else 0.0, len(xs), every, t_interval(xs).ends)


def seed_scores(cell: dict[str, Any], gold: dict[str, Any] | None) -> tuple[dict[str, float], dict[str, float]]:
    """(metrics, gaps to gold) of one cell, with the gold-derived metrics filled in; without
    its gold they are undefined (NaN)."""
    metrics = {k: _number(v) for k, v in cell["metrics"].items()}
    if cell.get("is_gold"):
        gold = cell
    if gold is None:
        return metrics, {}
    gold_metrics = {k: _number(v) for k, v in gold["metrics"].items()}
    metrics["speedup_vs_gold"] = _number(speedup(metrics["unlearn_seconds"], gold_metrics["unlearn_seconds"]))
    gold_metrics["speedup_vs_gold"] = 1.0
    # a standard error (``*_se``) has no gap to gold of its own
    gaps = {k: abs(v - gold_metrics[k]) for k, v in metrics.items() if k in gold_metrics and not k.endswith("_se")}
    metrics.update(against_gold(metrics, gold_metrics, gaps, gold is cell))
    return metrics, gaps


def against_gold(metrics: dict[str, float], gold: dict[str, float], gaps: dict[str, float], itself: bool) -> dict[str, float]:
    """The catalog's ``gold`` metrics but ``speedup_vs_gold`` (which the gaps include), from a
    cell's metrics, its gold's and their gaps; ``itself``: the cell is its own gold."""
    # a component undefined on the task for both the method and gold (equalized odds with a
    # single attribute value, as in class-wise CIFAR-10) leaves the mean; undefined on one
    # side only, it makes avg_gap undefined
    defined = [c for c in AVG_GAP_COMPONENTS if not (math.isnan(metrics.get(c, math.nan)) and math.isnan(gold.get(c, math.nan)))]
    se = (metrics.get("mi_feature_group_se", math.nan), gold.get("mi_feature_group_se", math.nan))
    return {
        "avg_gap": statistics.fmean(gaps.get(c, math.nan) for c in defined) if defined else math.nan,
        "tow": 100.0 * math.prod(1 - gaps.get(c, math.nan) / 100 for c in TOW_COMPONENTS),
        "mi_feature_group_gold": gold.get("mi_feature_group", math.nan),
        "mi_calibration_error": gaps.get("mi_feature_group", math.nan),
        "mi_calibration_error_se": 0.0 if itself else math.hypot(*se),
    }


ATTACK_FIELDS = ("budget", "eps", "pgd_steps", "pgd_alpha", "aa_steps", "square_queries", "rows", "autoattack")


def attack_record(cell: dict[str, Any]) -> dict[str, Any]:
    """What the cell's attacks ran (budget, eps, steps, queries, rows, ensemble), for its task's record."""
    ran = cell.get("metric_settings", {}).get("attacks")
    return {"attacks": {k: ran[k] for k in ATTACK_FIELDS if k in ran}} if ran else {}


def _task_order(task: dict[str, Any]) -> tuple:
    """Tasks of a dataset side by side, by forget group and size, skew rising ('uniform' first)."""
    skew = -1.0 if task["skew"] == "uniform" else float(task["skew"])
    return (task["dataset"], task["forget_group"], task["forget_size"], skew, task["id"])


def _competition_ranks(values: list[float]) -> list[int | None]:
    order = sorted((v, i) for i, v in enumerate(values) if math.isfinite(v))
    ranks: list[int | None] = [None] * len(values)
    for position, (v, i) in enumerate(order):
        ranks[i] = position + 1 if position == 0 or v != order[position - 1][0] else ranks[order[position - 1][1]]
    return ranks


def score(
    cells: list[dict[str, Any]],
    versions: dict[str, str] | None = None,
    predictions: Callable[[dict[str, Any]], Predictions | None] | None = None,
) -> Leaderboard:
    """Aggregate result cells into a leaderboard. ``predictions``: a cell's per-sample
    predictions (None where unavailable), for the bootstrap intervals over TEST rows
    (collect.predictions_loader(store)); without it every ``boot`` is null and ``vs_gold``
    has the intervals over seeds only."""
    by_key = {(c["task"]["id"], c["method"], c["seed"]): c for c in cells}
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    tasks: dict[str, dict[str, Any]] = {}
    # within a (task, method) group the runs are in seed order: the order of Entry.seeds and Stat.values
    for c in sorted(cells, key=lambda c: (_task_order(c["task"]), not c.get("is_gold"), c["method"], c["seed"])):
        grouped[(c["task"]["id"], c["method"])].append(c)
        tasks.setdefault(c["task"]["id"], {**c["task"], **attack_record(c)})

    entries: list[Entry] = []
    for task_id in tasks:
        runs = {method: group for (task, method), group in grouped.items() if task == task_id}
        rows = [_entry(task_id, method, group, by_key) for method, group in runs.items()]
        boots, versus = _test_intervals(rows, runs, predictions) if predictions is not None else ({}, {})
        entries += [_against_gold(e, rows, boots.get(e.method, {}), versus.get(e.method, {})) for e in _ranked(rows)]
    entries.sort(key=lambda e: (list(tasks).index(e.task), not e.is_gold, e.rank or math.inf, e.method))
    return Leaderboard(SCHEMA_VERSION, RANKING, list(tasks.values()), entries, versions or {}, statistics=dict(STATISTICS))


def _entry(task_id: str, method: str, runs: list[dict[str, Any]], by_key: dict[tuple, dict[str, Any]]) -> Entry:
    """The entry of ``runs`` (one method's cells on a task, in seed order), unranked."""
    per_seed, gaps = [], []
    for c in runs:
        m, g = seed_scores(c, by_key.get((task_id, c.get("gold_method"), c["seed"])))
        per_seed.append(m)
        gaps.append(g)
    first = runs[0]
    return Entry(
        method=method,
        task=task_id,
        metrics={k: stat(m.get(k, math.nan) for m in per_seed) for k in sorted({k for m in per_seed for k in m})},
        gap_to_gold={k: stat(g.get(k, math.nan) for g in gaps).mean for k in sorted({k for g in gaps for k in g})},
        rank=None,
        is_gold=bool(first.get("is_gold")),
        gold=first.get("gold_method"),
        seeds=[c["seed"] for c in runs],
        hparams=first.get("hparams", {}),
        tuning=first.get("tuning") or {"from": "defaults"},  # a cell from before tuning ran hand-set settings
    )


def _ranked(rows: list[Entry]) -> list[Entry]:
    """A task's entries with their competition rank by mean avg_gap (golds unranked) and their
    rank band from the avg_gap intervals (the point mean for one seed)."""
    scored = [e for e in rows if not e.is_gold]
    ranks = dict(zip(map(id, scored), _competition_ranks([_key(e).mean for e in scored])))
    ranked = [e for e in scored if ranks[id(e)] is not None]
    bands = dict(zip(map(id, ranked), rank_bands([_key(e).ci or (_key(e).mean, _key(e).mean) for e in ranked])))
    return [replace(e, rank=ranks.get(id(e)), rank_band=bands.get(id(e))) for e in rows]


def _key(e: Entry) -> Stat:
    return e.metrics.get(RANKING.key, Stat(math.nan, math.nan, 0))


def _gold_of(e: Entry, rows: list[Entry]) -> Entry | None:
    """The gold entry ``e`` is scored against on its task (None for a gold entry or without one)."""
    return None if e.is_gold else next((g for g in rows if g.is_gold and g.method == e.gold), None)


def _against_gold(e: Entry, rows: list[Entry], boots: dict[str, Pair], versus: dict[str, Pair]) -> Entry:
    """``e`` with its bootstrap intervals, vs_gold (bootstrap ones for the TEST components,
    t-intervals over seeds for the others) and like_gold."""
    gold = _gold_of(e, rows)
    found = {} if gold is None else {**_seed_intervals(e, gold), **versus}
    vs = {c: found[c] for c in AVG_GAP_COMPONENTS if c in found}
    metrics = {k: replace(s, boot=boots.get(k)) for k, s in e.metrics.items()}
    return replace(e, metrics=metrics, vs_gold=vs, like_gold=None if e.is_gold else contains_zero(list(vs.values())))


def values_by_seed(e: Entry, metric: str) -> dict[int, float]:
    """The metric's defined values of ``e`` by seed."""
    stat_ = e.metrics.get(metric)
    return {} if stat_ is None else {s: v for s, v in zip(e.seeds, stat_.values) if math.isfinite(v)}


def paired_interval(a: Entry, b: Entry, metric: str, metric_b: str | None = None) -> Interval:
    """The t-interval of d_s = metric(a, s) − metric_b(b, s) over the seeds both define (n = 0
    when they share none)."""
    x, y = values_by_seed(a, metric), values_by_seed(b, metric_b or metric)
    seeds = sorted(set(x) & set(y))
    return t_interval([x[s] - y[s] for s in seeds], seeds)


def _seed_intervals(e: Entry, gold: Entry) -> dict[str, Pair]:
    """Per Avg. Gap component off TEST rows, the paired t-interval over seeds of
    d_s = metric(e, s) − metric(gold, s), where defined (at least 2 shared seeds)."""
    out = {}
    for c in AVG_GAP_COMPONENTS:
        if c not in BOOT_COMPONENTS and (ends := paired_interval(e, gold, c).ends) is not None:
            out[c] = ends
    return out


def _test_intervals(
    rows: list[Entry], runs: dict[str, list[dict[str, Any]]], load: Callable[[dict[str, Any]], Predictions | None]
) -> tuple[dict[str, dict[str, Pair]], dict[str, dict[str, Pair]]]:
    """A task's paired bootstrap over TEST rows, one resampling for all its cells: per method,
    ``boot`` of each TEST accuracy, and vs_gold of the TEST components. A cell takes part when
    its predictions load, share the task's TEST rows and reproduce its stored accuracies."""
    cells = [(e.method, c) for e in rows for c in runs[e.method]]
    test, positions = align_test_rows([load(c) for _, c in cells])
    if test is None or len(test.groups) < 2:
        return {}, {}
    recomputed = accuracies(np.stack(test.correct), test.groups, test.num_groups, test.forget_group)
    at = {(method, c["seed"]): p for (method, c), p in zip(cells, positions)
          if p is not None and _reproduces(c["metrics"], recomputed, p)}
    targets, queries = [], []
    for e in rows:
        for kind, name, query in _queries(e, _gold_of(e, rows), at, recomputed):
            targets.append((kind, e.method, name))
            queries.append(query)
    found: dict[str, dict[str, dict[str, Pair]]] = {"boot": defaultdict(dict), "vs_gold": defaultdict(dict)}
    for (kind, method, name), pair in zip(targets, paired_bootstrap(test, queries)):
        if pair is not None:
            found[kind][method][name] = pair
    return found["boot"], found["vs_gold"]


def _queries(e: Entry, gold: Entry | None, at: dict[tuple[str, int], int], known: dict[str, Any]) -> list[tuple[str, str, Query]]:
    """The bootstrap statistics of entry ``e`` as (kind, metric, query): ("boot", k) each TEST
    accuracy k's mean over its seeds (when every seed's cell takes part), and ("vs_gold", c)
    method − gold of each TEST component c over the seeds where both cells take part and define it."""
    out = []
    seats = [at.get((e.method, s)) for s in e.seeds]
    if None not in seats:
        out += [("boot", k, Query(k, tuple(seats))) for k, s in e.metrics.items() if bootstrapped(k) and k in known and s.n == len(seats)]
    if gold is not None:
        for c in BOOT_COMPONENTS:
            x, g = values_by_seed(e, c), values_by_seed(gold, c)
            seeds = [s for s in e.seeds if s in x and s in g and (e.method, s) in at and (gold.method, s) in at]
            if seeds:
                out.append(("vs_gold", c, Query(c, tuple(at[(e.method, s)] for s in seeds), tuple(at[(gold.method, s)] for s in seeds))))
    return out


def _reproduces(stored: dict[str, Any], recomputed: dict[str, np.ndarray], position: int) -> bool:
    """Whether the cell's predictions give back its stored TEST accuracies (else they are not its own)."""
    for k, v in stored.items():
        if bootstrapped(k) and k in recomputed:
            a, b = _number(v), float(recomputed[k][position])
            if not (math.isclose(a, b, abs_tol=1e-9) or (math.isnan(a) and math.isnan(b))):
                return False
    return True
