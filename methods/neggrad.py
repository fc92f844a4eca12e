"""NegGrad (gradient ascent): push the loss on the forget set up."""

from __future__ import annotations

from torch import Tensor
from torch.nn import functional as F

from benchmark import Batch, SampleWeights, UnlearningMethod


class NegGrad(UnlearningMethod):
    """Gradient ascent on F: minimise -CE(theta(x), y) over F, starting from theta_0.
    Unbounded, so the budget (epochs, lr) is what keeps the model usable.

    ``weights='soft'`` (or 'hard') uses the soft-weighted scheme of seed 001 as per-sample
    loss weights: minimise mean_{j in batch} w_j CE_j with w from the engine's
    influence computation (``benchmark/influence.py``, target ``weight_target``); 'hard' (w = -1) is plain gradient ascent."""

    description = "GA/NegGrad: gradient ascent on the forget set (optionally soft-weighted)"
    paper = "Golatkar et al., CVPR 2020; Thudi et al., EuroS&P 2022; soft weights: seed 001"
    reads_retain = False

    def __init__(
        self,
        model,
        original,
        data,
        *,
        weights: str = "none",
        weight_target: str = "eo",
        epochs: int = 2,
        lr: float = 0.002,
        batch_size: int = 32,
        **common,
    ) -> None:
        super().__init__(model, original, data, epochs=epochs, lr=lr, batch_size=batch_size, **common)
        self.sample_weights = SampleWeights(weights, weight_target)

    def unlearn(self) -> None:
        self.sample_weights.compute(self.original, self.data)

    def train_dataloader(self):
        return self.loader("forget")

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        if not self.sample_weights.active:
            return -self.cross_entropy(batch)
        losses = F.cross_entropy(self.model(batch.x), batch.y, reduction="none")
        return (self.sample_weights.of(batch.index).to(losses.dtype) * losses).mean()
