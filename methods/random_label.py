"""Random labels (RL): relabel the forget set at random and train on it with the retain set."""

from __future__ import annotations

import math

import torch
from lightning.pytorch.utilities import CombinedLoader
from torch import Tensor

from benchmark.data import Batch
from benchmark.method import UnlearningMethod


class RandomLabel(UnlearningMethod):
    """Each forget row gets a fixed label drawn uniformly among the wrong classes,
    y' = (y + U{1..C-1}) mod C, and the model minimises CE over F (with y') and R (with y)
    together, as one stream in which every row appears once an epoch (SalUn's RL).

    Each step takes a retain batch of ``batch_size`` rows and a forget batch sized so that
    one epoch of R also covers F once; the loss is the mean CE over both. The retain batch
    is REWEIGHTed in the ``+rw`` variant.
    """

    description = "RL: train on the forget set with random wrong labels, alongside the retain set"
    paper = "Golatkar et al., CVPR 2020; Fan et al. (SalUn), ICLR 2024"

    def __init__(self, model, original, data, *, epochs: int = 2, lr: float = 0.01, **common) -> None:
        super().__init__(model, original, data, epochs=epochs, lr=lr, **common)
        y = data.dataset.train.y
        c = data.num_classes
        generator = torch.Generator().manual_seed(data.seed)
        shift = torch.randint(1, max(2, c), (len(y),), generator=generator)
        self.register_buffer("wrong_labels", (y + shift) % c, persistent=False)

    def train_dataloader(self):
        retain = self.loader("retain")
        steps = math.ceil(len(self.data.retain_idx) / self.hparams.batch_size)
        forget = self.loader("forget", batch_size=math.ceil(len(self.data.forget_idx) / steps))
        return CombinedLoader({"forget": forget, "retain": retain}, "max_size_cycle")

    def training_step(self, batch: dict[str, Batch], batch_idx: int) -> Tensor:
        forget, retain = batch["forget"], batch["retain"]
        x = torch.cat([forget.x, retain.x])
        labels = torch.cat([self.wrong_labels[forget.index], retain.y])
        return torch.nn.functional.cross_entropy(self.model(x), labels)
