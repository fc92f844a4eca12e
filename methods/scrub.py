"""SCRUB: a student that stays close to its teacher on R and moves away from it on F."""

from __future__ import annotations

import torch
from torch import Tensor

from benchmark import Batch, distillation_kl, Passes, UnlearningMethod, Range, Search


class SCRUB(UnlearningMethod):
    """Student theta from theta_0, teacher theta_0 (frozen). d(x) = KL_T(teacher(x) ‖ student(x)),
    T = 4 (the paper's d(x; w^u) = KL(p(f(x; w^o)) ‖ p(f(x; w^u))), Hinton's T² scaling).
    Every epoch: while epoch < ``msteps``, a max-step pass over F minimising -d(x);
    then a min-step pass over R minimising gamma * CE(student(x), y) + alpha * d(x)
    (gamma = 0.99, alpha = 0.001; retain batch 128)."""

    description = "SCRUB: stay close to the original on the retain set, move away from it on the forget set"
    search = Search({"alpha": Range(1e-4, 1.0), "msteps": Range(1, 3)})
    paper = "Kurmanji et al., Towards Unbounded Machine Unlearning, NeurIPS 2023"
    rw_in_default = True

    def __init__(
        self,
        model,
        original,
        data,
        *,
        msteps: int = 2,
        temperature: float = 4.0,
        gamma: float = 0.99,
        alpha: float = 0.001,
        forget_batch_size: int = 64,
        epochs: int = 3,
        lr: float = 0.005,
        batch_size: int = 128,
        **common,
    ) -> None:
        super().__init__(model, original, data, epochs=epochs, lr=lr, batch_size=batch_size, **common)

    def train_dataloader(self) -> Passes:
        """This epoch's stream: a pass over F while epoch < msteps, then one over R."""
        return self.forget_then_retain(self.current_epoch < self.hparams.msteps, self.hparams.forget_batch_size)

    def trainer_arguments(self) -> dict:
        # the stream changes once the max-steps are over
        return {**super().trainer_arguments(), "reload_dataloaders_every_n_epochs": 1}

    def divergence(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """(student logits, d(x)) for a batch."""
        student = self.model(batch.x)
        with torch.no_grad():
            teacher = self.original(batch.x)
        return student, distillation_kl(student, teacher, self.hparams.temperature)

    def training_step(self, step: tuple[str, Batch], batch_idx: int) -> Tensor:
        hp = self.hparams
        part, batch = step
        if part == "forget":  # max-steps
            return -self.divergence(batch)[1]
        student, d = self.divergence(batch)
        return hp.gamma * torch.nn.functional.cross_entropy(student, batch.y) + hp.alpha * d
