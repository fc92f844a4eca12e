"""SSD: selective synaptic dampening, a one-shot edit with no training."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

from benchmark import Range, Search, UnlearningMethod


class SSD(UnlearningMethod):
    """Importances are diagonal (empirical) Fisher estimates, []_S = mean over batches of S of
    (dCE_batch/dtheta)^2, at theta_0 in eval mode (batch gradients, as the SSD authors compute
    them). For every weight with []_F > alpha * []_D (D = TRAIN):
    theta <- theta * min(lambda * []_D / []_F, 1); all other weights are left as they are.
    No training step (alpha = 10, lambda = 1)."""

    description = "SSD: dampen the weights far more important to the forget set than to the training set"
    search = Search(
        {"alpha": Range(1, 100), "dampening": Range(0.1, 1), "lr": None, "epochs": None, "weight_decay": None},
        reason="SSD takes no optimiser step: it dampens weights once (the batch size still shapes its importances)",
    )
    in_default = False  # the full board (configs/board.yaml) runs it; the short default leaves it out
    paper = "Foster et al., Fast Machine Unlearning Without Retraining, AAAI 2024"
    reads_retain = False

    def __init__(
        self, model, original, data, *, alpha: float = 10.0, dampening: float = 1.0, epochs: int = 0, **common
    ) -> None:
        super().__init__(model, original, data, epochs=epochs, **common)

    def trainer_arguments(self) -> dict:
        return {"max_epochs": 0}

    def importance(self, part: str) -> list[Tensor]:
        params = list(self.model.parameters())
        total = [torch.zeros_like(p) for p in params]
        self.model.eval()
        count = 0
        for batch in self.batches(part):
            grads = torch.autograd.grad(F.cross_entropy(self.model(batch.x), batch.y), params)
            for t, g in zip(total, grads):
                t.add_(g.square())
            count += 1
        return [t / max(1, count) for t in total]

    def unlearn(self) -> None:
        forget, train = self.importance("forget"), self.importance("train")
        alpha, lam = self.hparams.alpha, self.hparams.dampening
        with torch.no_grad():
            for p, f, d in zip(self.model.parameters(), forget, train):
                selected = f > alpha * d
                factor = (lam * d / f.clamp_min(torch.finfo(f.dtype).tiny)).clamp(max=1.0)
                p.copy_(torch.where(selected, p * factor, p))
