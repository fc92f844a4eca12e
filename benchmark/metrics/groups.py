"""The metrics of one unlearned model that its per-sample predictions determine.

Accuracies and gaps between accuracies are percentages (percentage points). R, F, TEST are
the retain, forget and test rows; TEST_g the test rows of group g; g* = (y*, a*) the forget
group; ŷ = argmax p.

- ``retain_acc`` / ``forget_acc`` / ``test_acc`` = 100 · mean [ŷ = y] over R / F / TEST
- ``group_acc/g`` = the same over TEST_g; ``worst_group_acc`` = min_g; ``forget_group_test_acc``
  = group_acc/g*; ``group_acc_gap`` = max_g − min_g
- ``equalized_odds`` (MIU's ``compute_equalized_odds``) = 100 · mean over t ∈ {y = y*, y ≠ y*}
  of |acc(t, a = a*) − acc(t, a ≠ a*)| on TEST, where acc is the share with ŷ = y: only the
  target and the attribute are binarised around g* = (y*, a*), never the prediction, so
  confusing two classes other than y* is an error. For a binary target and attribute this
  is the plain mean over both classes of the accuracy difference between attribute values
- ``demographic_parity`` = 100 · |P(ŷ = y* | a = a*) − P(ŷ = y* | a ≠ a*)| on TEST
- ``ece`` = 100 · expected calibration error on TEST (torchmetrics, 15 equal-width bins, L1)
- ``mia_forget_nonmember``, ``mia_auc`` (MIU's attack) and ``mia_balanced_*`` (ours): see ``mia.py``
- ``mi_feature_group`` and its standard error ``mi_feature_group_se``: see ``mutual_info.py``
  (from the stored features)
- ``fairness_gap``: see ``fairness_gap.py`` (from the stored channel spreads)

The runner adds the cost metrics (``unlearn_seconds``) and the attack metrics (``robustness.py``);
``scoring.py`` the metrics measured against gold. The names ``compute_metrics`` returns are
exactly the catalog's of source "predictions" (``catalog.py``; tests/unit/test_scorecard.py checks).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torchmetrics.functional.classification import multiclass_calibration_error

from benchmark.metrics.fairness_gap import fairness_gap
from benchmark.metrics.mia import mia_metrics
from benchmark.metrics.mutual_info import feature_group_mi
from benchmark.metrics.predictions import Predictions

ECE_BINS = 15


def _percent(correct: np.ndarray) -> float:
    return float(100.0 * correct.mean()) if correct.size else math.nan


def group_accuracies(correct: np.ndarray, groups: np.ndarray, num_groups: int) -> dict[int, float]:
    """Accuracy (%) of each group that has rows."""
    return {g: _percent(correct[groups == g]) for g in range(num_groups) if (groups == g).any()}


def accuracy_metrics(p: Predictions) -> dict[str, float]:
    correct = p.correct
    test = p.mask("test")
    per_group = group_accuracies(correct[test], p.g[test], p.num_groups)
    return {
        "retain_acc": _percent(correct[p.mask("retain")]),
        "forget_acc": _percent(correct[p.mask("forget")]),
        "test_acc": _percent(correct[test]),
        **{f"group_acc/{g}": acc for g, acc in per_group.items()},
        "worst_group_acc": min(per_group.values()) if per_group else math.nan,
        "forget_group_test_acc": per_group.get(p.forget_group, math.nan),
        "group_acc_gap": max(per_group.values()) - min(per_group.values()) if per_group else math.nan,
    }


def fairness_metrics(p: Predictions) -> dict[str, float]:
    """Equalized odds and demographic parity on TEST, around g* (see above)."""
    test = p.mask("test")
    y_star, a_star = divmod(p.forget_group, p.num_attributes)
    t = p.y[test] == y_star
    s = p.a[test] == a_star
    hat = p.probs[test].argmax(1) == y_star
    right = p.correct[test]
    odds = [abs(_percent(right[(t == v) & s]) - _percent(right[(t == v) & ~s])) for v in (True, False)]
    odds = [o for o in odds if math.isfinite(o)]
    return {
        "equalized_odds": float(np.mean(odds)) if odds else math.nan,
        "demographic_parity": abs(_percent(hat[s]) - _percent(hat[~s])),
    }


def calibration_metrics(p: Predictions) -> dict[str, float]:
    test = p.mask("test")
    probs, y = torch.from_numpy(p.probs[test]).float(), torch.from_numpy(p.y[test]).long()
    ece = multiclass_calibration_error(probs, y, num_classes=probs.shape[1], n_bins=ECE_BINS, norm="l1")
    return {"ece": 100.0 * float(ece)}


def representation_metrics(p: Predictions) -> tuple[dict[str, float], dict[str, Any]]:
    """mi_feature_group and fairness_gap, from what the predictions file keeps of the model."""
    metrics: dict[str, float] = {}
    details: dict[str, Any] = {}
    if len(p.features):
        estimate = feature_group_mi(p.features, p.feature_groups, p.num_groups)
        metrics["mi_feature_group"], metrics["mi_feature_group_se"] = estimate.value, estimate.se
    if p.norm_std:
        metrics["fairness_gap"], details["fairness_gap_profile"] = fairness_gap(p.norm_std)
    return metrics, details


def speedup(seconds: float, gold_seconds: float) -> float | None:
    """``speedup_vs_gold`` = gold's unlearning wall time / this method's (None if undefined)."""
    if not (seconds > 0 and gold_seconds > 0):
        return None
    return gold_seconds / seconds


def compute_metrics(p: Predictions) -> tuple[dict[str, float], dict[str, Any]]:
    """Every metric the predictions determine (what ``rescore`` recomputes), and details
    (per-layer profiles) for the result file."""
    represented, details = representation_metrics(p)
    metrics = {**accuracy_metrics(p), **fairness_metrics(p), **calibration_metrics(p), **mia_metrics(p), **represented}
    return metrics, details
