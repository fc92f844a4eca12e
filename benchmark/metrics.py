"""Metrics of one unlearned model, from its per-sample predictions.

Accuracies are percentages. With R the retain rows, F the forget rows, TEST the test rows
and TEST_g its rows of group g:

- ``retain_acc``  = 100 * mean_{i in R} [argmax p_i = y_i]            (RA)
- ``forget_acc``  = the same over F                                   (FA)
- ``test_acc``    = the same over TEST                                (TA)
- ``group_acc/g`` = the same over TEST_g, for every group g present in TEST
- ``worst_group_acc`` = min_g group_acc/g
- ``forget_group_test_acc`` = group_acc/g* (TEST accuracy on the forget group)

The cost metrics (``unlearn_seconds``, ``speedup_vs_gold``) are measured by the runner and
by ``speedup`` below; gaps to gold are computed in ``scoring.py``.
"""

from __future__ import annotations

import math

import numpy as np

from benchmark.predictions import Predictions


def _percent(correct: np.ndarray) -> float:
    return float(100.0 * correct.mean()) if correct.size else math.nan


def group_accuracies(correct: np.ndarray, groups: np.ndarray, num_groups: int) -> dict[int, float]:
    """Accuracy (%) of each group that has rows."""
    return {g: _percent(correct[groups == g]) for g in range(num_groups) if (groups == g).any()}


def accuracy_metrics(p: Predictions) -> dict[str, float]:
    correct = p.correct
    test = p.mask("test")
    per_group = group_accuracies(correct[test], p.g[test], p.num_groups)
    metrics = {
        "retain_acc": _percent(correct[p.mask("retain")]),
        "forget_acc": _percent(correct[p.mask("forget")]),
        "test_acc": _percent(correct[test]),
        **{f"group_acc/{g}": acc for g, acc in per_group.items()},
        "worst_group_acc": min(per_group.values()) if per_group else math.nan,
        "forget_group_test_acc": per_group.get(p.forget_group, math.nan),
    }
    return metrics


def speedup(seconds: float, gold_seconds: float) -> float | None:
    """``speedup_vs_gold`` = gold's unlearning wall time / this method's (None if undefined)."""
    if not (seconds > 0 and gold_seconds > 0):
        return None
    return gold_seconds / seconds


def compute_metrics(p: Predictions) -> dict[str, float]:
    """Every metric that needs only the predictions (what ``rescore`` can recompute)."""
    return accuracy_metrics(p)
