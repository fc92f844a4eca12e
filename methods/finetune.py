"""Fine-tune (FT, "catastrophic forgetting"): keep training on the retain set only."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

from benchmark import Batch, SampleWeights, UnlearningMethod


class Finetune(UnlearningMethod):
    """Minimise CE(theta(x), y) over R for a few epochs, starting from theta_0; F is forgotten
    only through the drift that training on R causes.

    ``weights='soft'`` (or 'hard') uses the soft-weighted scheme of seed 001 as per-sample
    loss weights over all of TRAIN: minimise the mean of (1 + w_i) CE_i over retain batches
    and proportional forget batches, w = 0 on R and from the engine's influence computation
    (``benchmark/influence.py``) on F ('hard': w = -1, so F drops out and this is FT on R)."""

    description = "FT/CF: fine-tune on the retain set for a few epochs (optionally soft-weighted)"
    paper = "Golatkar et al., CVPR 2020 (baseline); Warnecke et al., NDSS 2023; soft weights: seed 001"
    rw_in_default = True

    def __init__(
        self,
        model,
        original,
        data,
        *,
        weights: str = "none",
        weight_target: str = "eo",
        epochs: int = 3,
        lr: float = 0.01,
        **common,
    ) -> None:
        super().__init__(model, original, data, epochs=epochs, lr=lr, **common)
        self.sample_weights = SampleWeights(weights, weight_target)

    def unlearn(self) -> None:
        self.sample_weights.compute(self.original, self.data)

    def train_dataloader(self):
        return self.forget_and_retain() if self.sample_weights.active else self.loader("retain")

    def training_step(self, batch: Batch | dict[str, Batch], batch_idx: int) -> Tensor:
        if not self.sample_weights.active:
            return self.cross_entropy(batch)
        forget, retain = batch["forget"], batch["retain"]
        logits = self.model(torch.cat([forget.x, retain.x]))
        losses = F.cross_entropy(logits, torch.cat([forget.y, retain.y]), reduction="none")
        weights = 1 + self.sample_weights.of(torch.cat([forget.index, retain.index])).to(losses.dtype)
        return (weights * losses).mean()
