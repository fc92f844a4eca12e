"""Every scorecard metric against answers known by hand."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from benchmark.data import stratified_rows
from benchmark.fairness_gap import ChannelSpread, fairness_gap
from benchmark.metrics import calibration_metrics, fairness_metrics
from benchmark.mutual_info import entropy, feature_group_mi
from benchmark.predictions import PARTS, Predictions
from benchmark.robustness import AttackSettings, preserved_rng, robust_metrics
from benchmark.spec import build_spec


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


def test_mi_near_zero_for_independent_features_and_near_entropy_when_decodable():
    rng = np.random.default_rng(0)
    g = np.repeat(np.arange(4), 250)
    independent = rng.normal(size=(1000, 16))
    assert feature_group_mi(independent, g, 4) < 0.05
    decodable = rng.normal(size=(1000, 16))
    decodable[:, :4] += 6.0 * np.eye(4)[g]
    assert feature_group_mi(decodable, g, 4) > 0.9 * entropy(g, 4) == pytest.approx(0.9 * math.log(4))


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


class Linear(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)
        with torch.no_grad():
            self.fc.weight.copy_(torch.tensor([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0]]))
            self.fc.bias.zero_()

    def forward(self, x):
        return self.fc(x.flatten(1))


def linear_data(n=64):
    x = torch.rand(n, 1, 2, 2)
    y = (x.flatten(1)[:, 2:].sum(1) > x.flatten(1)[:, :2].sum(1)).long()
    return x, y, 2 * y + torch.arange(n) % 2


def test_robust_accuracy_is_zero_on_a_linear_model_once_eps_is_large():
    x, y, g = linear_data()
    settings = AttackSettings(rows=64, eps=1.0, pgd_alpha=0.25, pgd_steps=10, square_queries=50)
    m = robust_metrics(Linear(), x, y, g, 2, settings, torch.device("cpu"))
    assert m["pgd_acc"] == 0.0 and m["autoattack_acc"] == 0.0 and m["pgd_worst_group_acc"] == 0.0


def test_robust_accuracy_never_exceeds_clean_and_restores_the_rng():
    torch.manual_seed(3)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    x, y, g = linear_data()
    clean = 100.0 * (model(x).argmax(1) == y).float().mean().item()
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    m = robust_metrics(model, x, y, g, 2, AttackSettings(eps=0.05, square_queries=20), torch.device("cpu"))
    assert torch.equal(torch.rand(3), expected)  # the attacks reseed; the state is restored
    assert m["pgd_acc"] <= clean and m["autoattack_acc"] <= clean
    assert m["pgd_worst_group_acc"] <= m["pgd_acc"]


def test_preserved_rng_restores_numpy_and_random():
    import random

    np.random.seed(1)
    random.seed(1)
    a = (np.random.rand(), random.random())
    np.random.seed(1)
    random.seed(1)
    with preserved_rng():
        np.random.seed(99)
        random.seed(99)
    assert (np.random.rand(), random.random()) == a


def test_attack_budget_is_the_datasets_unless_the_settings_name_one():
    shapes = build_spec({}, tasks=["shapes/g2-r0.9-skew1.0"])
    assert shapes.metrics_for(shapes.tasks[0]).attacks.eps == pytest.approx(2 / 255)
    assert shapes.metrics_for(shapes.tasks[0]).attacks.pgd_alpha == pytest.approx(0.5 / 255)  # eps / 4
    adult = build_spec({}, tasks=["adult/g2-r0.5-skew1.0"])
    assert adult.metrics_for(adult.tasks[0]).attacks.eps == pytest.approx(8 / 255)  # REFERENCE §5
    chosen = build_spec({"metrics": {"attacks": {"eps": 0.1, "pgd_alpha": 0.01}}}, tasks=["shapes/g2-r0.9-skew1.0"])
    assert chosen.metrics_for(chosen.tasks[0]).attacks == AttackSettings(eps=0.1, pgd_alpha=0.01)
    assert AttackSettings().resolved() == AttackSettings(eps=8 / 255, pgd_alpha=2 / 255)  # outside a task
