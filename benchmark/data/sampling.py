"""Seeded row samples a source uses to cut a release into TRAIN, VAL and TEST, or to keep a
smaller share of it: the same arguments give the same rows on any machine."""

from __future__ import annotations

import math

import numpy as np


def seeded_split(n: int, share: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Rows (sorted) of a seeded split of n rows into a ``share`` part and the rest."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    k = int(math.floor(share * n))
    return np.sort(order[:k]), np.sort(order[k:])


def proportional_sample(groups: np.ndarray, limit: int, seed: int = 0) -> np.ndarray:
    """Rows (sorted) of a seeded sample of ``limit`` rows in which every group keeps its share
    (its quota rounded by largest remainder, so within one row of proportional and summing to
    ``limit``); all rows when ``limit`` is not below their number. The same arguments give the
    same rows."""
    n = len(groups)
    if limit >= n:
        return np.arange(n, dtype=np.int64)
    ids, counts = np.unique(groups, return_counts=True)
    exact = counts * limit / n
    quota = np.floor(exact).astype(np.int64)
    quota[np.argsort(quota - exact, kind="stable")[: limit - int(quota.sum())]] += 1
    rng = np.random.default_rng(seed)
    chosen = [rng.permutation(np.flatnonzero(groups == g))[:k] for g, k in zip(ids, quota)]
    return np.sort(np.concatenate(chosen)).astype(np.int64)
