"""Retrain: exact unlearning, the gold model every other method is scored against."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from benchmark import Batch, KeepBestOnVal, UnlearningMethod


class Retrain(UnlearningMethod):
    """Train from the original's initial weights on R = TRAIN - F with the original recipe
    (same epochs, optimiser, schedule, best-validation weights); minimise CE(theta(x), y) over R.
    With ``reweight`` it is RW-retrain (seed 000). Hyper-parameters left as None take the
    dataset's recipe."""

    description = "retrain from scratch on the retain set with the original recipe (exact unlearning, the gold)"
    paper = "exact unlearning; RW-retrain: Group-robust Machine Unlearning (2025)"
    rw_in_default = True
    is_gold = True

    def __init__(
        self,
        model,
        original,
        data,
        *,
        epochs: int | None = None,
        lr: float | None = None,
        batch_size: int | None = None,
        momentum: float | None = None,
        weight_decay: float | None = None,
        warmup_epochs: int | None = None,
        schedule: str | None = None,
        select_best_on_val: bool | None = None,
        reweight: bool = False,
    ) -> None:
        # Fill the recipe in before calling the base class: Lightning records the
        # hyper-parameters from these local names.
        r = data.recipe
        epochs = r.epochs if epochs is None else epochs
        lr = r.lr if lr is None else lr
        batch_size = r.batch_size if batch_size is None else batch_size
        momentum = r.momentum if momentum is None else momentum
        weight_decay = r.weight_decay if weight_decay is None else weight_decay
        warmup_epochs = r.warmup_epochs if warmup_epochs is None else warmup_epochs
        schedule = r.schedule if schedule is None else schedule
        select_best_on_val = r.select_best_on_val if select_best_on_val is None else select_best_on_val
        super().__init__(
            model,
            original,
            data,
            epochs=epochs,
            lr=lr,
            batch_size=batch_size,
            momentum=momentum,
            weight_decay=weight_decay,
            warmup_epochs=warmup_epochs,
            schedule=schedule,
            reweight=reweight,
        )

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
