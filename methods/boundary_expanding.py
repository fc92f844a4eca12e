"""Boundary Expanding: send the forget set to an extra "shadow" class, then remove it."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from benchmark import Batch, UnlearningMethod


class BoundaryExpanding(UnlearningMethod):
    """Widen the head to C + 1 outputs, head' = [W; w_s] (the shadow row freshly initialised),
    fine-tune the backbone and head' on F with every label set to the shadow class C
    (minimise CE(head'(phi(x)), C)), then drop the shadow row: the head becomes head'[:C]."""

    description = "BE: relabel the forget set to an extra shadow class, fine-tune, then prune that class"
    in_default = False  # the full board (configs/board.yaml) runs it; the short default leaves it out
    paper = "Chen et al., Boundary Unlearning, CVPR 2023"
    reads_retain = False
    dataset_overrides = {"shapes": {"lr": 0.005, "epochs": 5}}

    def __init__(self, model, original, data, *, epochs: int = 10, lr: float = 1e-5, **common) -> None:
        super().__init__(model, original, data, epochs=epochs, lr=lr, **common)
        head = model.head
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(data.seed)
            self.shadow_head = nn.Linear(head.in_features, head.out_features + 1)
        with torch.no_grad():
            self.shadow_head.weight[:-1].copy_(head.weight)
            self.shadow_head.bias[:-1].copy_(head.bias)

    def trainable_parameters(self) -> list[nn.Parameter]:
        return list(self.model.backbone.parameters()) + list(self.shadow_head.parameters())

    def train_dataloader(self):
        return self.loader("forget")

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        logits = self.shadow_head(self.model.features(batch.x))
        shadow = torch.full_like(batch.y, self.shadow_head.out_features - 1)
        return F.cross_entropy(logits, shadow)

    def on_fit_end(self) -> None:
        with torch.no_grad():
            self.model.head.weight.copy_(self.shadow_head.weight[:-1])
            self.model.head.bias.copy_(self.shadow_head.bias[:-1])
