"""NegGrad+: descend on the retain set while ascending on the forget set."""

from __future__ import annotations

from torch import Tensor

from benchmark import Batch, Range, Search, UnlearningMethod


class NegGradPlus(UnlearningMethod):
    """Minimise beta * CE(theta(x_R), y_R) - (1 - beta) * CE(theta(x_F), y_F) on pairs of retain
    and (proportionally sized) forget batches, starting from theta_0."""

    description = "NegGrad+: beta * CE on the retain set minus (1 - beta) * CE on the forget set"
    search = Search({"beta": Range(0.5, 0.999)})
    in_default = False  # the full board (configs/board.yaml) runs it; the short default leaves it out
    paper = "Kurmanji et al. (SCRUB), NeurIPS 2023"

    def __init__(self, model, original, data, *, beta: float = 0.95, epochs: int = 2, lr: float = 0.01, **common) -> None:
        super().__init__(model, original, data, epochs=epochs, lr=lr, **common)

    def train_dataloader(self):
        return self.forget_and_retain()

    def training_step(self, batch: dict[str, Batch], batch_idx: int) -> Tensor:
        beta = self.hparams.beta
        return beta * self.cross_entropy(batch["retain"]) - (1 - beta) * self.cross_entropy(batch["forget"])
