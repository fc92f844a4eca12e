"""Boundary Shrink: pull forget samples across the nearest decision boundary."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

from benchmark import Batch, UnlearningMethod, Range, Search


def fgsm(model: torch.nn.Module, x: Tensor, y: Tensor, bound: float) -> Tensor:
    """x + bound * sign(grad_x CE(model(x), y)), clipped to [0, 1]."""
    with torch.enable_grad():
        x = x.detach().clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(F.cross_entropy(model(x), y), x)
    return (x + bound * grad.sign()).clamp(0.0, 1.0).detach()


class BoundaryShrink(UnlearningMethod):
    """For each forget batch: x_adv = FGSM(x, bound) on theta_0 (inputs in [0, 1]);
    y_hat = argmax theta_0(x_adv), the neighbouring label across the nearest boundary;
    minimise CE(theta(x), y_hat). Paper: bound 0.1, SGD lr 1e-5, 10 passes over F."""

    description = "BS: relabel forget samples to the class an FGSM step of the original reaches"
    search = Search({"bound": Range(0.01, 0.3)})
    paper = "Chen et al., Boundary Unlearning, CVPR 2023"
    reads_retain = False
    dataset_overrides = {"shapes": {"lr": 0.005, "epochs": 5}}

    def __init__(
        self, model, original, data, *, bound: float = 0.1, epochs: int = 10, lr: float = 1e-5, **common
    ) -> None:
        super().__init__(model, original, data, epochs=epochs, lr=lr, **common)

    def train_dataloader(self):
        return self.loader("forget")

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        x_adv = fgsm(self.original, batch.x, batch.y, self.hparams.bound)
        with torch.no_grad():
            target = self.original(x_adv).argmax(dim=1)
        return F.cross_entropy(self.model(batch.x), target)
