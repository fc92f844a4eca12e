"""NegGrad (gradient ascent): push the loss on the forget set up."""

from __future__ import annotations

from torch import Tensor

from benchmark.data import Batch
from benchmark.method import UnlearningMethod


class NegGrad(UnlearningMethod):
    """Gradient ascent on F: minimise -CE(theta(x), y) over F, starting from theta_0.
    Unbounded, so the budget (epochs, lr) is what keeps the model usable."""

    description = "GA/NegGrad: gradient ascent on the forget set"
    paper = "Golatkar et al., CVPR 2020; Thudi et al., EuroS&P 2022"
    reads_retain = False

    def __init__(
        self, model, original, data, *, epochs: int = 2, lr: float = 0.002, batch_size: int = 32, **common
    ) -> None:
        super().__init__(model, original, data, epochs=epochs, lr=lr, batch_size=batch_size, **common)

    def train_dataloader(self):
        return self.loader("forget")

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        return -self.cross_entropy(batch)
