"""l1-sparse: fine-tune on the retain set with a decaying l1 penalty on the weights."""

from __future__ import annotations

from torch import Tensor

from benchmark import Batch, Range, Search, UnlearningMethod


class L1Sparse(UnlearningMethod):
    """Minimise CE(theta(x_R), y_R) + alpha_t * ||theta||_1 with alpha_t = alpha * (1 - t / epochs),
    t the current epoch (0-based): sparsity pushed hardest at the start (Jia et al., 2023)."""

    description = "l1-sparse: fine-tune on the retain set with a linearly decaying l1 penalty"
    search = Search({"alpha": Range(1e-5, 1e-2)})
    in_default = False  # the full board (configs/board.yaml) runs it; the short default leaves it out
    paper = "Jia et al., Model Sparsity Can Simplify Machine Unlearning, NeurIPS 2023"
    rw_in_default = True

    def __init__(self, model, original, data, *, alpha: float = 5e-4, epochs: int = 3, lr: float = 0.01, **common) -> None:
        super().__init__(model, original, data, epochs=epochs, lr=lr, **common)

    def train_dataloader(self):
        return self.loader("retain")

    def l1_weight(self) -> float:
        return self.hparams.alpha * (1 - self.current_epoch / self.hparams.epochs)

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        l1 = sum(p.abs().sum() for p in self.model.parameters())
        return self.cross_entropy(batch) + self.l1_weight() * l1
