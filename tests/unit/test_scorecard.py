"""Every scorecard metric against answers known by hand."""


import numpy as np
import pytest
import torch
from torch import nn

from benchmark.dataset import stratified_rows
from benchmark.metrics import catalog
from benchmark.metrics.fairness_gap import ChannelSpread, fairness_gap
from benchmark.metrics.groups import calibration_metrics, compute_metrics, fairness_metrics
from benchmark.metrics.predictions import PARTS, Predictions


def predictions(parts, probs, y, g, num_attributes=2, forget_group=2):
    part = np.array([PARTS.index(p) for p in parts], dtype=np.uint8)
    y, g = np.asarray(y), np.asarray(g)
    return Predictions(np.asarray(probs, dtype=np.float32), y, g % num_attributes, g, part, np.arange(len(y)),
                       num_groups=4, num_attributes=num_attributes, forget_group=forget_group)


def test_equalized_odds_and_demographic_parity_by_hand():
    # TEST rows: (y, a, predicted): g* = (y=1, a=0)
    rows = [(1, 0, 1), (1, 0, 0), (1, 1, 1), (1, 1, 1), (0, 0, 0), (0, 0, 0), (0, 1, 1), (0, 1, 0)]
    y = [r[0] for r in rows]
    g = [2 * r[0] + r[1] for r in rows]
    probs = [[0.2, 0.8] if r[2] else [0.8, 0.2] for r in rows]
    m = fairness_metrics(predictions(["test"] * 8, probs, y, g))
    # y=1: acc(a=0) = 50, acc(a=1) = 100 -> 50; y=0: acc(a=0) = 100, acc(a=1) = 50 -> 50
    assert m["equalized_odds"] == pytest.approx(50.0)
    # P(yhat=1 | a=0) = 1/4, P(yhat=1 | a=1) = 3/4
    assert m["demographic_parity"] == pytest.approx(50.0)


def test_ece_by_hand():
    # every prediction has confidence 0.9 and half are right: ECE = |0.9 - 0.5| = 40%
    probs = [[0.9, 0.1]] * 4
    m = calibration_metrics(predictions(["test"] * 4, probs, [0, 1, 0, 1], [0, 3, 0, 3]))
    assert m["ece"] == pytest.approx(40.0, abs=1e-4)


def test_stratified_rows():
    groups = np.array([0] * 50 + [1] * 10 + [2] * 40)
    rows = stratified_rows(groups, 30)
    assert len(rows) == 30 and np.bincount(groups[rows]).tolist() == [10, 10, 10]
    assert stratified_rows(groups, 30).tolist() == rows.tolist()
    assert len(stratified_rows(groups, 500)) == 100


def test_fairness_gap_zero_for_equal_spread_and_by_hand():
    assert fairness_gap({"l": np.array([2.0, 2.0, 2.0])})[0] == 0.0
    gap, profile = fairness_gap({"a": np.array([1.0, 3.0]), "b": np.array([0.5, 0.5, 1.5])})
    assert profile == {"a": 2.0, "b": 1.0} and gap == 1.5


def test_channel_spread_measures_each_channels_input():
    model = nn.Sequential(nn.BatchNorm2d(3), nn.Flatten(), nn.LayerNorm(12))
    x = torch.randn(500, 3, 2, 2) * torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1, 1)
    with ChannelSpread(model) as spread:
        model.eval()(x)
    stds = spread.stds()
    assert np.allclose(stds["0"], [x[:, c].std(unbiased=False).item() for c in range(3)], rtol=1e-6)
    assert stds["2"].shape == (12,)


def random_predictions(rows_per_part: int = 60, seed: int = 0) -> Predictions:
    """Every part, 4 groups, features of the TEST rows and one norm layer's spreads."""
    rng = np.random.default_rng(seed)
    n = rows_per_part * len(PARTS)
    g = rng.integers(0, 4, n)
    probs = rng.dirichlet([1.0, 1.0], n).astype(np.float32)
    part = np.repeat(np.arange(len(PARTS), dtype=np.uint8), rows_per_part)
    test = g[part == PARTS.index("test")]
    return Predictions(probs, g // 2, g % 2, g, part, np.arange(n), num_groups=4, num_attributes=2, forget_group=2,
                       features=rng.normal(size=(len(test), 8)).astype(np.float16), feature_groups=test,
                       norm_std={"bn": rng.random(4)})


def test_compute_metrics_gives_exactly_the_catalogs_prediction_metrics():
    """A metric computed from the predictions needs its catalog entry (with source
    "predictions"), and every such entry is computed: rescore iterates the catalog."""
    metrics, _ = compute_metrics(random_predictions())
    assert [k for k in metrics if catalog.find(k) is None] == []
    assert catalog.select(metrics, "predictions") == list(metrics)
    assert catalog.missing(metrics, ["predictions"]) == []
    assert {f"group_acc/{g}" for g in range(4)} <= set(metrics)
