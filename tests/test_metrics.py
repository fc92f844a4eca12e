import math

import numpy as np
import pytest

from benchmark.metrics import accuracy_metrics, group_accuracies, speedup
from benchmark.predictions import PARTS, Predictions


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
