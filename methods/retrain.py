"""Retrain: exact unlearning, the gold model every other method is scored against."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from benchmark import Batch, KeepBestOnVal, UnlearningMethod


class Retrain(UnlearningMethod):
    """Train from the original's initial weights on R = TRAIN - F with the original recipe
    (same epochs, optimiser, schedule, best-validation weights); minimise CE(theta(x), y) over R.
    With ``reweight`` it is RW-retrain (seed 000). Its hyper-parameters are the recipe's
    settings, each left as None taking the dataset's recipe."""

    description = "retrain from scratch on the retain set with the original recipe (exact unlearning, the gold)"
    paper = "exact unlearning; RW-retrain: Group-robust Machine Unlearning (2025)"
    rw_in_default = True
    is_gold = True
    trains_with_recipe = True

    def unlearn(self) -> None:
        self.model.load_state_dict(self.data.initial_model().state_dict())

    def train_dataloader(self):
        return self.loader("retain")

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        return self.cross_entropy(batch)

    def trainer_arguments(self) -> dict[str, Any]:
        arguments = super().trainer_arguments()
        if self.hparams.select_best_on_val:
            arguments["callbacks"] = [KeepBestOnVal(self.data.dataset.val)]
        return arguments
