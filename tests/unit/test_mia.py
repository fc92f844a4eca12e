"""Membership inference: MIU's attack against a reference computed here directly with
scikit-learn by the protocol of MIU's ``compute_basic_mia``, and the balanced attack."""

import numpy as np
import pytest
from joblib import parallel_config
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import roc_auc_score

from benchmark.metrics.mia import balanced_attack, mia_metrics, miu_attack
from benchmark.metrics.predictions import PARTS, Predictions


def binary_predictions(losses: dict[str, np.ndarray]) -> Predictions:
    """Rows whose true class is 1 with the given per-sample losses, in the order of PARTS."""
    parts = [part for part in PARTS for _ in losses[part]]
    p_true = np.exp(-np.concatenate([losses[part] for part in PARTS])).clip(1e-6, 1 - 1e-6)
    probs = np.stack([1 - p_true, p_true], 1).astype(np.float32)
    n = len(parts)
    return Predictions(probs, np.ones(n, int), np.ones(n, int), np.full(n, 3), np.array([PARTS.index(x) for x in parts], np.uint8),
                       np.arange(n), num_groups=4, num_attributes=2, forget_group=2)


def reference(p: Predictions) -> tuple[float, float]:
    """(AUC, forget non-member share), both ×100, as MIU computes them: fresh forests in its
    loop order, a setting kept only when its share is strictly higher than the best so far."""
    def loss(part):
        rows = p.mask(part)
        true = p.probs[rows][np.arange(rows.sum()), p.y[rows]].astype(np.float64)
        return -np.log(np.clip(true, 1e-12, None))

    retain, forget, val, test = (loss(part) for part in ("retain", "forget", "val", "test"))
    x_fit = np.concatenate([retain, val])[:, None]
    y_fit = np.concatenate([np.ones(len(retain)), np.zeros(len(val))])
    x_eval = np.concatenate([forget, test])[:, None]
    y_eval = np.concatenate([np.ones(len(forget)), np.zeros(len(test))])
    best_auc, best_share = None, -1.0
    for n_estimators in [20, 50, 100]:
        for criterion in ["gini", "entropy"]:
            forest = RandomForestClassifier(n_estimators=n_estimators, criterion=criterion, random_state=0)
            forest.fit(x_fit, y_fit)
            auc = roc_auc_score(y_eval, forest.predict_proba(x_eval)[:, 1]) * 100
            share = (1 - forest.predict(forget[:, None]).mean()) * 100
            if share > best_share:
                best_share, best_auc = share, auc
    return best_auc, best_share


@pytest.mark.parametrize("seed, threads", [(0, 1), (1, 1), (1, 2)])
def test_miu_attack_equals_the_protocol_computed_directly(seed, threads):
    """Bit for bit, with the trees fitted on one thread or two (joblib's parallel_config)."""
    rng = np.random.default_rng(seed)
    p = binary_predictions({
        "retain": rng.exponential(0.2, 600),
        "forget": np.concatenate([rng.exponential(0.2, 40), rng.exponential(0.8, 40)]),
        "val": rng.exponential(0.8, 150),
        "test": rng.exponential(0.8, 300),
    })
    auc, share = reference(p)
    with parallel_config(backend="threading", n_jobs=threads):
        ours = miu_attack(p)
    assert ours["mia_auc"] == auc
    assert ours["mia_forget_nonmember"] == share
    assert 0 < share < 100 and 50 < auc < 100  # a case where the choice of setting matters


def test_miu_attack_separates_remembered_from_forgotten_forget_sets():
    rng = np.random.default_rng(2)
    seen = lambda k: rng.uniform(0.0, 0.1, k)  # noqa: E731
    unseen = lambda k: rng.uniform(1.0, 2.0, k)  # noqa: E731
    remembered = miu_attack(binary_predictions({"retain": seen(400), "forget": seen(50), "val": unseen(100), "test": unseen(200)}))
    forgotten = miu_attack(binary_predictions({"retain": seen(400), "forget": unseen(50), "val": unseen(100), "test": unseen(200)}))
    assert remembered["mia_forget_nonmember"] == 0.0 and remembered["mia_auc"] > 99
    assert forgotten["mia_forget_nonmember"] == 100.0 and abs(forgotten["mia_auc"] - 50) < 10


def test_balanced_attack_near_chance_when_losses_share_a_distribution_and_sure_when_they_separate():
    rng = np.random.default_rng(0)
    same = {part: rng.exponential(0.5, 400) for part in PARTS}
    m = balanced_attack(binary_predictions(same))
    assert abs(m["mia_balanced_auc"] - 50) < 6
    apart = {"retain": rng.uniform(0, 0.1, 400), "forget": rng.uniform(0, 0.1, 400),
             "val": rng.uniform(1, 2, 400), "test": rng.uniform(1, 2, 400)}
    m = balanced_attack(binary_predictions(apart))
    assert m["mia_balanced_auc"] > 99 and m["mia_balanced_forget_nonmember"] < 1


def test_both_attacks_are_reported():
    rng = np.random.default_rng(3)
    m = mia_metrics(binary_predictions({part: rng.exponential(0.5, 100) for part in PARTS}))
    assert set(m) == {"mia_forget_nonmember", "mia_auc", "mia_balanced_forget_nonmember", "mia_balanced_auc"}
