"""SalUn: random-label unlearning restricted to the weights most salient for the forget set."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

from benchmark import Range, Search
from methods.random_label import RandomLabel


class SalUn(RandomLabel):
    """Saliency mask m = 1[|grad_theta CE_F(theta_0)| >= tau], tau chosen so that the top
    ``gamma`` share of all weights (ranked globally) is kept; the gradient is of the summed CE
    over F at theta_0, in eval mode. Then random-label unlearning (RL: F with random wrong
    labels, mixed with R) where every update is restricted to the mask:
    theta <- theta - lr * SGD-momentum(m * (g + wd * theta)).

    SalUn's public code masks the gradient but lets SGD's weight decay move every weight; the
    paper's rule updates only salient weights, so the decay is folded into the masked gradient
    here and the optimiser's own weight decay is off.
    """

    description = "SalUn: random labels on the forget set, updating only the most forget-salient weights"
    search = Search({"gamma": Range(0.1, 0.9)})
    paper = "Fan et al., SalUn, ICLR 2024"
    rw_in_default = True

    def __init__(self, model, original, data, *, gamma: float = 0.5, epochs: int = 2, lr: float = 0.01, **common) -> None:
        super().__init__(model, original, data, epochs=epochs, lr=lr, **common)
        if not 0 < gamma <= 1:
            raise ValueError(f"gamma must be in (0, 1], not {gamma}")
        self._masks: list[Tensor] = []

    def unlearn(self) -> None:
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.model.eval()
        self.model.zero_grad()
        for batch in self.batches("forget"):
            F.cross_entropy(self.model(batch.x), batch.y, reduction="sum").backward()
        saliency = [p.grad.abs() for p in params]
        self.model.zero_grad()
        flat = torch.cat([s.flatten() for s in saliency])
        keep = max(1, int(round(self.hparams.gamma * flat.numel())))
        threshold = torch.topk(flat, keep).values.min()
        self._masks = [(s >= threshold).to(s.dtype) for s in saliency]

    def masked_parameters(self) -> list[tuple[torch.nn.Parameter, Tensor]]:
        params = [p for p in self.model.parameters() if p.requires_grad]
        return list(zip(params, self._masks))

    def configure_optimizers(self):
        config = super().configure_optimizers()
        for group in config["optimizer"].param_groups:
            group["weight_decay"] = 0.0  # applied, masked, in on_before_optimizer_step
        return config

    def on_before_optimizer_step(self, optimizer) -> None:
        wd = self.hparams.weight_decay
        for p, mask in self.masked_parameters():
            if p.grad is not None:
                p.grad.add_(p.detach(), alpha=wd).mul_(mask.to(p.device))
