"""Membership inference: does the unlearned model still treat the forget set as training data?

Attack (MIU's protocol, SalUn's features widened): per-sample features
    loss      CE(p_i, y_i) = -log p_i(y_i)
    confidence p_i(y_i)
    entropy   H(p_i) = -sum_c p_i(c) log p_i(c)
a logistic-regression classifier is fitted on members (a seeded sample of RETAIN rows, as many
as VAL has, label 1) against non-members (VAL, never trained on, label 0). Then

    mia_forget_nonmember = 100 * share of F with P(member | x) < 0.5
    mia_auc              = AUROC of P(member | x) separating F (positive) from TEST (negative)

A model that never saw F (the gold) scores F like TEST: AUROC near 0.5 and a high
non-member share; a model that remembers F scores it like RETAIN.
"""

from __future__ import annotations

import numpy as np
import torch
from torchmetrics.functional.classification import binary_auroc

from benchmark.predictions import Predictions
from benchmark.probe import fit_logistic, logistic_logits

FEATURES = ("loss", "confidence", "entropy")
SETTINGS = {"attack": "logistic regression", "features": list(FEATURES), "members": "RETAIN sample of |VAL| rows", "non_members": "VAL", "seed": 0}


def attack_features(probs: np.ndarray, y: np.ndarray) -> torch.Tensor:
    p = torch.from_numpy(probs).double().clamp_min(1e-12)
    confidence = p[torch.arange(len(y)), torch.from_numpy(y)]
    entropy = -(p * p.log()).sum(1)
    return torch.stack([-confidence.log(), confidence, entropy], dim=1)


def membership_scores(p: Predictions) -> tuple[np.ndarray, np.ndarray]:
    """P(member) for the rows of F and of TEST, from an attack fitted on RETAIN vs VAL."""
    retain, val = np.flatnonzero(p.mask("retain")), np.flatnonzero(p.mask("val"))
    members = np.random.default_rng(SETTINGS["seed"]).choice(retain, min(len(retain), len(val)), replace=False)
    rows = np.concatenate([members, val])
    labels = torch.cat([torch.ones(len(members)), torch.zeros(len(val))]).long()
    attack = fit_logistic(attack_features(p.probs[rows], p.y[rows]), labels, 2)

    def score(mask: np.ndarray) -> np.ndarray:
        logits = logistic_logits(attack, attack_features(p.probs[mask], p.y[mask]))
        return logits.softmax(1)[:, 1].numpy()

    return score(p.mask("forget")), score(p.mask("test"))


def mia_metrics(p: Predictions) -> dict[str, float]:
    forget, test = membership_scores(p)
    scores = torch.from_numpy(np.concatenate([forget, test]))
    target = torch.cat([torch.ones(len(forget)), torch.zeros(len(test))]).long()
    return {
        "mia_forget_nonmember": float(100.0 * (forget < 0.5).mean()),
        "mia_auc": float(binary_auroc(scores, target)),
    }
