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
    """MIU's random-forest attack on the loss (see the module docstring).

    Computed as fresh fits of every setting would compute it, with less work, each step exact:
    one warm-started forest per criterion grows the 20-, 50- and 100-tree forests (tree for tree
    the trees of fresh fits, so its trees are built once); a forest's probabilities are the sum of
    its trees' in tree order divided by their count, so one pass of the 100 trees over F ∪ TEST
    gives every setting's by running sums (F's predictions are its first rows); the AUC is taken
    for the chosen setting only. Trees are fitted in joblib's threads when the caller allows it
    (``joblib.parallel_config(backend="threading", n_jobs=...)``; each tree's seed is fixed before the fit, so the trees
    do not depend on it); the sums stay serial, in tree order."""
    retain, val, forget, test = (losses(p, part) for part in ("retain", "val", "forget", "test"))
    x_fit, y_fit = np.concatenate([retain, val]), _labels(len(retain), len(val))
    x_eval, y_eval = np.concatenate([forget, test]), _labels(len(forget), len(test))
    proba: dict[tuple[int, str], np.ndarray] = {}  # [P(non-member), P(member)] on F ∪ TEST
    for criterion in CRITERIA:
        forest = RandomForestClassifier(criterion=criterion, random_state=SEED, n_jobs=None, warm_start=True)
        for n in ESTIMATORS:
            forest.set_params(n_estimators=n).fit(x_fit, y_fit)
        proba.update({(n, criterion): q for n, q in _running_probabilities(forest, x_eval).items()})
    # the forest's predict: the first class of highest probability (classes_ = [0, 1])
    share = {s: 100.0 * float(1.0 - (q[: len(forget)].argmax(1) == 1).mean()) for s, q in proba.items()}
    # MIU's loop order (n_estimators outer, criterion inner); max keeps the first maximum, as theirs
    chosen = max([(n, criterion) for n in ESTIMATORS for criterion in CRITERIA], key=share.__getitem__)
    return {"mia_forget_nonmember": share[chosen], "mia_auc": 100.0 * float(roc_auc_score(y_eval, proba[chosen][:, 1]))}


def _running_probabilities(forest: RandomForestClassifier, x: np.ndarray) -> dict[int, np.ndarray]:
    """{n: class probabilities of the forest of its first n trees} for n in ESTIMATORS, as
    ``RandomForestClassifier.predict_proba`` computes them: float32 inputs, a float64 sum over
    the trees in their order, divided by n."""
    if list(forest.classes_) != [0.0, 1.0]:
        raise ValueError(f"the attack's classes are {list(forest.classes_)}, not [0, 1]: it needs members and non-members")
    x32 = np.ascontiguousarray(x, dtype=np.float32)
    total, out = np.zeros((len(x), 2)), {}
    for count, tree in enumerate(forest.estimators_, start=1):
        total += tree.predict_proba(x32, check_input=False)
        if count in ESTIMATORS:
            out[count] = total / count
    return out


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
