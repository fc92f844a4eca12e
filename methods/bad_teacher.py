"""Bad Teacher: distil from the original on R and from a random model on F."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from benchmark import Batch, distillation_kl, frozen_copy, UnlearningMethod, Range, Search


class BadTeacher(UnlearningMethod):
    """Student theta from theta_0; competent teacher theta_0, incompetent teacher a randomly
    initialised model of the same architecture. On mixed batches of F and R, minimise
    KL_T(teacher(x) ‖ student(x)) with the incompetent teacher for forget rows and the competent
    one for retain rows (T = 1), over one pass of F and a ``retain_fraction`` (30%) of R."""

    description = "Bad Teacher: distil from the original on the retain set and from a random model on the forget set"
    search = Search({"temperature": Range(0.5, 4.0), "retain_fraction": Range(0.1, 1.0)})
    in_default = False  # the full board (configs/board.yaml) runs it; the short default leaves it out
    paper = "Chundawat et al., Can Bad Teaching Induce Forgetting?, AAAI 2023"

    def __init__(
        self,
        model,
        original,
        data,
        *,
        temperature: float = 1.0,
        retain_fraction: float = 0.3,
        epochs: int = 1,
        lr: float = 0.01,
        **common,
    ) -> None:
        super().__init__(model, original, data, epochs=epochs, lr=lr, **common)
        if not 0 < retain_fraction <= 1:
            raise ValueError(f"retain_fraction must be in (0, 1], not {retain_fraction}")
        self.bad_teacher = frozen_copy(data.initial_model())

    def steps(self) -> int:
        return max(1, math.ceil(self.hparams.retain_fraction * len(self.data.retain_idx) / self.hparams.batch_size))

    def train_dataloader(self):
        return self.forget_and_retain(self.steps())

    def trainer_arguments(self) -> dict:
        return {**super().trainer_arguments(), "limit_train_batches": self.steps()}

    def training_step(self, batch: dict[str, Batch], batch_idx: int) -> Tensor:
        forget, retain = batch["forget"], batch["retain"]
        student = self.model(torch.cat([forget.x, retain.x]))
        with torch.no_grad():
            teacher = torch.cat([self.bad_teacher(forget.x), self.original(retain.x)])
        return distillation_kl(student, teacher, self.hparams.temperature)
