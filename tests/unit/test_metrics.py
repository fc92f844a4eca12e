import math

import numpy as np
import pytest

from benchmark.metrics.groups import accuracy_metrics, group_accuracies, speedup
from benchmark.metrics.predictions import PARTS, Predictions


def onehot(pred, c=2):
    p = np.full((len(pred), c), 0.1, dtype=np.float32)
    p[np.arange(len(pred)), pred] = 0.9
    return p


def make(rows):
    """rows: (part, y, g, predicted class)"""
    part = np.array([PARTS.index(r[0]) for r in rows], dtype=np.uint8)
    y = np.array([r[1] for r in rows])
    g = np.array([r[2] for r in rows])
    pred = np.array([r[3] for r in rows])
    return Predictions(onehot(pred), y, g % 2, g, part, np.arange(len(rows)), num_groups=4, num_attributes=2, forget_group=2)


def test_accuracies_by_hand():
    rows = [
        # retain: 3 of 4 right
        ("retain", 0, 0, 0), ("retain", 1, 3, 1), ("retain", 0, 1, 0), ("retain", 1, 2, 0),
        # forget: 1 of 2 right
        ("forget", 1, 2, 1), ("forget", 1, 2, 0),
        # test: group 0 2/2, group 1 1/2, group 2 0/2, group 3 2/2
        ("test", 0, 0, 0), ("test", 0, 0, 0),
        ("test", 0, 1, 0), ("test", 0, 1, 1),
        ("test", 1, 2, 0), ("test", 1, 2, 0),
        ("test", 1, 3, 1), ("test", 1, 3, 1),
        # val rows are ignored by these metrics
        ("val", 1, 3, 0),
    ]
    m = accuracy_metrics(make(rows))
    assert m["retain_acc"] == 75.0
    assert m["forget_acc"] == 50.0
    assert m["test_acc"] == 62.5
    assert [m[f"group_acc/{g}"] for g in range(4)] == [100.0, 50.0, 0.0, 100.0]
    assert m["worst_group_acc"] == 0.0
    assert m["forget_group_test_acc"] == 0.0
    assert m["group_acc_gap"] == 100.0


def test_missing_groups_are_skipped():
    assert group_accuracies(np.array([True, False]), np.array([0, 0]), 4) == {0: 50.0}
    rows = [("retain", 0, 0, 0), ("forget", 1, 2, 1), ("test", 0, 0, 0), ("test", 1, 3, 0)]
    m = accuracy_metrics(make(rows))
    assert "group_acc/1" not in m
    assert m["worst_group_acc"] == 0.0
    assert math.isnan(m["forget_group_test_acc"])  # g* absent from TEST


def test_speedup():
    assert speedup(2.0, 10.0) == 5.0
    assert speedup(0.0, 10.0) is None
    assert speedup(1.0, 0.0) is None


def test_predictions_round_trip(tmp_path):
    p = make([("retain", 0, 0, 0), ("forget", 1, 2, 1), ("test", 1, 3, 0)])
    p.save(tmp_path / "p.npz")
    q = Predictions.load(tmp_path / "p.npz")
    assert np.array_equal(p.probs, q.probs) and np.array_equal(p.part, q.part)
    assert (q.num_groups, q.forget_group) == (4, 2)
    assert accuracy_metrics(p) == pytest.approx(accuracy_metrics(q), nan_ok=True)


def test_equalized_odds_on_a_three_class_target_counts_every_confusion_as_an_error():
    """MIU's form: only target and attribute are binarised around g* = (y* = 1, a* = 1); a row
    is right when ŷ = y, so confusing classes 0 and 2 (both "not y*") is an error."""
    from benchmark.metrics.groups import fairness_metrics

    # TEST rows (y, a, ŷ); groups g = 2y + a, 3 classes x 2 attribute values
    rows = [
        (1, 1, 1), (1, 1, 1), (1, 1, 0), (1, 1, 1),  # y = y*, a = a*: 3/4 right
        (1, 0, 1), (1, 0, 2),                        # y = y*, a ≠ a*: 1/2 right
        (0, 1, 2), (2, 1, 2), (0, 1, 0), (2, 1, 0),  # y ≠ y*, a = a*: 2/4 right (0↔2 wrong)
        (0, 0, 0), (2, 0, 2), (2, 0, 2),             # y ≠ y*, a ≠ a*: 3/3 right
    ]
    y = np.array([r[0] for r in rows])
    a = np.array([r[1] for r in rows])
    probs = np.full((len(rows), 3), 0.1, dtype=np.float32)
    probs[np.arange(len(rows)), [r[2] for r in rows]] = 0.8
    p = Predictions(probs, y, a, 2 * y + a, np.full(len(rows), PARTS.index("test"), np.uint8), np.arange(len(rows)),
                    num_groups=6, num_attributes=2, forget_group=3)
    # |75 - 50| = 25 and |50 - 100| = 50: mean 37.5 (binarising ŷ = y* would give |75 - 50| and |100 - 100|: 12.5)
    assert fairness_metrics(p)["equalized_odds"] == pytest.approx(37.5)
