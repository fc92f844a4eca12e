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
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from typing import Any, Iterable

from benchmark.report.leaderboard import SCHEMA_VERSION, Entry, Leaderboard, Ranking, Stat
from benchmark.metrics.groups import speedup

AVG_GAP_COMPONENTS = ["retain_acc", "forget_acc", "test_acc", "mia_forget_nonmember", "equalized_odds", "forget_group_test_acc"]
TOW_COMPONENTS = ["retain_acc", "forget_acc", "test_acc"]
RANKING = Ranking(
    key="avg_gap",
    order="ascending",
    components=AVG_GAP_COMPONENTS,
    description="mean over the components of |metric - gold metric|, per seed, then averaged over seeds",
)


def _number(v: Any) -> float:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and v is not None else math.nan


def stat(values: Iterable[float]) -> Stat:
    """Mean, sample sd and count of the finite values; ``values`` keeps them all, in the order
    given (one per seed), with NaN where undefined."""
    every = tuple(v if math.isfinite(v) else math.nan for v in values)
    xs = [v for v in every if math.isfinite(v)]
    if not xs:
        return Stat(math.nan, math.nan, 0, every)
    return Stat(statistics.fmean(xs), statistics.stdev(xs) if len(xs) > 1 else 0.0, len(xs), every)


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


def score(cells: list[dict[str, Any]], versions: dict[str, str] | None = None) -> Leaderboard:
    """Aggregate result cells into a leaderboard."""
    by_key = {(c["task"]["id"], c["method"], c["seed"]): c for c in cells}
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    tasks: dict[str, dict[str, Any]] = {}
    # within a (task, method) group the runs are in seed order: the order of Entry.seeds and Stat.values
    for c in sorted(cells, key=lambda c: (_task_order(c["task"]), not c.get("is_gold"), c["method"], c["seed"])):
        grouped[(c["task"]["id"], c["method"])].append(c)
        tasks.setdefault(c["task"]["id"], {**c["task"], **attack_record(c)})

    entries: list[Entry] = []
    for (task_id, method), runs in grouped.items():
        per_seed, gaps = [], []
        for c in runs:
            gold = by_key.get((task_id, c.get("gold_method"), c["seed"]))
            m, g = seed_scores(c, gold)
            per_seed.append(m)
            gaps.append(g)
        names = sorted({k for m in per_seed for k in m})
        gap_names = sorted({k for g in gaps for k in g})
        first = runs[0]
        entries.append(
            Entry(
                method=method,
                task=task_id,
                metrics={k: stat(m.get(k, math.nan) for m in per_seed) for k in names},
                gap_to_gold={k: stat(g.get(k, math.nan) for g in gaps).mean for k in gap_names},
                rank=None,
                is_gold=bool(first.get("is_gold")),
                gold=first.get("gold_method"),
                seeds=[c["seed"] for c in runs],
                hparams=first.get("hparams", {}),
            )
        )
    ranked: list[Entry] = []
    for task_id in tasks:
        rows = [e for e in entries if e.task == task_id]
        scored = [e for e in rows if not e.is_gold]
        keys = [e.metrics.get(RANKING.key, Stat(math.nan, math.nan, 0)).mean for e in scored]
        ranks = dict(zip((id(e) for e in scored), _competition_ranks(keys)))
        for e in rows:
            ranked.append(Entry(**{**e.__dict__, "rank": ranks.get(id(e))}))
    ranked.sort(key=lambda e: (list(tasks).index(e.task), not e.is_gold, e.rank or math.inf, e.method))
    return Leaderboard(SCHEMA_VERSION, RANKING, list(tasks.values()), ranked, versions or {})
