"""mi_feature_group: how much the penultimate features say about the group.

One fixed, seeded estimator for every model (REFERENCE §5): the variational Barber–Agakov
lower bound with a held-out linear probe,

    Î(Z; G) = H(G) − CE_heldout(q),   q(g | z) a softmax regression fitted on the other half,

in nats, on a fixed, group-stratified TEST subset (the same rows for every model of a
dataset) split into two stratified halves (fit / evaluate). H(G) is the entropy of the
evaluation half's group frequencies; Î is clipped at 0 (a bound below 0 says nothing).
It is near 0 for features independent of the group and near H(G) when the group is linearly
decodable from them. ``mi_calibration_error`` = |Î_unlearned − Î_gold| (scoring.py).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.nn import functional as F

from benchmark.probe import fit_logistic, logistic_logits

SEED = 0
SETTINGS = {"estimator": "Barber-Agakov bound, held-out linear probe (L-BFGS, l2 1e-3)", "halves": "stratified 50/50", "seed": SEED}


def _halves(groups: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    first = [rows[: len(rows) // 2] for rows in (rng.permutation(np.flatnonzero(groups == g)) for g in np.unique(groups))]
    mask = np.zeros(len(groups), dtype=bool)
    mask[np.concatenate(first)] = True
    return np.flatnonzero(mask), np.flatnonzero(~mask)


def entropy(groups: np.ndarray, num_groups: int) -> float:
    p = np.bincount(groups, minlength=num_groups) / len(groups)
    return float(-sum(q * math.log(q) for q in p if q > 0))


def feature_group_mi(z: np.ndarray, g: np.ndarray, num_groups: int, seed: int = SEED) -> float:
    """Î(Z; G) in nats, by the held-out probe bound (see the module docstring)."""
    fit, held = _halves(g, seed)
    zt, gt = torch.from_numpy(np.asarray(z, dtype=np.float64)), torch.from_numpy(g).long()
    probe = fit_logistic(zt[fit], gt[fit], num_groups)
    ce = F.cross_entropy(logistic_logits(probe, zt[held]), gt[held]).item()
    return max(0.0, entropy(g[held], num_groups) - ce)
