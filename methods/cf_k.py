"""CF-k: catastrophic forgetting of the last k blocks only."""

from __future__ import annotations

from torch import Tensor

from benchmark import Batch, UnlearningMethod


class CFk(UnlearningMethod):
    """Fine-tune only the last ``k`` stages of the backbone and everything after them (final
    norm, head) on R, minimising CE(theta(x), y); all earlier parameters and their BatchNorm
    statistics stay exactly as in theta_0 (their modules are kept in eval mode). For a ResNet,
    k = 1 is layer4 + fc (Goel et al.; seed 002 finds intermediate/last layers enough)."""

    description = "CF-k: fine-tune only the last k blocks (and head) on the retain set"
    in_default = False  # the full board (configs/board.yaml) runs it; the short default leaves it out
    paper = "Goel et al., Towards Adversarial Evaluation of Unlearning, 2022"

    def __init__(self, model, original, data, *, k: int = 1, epochs: int = 3, lr: float = 0.01, **common) -> None:
        super().__init__(model, original, data, epochs=epochs, lr=lr, **common)
        tail = set(model.tail_parameters(k))
        for name, p in model.named_parameters():
            p.requires_grad_(name in tail)  # frozen modules also stay in eval mode (see train())

    def train_dataloader(self):
        return self.loader("retain")

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        return self.cross_entropy(batch)
