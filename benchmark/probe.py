"""A small, deterministic multinomial logistic regression: the classifier behind the
membership-inference attack and the mutual-information probe."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F


def fit_logistic(x: Tensor, y: Tensor, num_classes: int, l2: float = 1e-3, steps: int = 100) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Fit softmax regression on standardised ``x`` (float64, full batch, L-BFGS from zero):
    minimise mean CE + l2/2 ||W||^2. Returns (W, b, mean, std) for ``logistic_logits``."""
    x = x.double()
    mean, std = x.mean(0), x.std(0, unbiased=False).clamp_min(1e-12)
    z = (x - mean) / std
    w = torch.zeros(z.shape[1], num_classes, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(num_classes, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([w, b], lr=1.0, max_iter=steps, tolerance_grad=1e-9, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(z @ w + b, y) + 0.5 * l2 * w.square().sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return w.detach(), b.detach(), mean, std


def logistic_logits(model: tuple[Tensor, Tensor, Tensor, Tensor], x: Tensor) -> Tensor:
    w, b, mean, std = model
    return ((x.double() - mean) / std) @ w + b
