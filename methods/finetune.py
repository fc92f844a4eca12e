"""Fine-tune (FT, "catastrophic forgetting"): keep training on the retain set only."""

from __future__ import annotations

from torch import Tensor

from benchmark.data import Batch
from benchmark.method import UnlearningMethod


class Finetune(UnlearningMethod):
    """Minimise CE(theta(x), y) over R for a few epochs, starting from theta_0; F is forgotten
    only through the drift that training on R causes."""

    description = "FT/CF: fine-tune on the retain set for a few epochs"
    paper = "Golatkar et al., CVPR 2020 (baseline); Warnecke et al., NDSS 2023"
    rw_in_default = True

    def __init__(self, model, original, data, *, epochs: int = 3, lr: float = 0.01, **common) -> None:
        super().__init__(model, original, data, epochs=epochs, lr=lr, **common)

    def train_dataloader(self):
        return self.loader("retain")

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        return self.cross_entropy(batch)
