"""Membership inference: does the unlearned model still treat the forget set as training data?

Per-sample loss ℓ_i = −log p_i(y_i), from the stored float32 probabilities.

**MIU's attack** (``mia_forget_nonmember``, ``mia_auc``; MIU's ``compute_basic_mia``, the MIA
inside Avg. Gap). Training set: every RETAIN row (member, label 1) and every VAL row (non-member,
label 0), the loss as the only feature. For n_estimators ∈ {20, 50, 100} × criterion ∈
{gini, entropy} (in that order) a scikit-learn ``RandomForestClassifier(random_state=0)`` is
fitted; the setting kept is the first with the highest

    mia_forget_nonmember = 100 · (1/|F|) Σ_{i∈F} [forest predicts non-member for ℓ_i]

and ``mia_auc`` = 100 · ROC-AUC of that forest's P(member | ℓ) separating F (positive) from
TEST (negative). The gold never saw F, so its values are the reference. One deviation: when
no setting calls any row of F a non-member, MIU's code reports an AUC of 0 (its running best
starts at 0); we report the first setting's AUC instead.

**Balanced attack** (``mia_balanced_forget_nonmember``, ``mia_balanced_auc``; ours). MIU's
training set is imbalanced (|RETAIN| members against |VAL| non-members) and its setting is
chosen on F itself, which flatters or penalises a model by how the forest's threshold falls.
Here a fixed attack sees equal classes: a scikit-learn logistic regression on standardised
(loss, confidence p(y), entropy H(p)) fitted on a seeded sample of |VAL| RETAIN rows against
VAL; the same two numbers with "non-member" meaning P(member) < 0.5.
"""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from benchmark.metrics.predictions import Predictions

ESTIMATORS = (20, 50, 100)
CRITERIA = ("gini", "entropy")
SEED = 0
SETTINGS = {
    "miu": {
        "attack": "scikit-learn RandomForestClassifier, random_state 0",
        "features": ["loss"],
        "members": "all RETAIN",
        "non_members": "all VAL",
        "grid": {"n_estimators": list(ESTIMATORS), "criterion": list(CRITERIA)},
        "selection": "highest forget non-member share (first on ties)",
        "auc": "forget (1) vs TEST (0)",
    },
    "balanced": {
        "attack": "scikit-learn LogisticRegression on standardised features",
        "features": ["loss", "confidence", "entropy"],
        "members": "RETAIN sample of |VAL| rows",
        "non_members": "VAL",
        "seed": SEED,
        "auc": "forget (1) vs TEST (0)",
    },
}


def true_class_probability(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    """p_i(y_i), float64, clipped at 1e-12 so that its log is finite."""
    return np.clip(probs[np.arange(len(y)), y].astype(np.float64), 1e-12, None)


def losses(p: Predictions, part: str) -> np.ndarray:
    """ℓ = −log p(y) of the rows of ``part``, as a one-column float64 matrix."""
    rows = p.mask(part)
    return -np.log(true_class_probability(p.probs[rows], p.y[rows]))[:, None]


def _labels(members: int, non_members: int) -> np.ndarray:
    return np.concatenate([np.ones(members), np.zeros(non_members)])


def miu_attack(p: Predictions) -> dict[str, float]:
    """MIU's random-forest attack on the loss (see the module docstring)."""
    retain, val, forget, test = (losses(p, part) for part in ("retain", "val", "forget", "test"))
    x_fit, y_fit = np.concatenate([retain, val]), _labels(len(retain), len(val))
    x_eval, y_eval = np.concatenate([forget, test]), _labels(len(forget), len(test))
    found: dict[tuple[int, str], dict[str, float]] = {}
    for criterion in CRITERIA:
        # growing one warm-started forest gives, tree for tree, the forests of fresh fits
        forest = RandomForestClassifier(criterion=criterion, random_state=SEED, n_jobs=1, warm_start=True)
        for n in ESTIMATORS:
            forest.set_params(n_estimators=n).fit(x_fit, y_fit)
            found[n, criterion] = {
                "mia_forget_nonmember": 100.0 * float(1.0 - forest.predict(forget).mean()),
                "mia_auc": 100.0 * float(roc_auc_score(y_eval, forest.predict_proba(x_eval)[:, 1])),
            }
    # MIU's loop order (n_estimators outer, criterion inner); max keeps the first maximum, as theirs
    in_order = [(n, criterion) for n in ESTIMATORS for criterion in CRITERIA]
    return found[max(in_order, key=lambda setting: found[setting]["mia_forget_nonmember"])]


def attack_features(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(loss, confidence p(y), entropy H(p)) per row, float64."""
    p = np.clip(probs.astype(np.float64), 1e-12, None)
    confidence = true_class_probability(probs, y)
    return np.stack([-np.log(confidence), confidence, -(p * np.log(p)).sum(1)], axis=1)


def balanced_attack(p: Predictions) -> dict[str, float]:
    """Our balanced logistic-regression attack (see the module docstring)."""
    retain, val = np.flatnonzero(p.mask("retain")), np.flatnonzero(p.mask("val"))
    members = np.random.default_rng(SEED).choice(retain, min(len(retain), len(val)), replace=False)
    rows = np.concatenate([members, val])
    attack = make_pipeline(StandardScaler(), LogisticRegression())
    attack.fit(attack_features(p.probs[rows], p.y[rows]), _labels(len(members), len(val)))

    def member_probability(part: str) -> np.ndarray:
        mask = p.mask(part)
        return attack.predict_proba(attack_features(p.probs[mask], p.y[mask]))[:, 1]

    forget, test = member_probability("forget"), member_probability("test")
    return {
        "mia_balanced_forget_nonmember": 100.0 * float((forget < 0.5).mean()),
        "mia_balanced_auc": 100.0 * float(roc_auc_score(_labels(len(forget), len(test)), np.concatenate([forget, test]))),
    }


def mia_metrics(p: Predictions) -> dict[str, float]:
    return {**miu_attack(p), **balanced_attack(p)}
