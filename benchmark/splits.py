"""Forget-set construction (REFERENCE §3): which TRAIN rows a task asks a model to forget."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from benchmark.errors import BenchmarkError

Skew = float | str  # a share in [0, 1], or "uniform"


def check_skew(skew: Skew) -> Skew:
    """Return ``skew`` as a float in [0, 1] or the string 'uniform'; anything else is an error."""
    if isinstance(skew, str):
        if skew.strip().lower() == "uniform":
            return "uniform"
        try:
            skew = float(skew)
        except ValueError:
            raise BenchmarkError(f"skew must be a number in [0, 1] or 'uniform', not {skew!r}") from None
    if isinstance(skew, bool) or not isinstance(skew, (int, float)) or not 0.0 <= float(skew) <= 1.0:
        raise BenchmarkError(f"skew must be a number in [0, 1] or 'uniform', not {skew!r}")
    return float(skew)


def forget_split(
    groups: Tensor, forget_group: int, size: int, skew: Skew, seed: int | list[int]
) -> tuple[Tensor, Tensor]:
    """Split TRAIN rows into (forget, retain), both sorted.

    skew s in [0, 1]: round(s * size) rows drawn without replacement from group g*, the
    other size - round(s * size) uniformly from TRAIN minus g*. skew 'uniform': ``size``
    rows uniformly from all of TRAIN. The draw depends only on its arguments.
    """
    skew = check_skew(skew)
    n = len(groups)
    g = groups.numpy()
    rng = np.random.default_rng(seed)
    if not 0 < size <= n:
        raise BenchmarkError(f"forget size {size} is not between 1 and the {n} rows of TRAIN")
    if skew == "uniform":
        forget = rng.choice(n, size, replace=False)
    else:
        inside = np.flatnonzero(g == forget_group)
        outside = np.flatnonzero(g != forget_group)
        k = int(round(skew * size))
        if k > len(inside):
            raise BenchmarkError(
                f"skew {skew} asks for {k} rows of group {forget_group}, but TRAIN has only {len(inside)}"
            )
        if size - k > len(outside):
            raise BenchmarkError(
                f"skew {skew} asks for {size - k} rows outside group {forget_group}, but TRAIN has only {len(outside)}"
            )
        forget = np.concatenate([rng.choice(inside, k, replace=False), rng.choice(outside, size - k, replace=False)])
    mask = np.zeros(n, dtype=bool)
    mask[forget] = True
    return torch.from_numpy(np.flatnonzero(mask)), torch.from_numpy(np.flatnonzero(~mask))
