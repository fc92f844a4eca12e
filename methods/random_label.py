"""Random labels (RL): relabel the forget set at random and train on it with the retain set."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

from benchmark import Batch, random_wrong_labels, UnlearningMethod


class RandomLabel(UnlearningMethod):
    """Each forget row gets a fixed label drawn uniformly among the wrong classes,
    y' = (y + U{1..C-1}) mod C, and the model minimises CE over F (with y') and R (with y)
    together, as one stream in which every row appears once an epoch (SalUn's RL): each
    step takes a retain batch and a proportional forget batch and minimises the mean CE over
    both. The retain batch is REWEIGHTed in the ``+rw`` variant.
    """

    description = "RL: train on the forget set with random wrong labels, alongside the retain set"
    paper = "Golatkar et al., CVPR 2020; Fan et al. (SalUn), ICLR 2024"

    def __init__(self, model, original, data, *, epochs: int = 2, lr: float = 0.01, **common) -> None:
        super().__init__(model, original, data, epochs=epochs, lr=lr, **common)
        labels = random_wrong_labels(data.dataset.train.y, data.num_classes, data.seed)
        self.register_buffer("wrong_labels", labels, persistent=False)

    def train_dataloader(self):
        return self.forget_and_retain()

    def training_step(self, batch: dict[str, Batch], batch_idx: int) -> Tensor:
        forget, retain = batch["forget"], batch["retain"]
        x = torch.cat([forget.x, retain.x])
        labels = torch.cat([self.wrong_labels[forget.index], retain.y])
        return F.cross_entropy(self.model(x), labels)
