"""Supervised training with a recipe: the original model, the gold retrain, and the base
that unlearning methods share (optimiser, schedule, batch preparation)."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Annotated, Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch import Tensor
from torch.nn import functional as F

from benchmark.augment import augment, to_unit_float
from benchmark.dataset import Batch, GroupDataset, Split, make_loader
from benchmark.inference import accuracy
from benchmark.model import Classifier
from benchmark.settings import OneOf, Range, check_fields

SCHEDULES = ("cosine", "constant")
Epochs = Annotated[int, Range(0)]
LearningRate = Annotated[float, Range(0, above=True)]


@dataclass(frozen=True)
class OptimiserSettings:
    """The common optimiser settings, declared once with their rules: SGD with momentum and
    weight decay over ``epochs`` passes in batches of ``batch_size``, the learning rate ramped up
    linearly over ``warmup_epochs``, then a cosine (or constant) ``schedule``. The defaults are
    an unlearning method's (``UnlearningMethod``); a ``Recipe`` states the ones it changes."""

    epochs: Epochs = 3
    batch_size: Annotated[int, Range(1)] = 64
    lr: LearningRate = 0.01
    momentum: Annotated[float, Range(0, 1)] = 0.9
    weight_decay: Annotated[float, Range(0)] = 5e-4
    warmup_epochs: Epochs = 0
    schedule: Annotated[str, OneOf(SCHEDULES)] = "cosine"

    @classmethod
    def of(cls, settings: Any) -> dict[str, Any]:
        """The common optimiser settings among ``settings``' attributes (a recipe's)."""
        return {f.name: getattr(settings, f.name) for f in fields(cls)}


@dataclass(frozen=True)
class Recipe(OptimiserSettings):
    """How the original and gold models are trained (REFERENCE §3): the common optimiser
    settings, at least one epoch, and the best-validation weights kept."""

    epochs: Epochs = 12
    lr: LearningRate = 0.05
    warmup_epochs: Epochs = 1
    select_best_on_val: bool = True

    def __post_init__(self) -> None:
        check_fields(self, "recipe", {"epochs": Range(1)})


def warmup_schedule(step: int, total: int, warmup: int, kind: str) -> float:
    """LR multiplier: linear ramp over ``warmup`` steps, then cosine decay to 0 or constant."""
    if step < warmup:
        return (step + 1) / warmup
    if kind == "constant":
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


class TrainingModule(L.LightningModule):
    """A LightningModule around ``self.model`` with SGD, a warm-up/cosine schedule, and
    batches turned into floats in [0, 1] (augmented while training, unless a subclass's
    ``augment`` hyper-parameter is False) on the device.

    Hyper-parameters are the constructor's keyword arguments and land in ``self.hparams``.
    """

    def __init__(self, model: Classifier, dataset: GroupDataset, **settings: Any) -> None:
        """``settings``: every one of the ``OptimiserSettings`` (and any other hyper-parameter)."""
        super().__init__()
        self.model = model
        self.dataset = dataset
        self.save_hyperparameters(ignore=["model", "original", "dataset", "data", "indices"])
        self.hparams.update(settings)  # as resolved, over what a subclass's constructor was given (None: the default)

    def on_train_epoch_start(self) -> None:
        # Lightning keeps the modes modules arrive in; a copy of an evaluated model would
        # otherwise train in eval mode, with BatchNorm statistics frozen.
        self.train()

    # -- batches -------------------------------------------------------------------
    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        return self._prepare(batch)

    def _prepare(self, batch: Any) -> Any:
        if isinstance(batch, Batch):
            x = to_unit_float(batch.x)
            if self.training and x.dim() == 4 and self.hparams.get("augment", True):
                x = augment(x, self.dataset.augment)
            return batch._replace(x=x)
        if isinstance(batch, dict):
            return {k: self._prepare(v) for k, v in batch.items()}
        if isinstance(batch, (list, tuple)):
            return type(batch)(self._prepare(v) for v in batch)
        return batch

    # -- losses --------------------------------------------------------------------
    def cross_entropy(self, batch: Batch, labels: Tensor | None = None) -> Tensor:
        """Mean cross-entropy of the model on ``batch`` (against ``labels`` if given)."""
        return F.cross_entropy(self.model(batch.x), batch.y if labels is None else labels)

    # -- optimisation --------------------------------------------------------------
    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        """What the optimiser updates; methods that freeze blocks narrow this."""
        return [p for p in self.model.parameters() if p.requires_grad]

    def configure_optimizers(self) -> Any:
        optimizer, schedule = self.sgd_with_schedule(int(self.trainer.estimated_stepping_batches))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def sgd_with_schedule(self, steps: int) -> tuple[torch.optim.SGD, torch.optim.lr_scheduler.LambdaLR]:
        """SGD on ``trainable_parameters`` with the common optimiser settings, and its learning
        rate's warm-up and ``schedule`` over ``steps`` optimiser steps (stepped once per step)."""
        hp = self.hparams
        optimizer = torch.optim.SGD(
            self.trainable_parameters(), lr=hp.lr, momentum=hp.momentum, weight_decay=hp.weight_decay
        )
        total = max(1, steps)
        warmup = int(round(total * hp.warmup_epochs / max(1, hp.epochs)))
        return optimizer, torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: warmup_schedule(step, total, warmup, hp.schedule)
        )

    def trainer_arguments(self) -> dict[str, Any]:
        """Arguments for the Trainer that fits this module (anomalib's ``trainer_arguments``)."""
        return {"max_epochs": int(self.hparams.epochs)}


class KeepBestOnVal(Callback):
    """Keep the weights of the epoch with the highest validation accuracy and restore them
    when fitting ends (the recipes keep the best-validation checkpoint)."""

    def __init__(self, val: Split) -> None:
        self.val = val
        self.best_acc = -1.0
        self.best_epoch = -1
        self._state: dict[str, Tensor] | None = None

    def on_train_epoch_end(self, trainer: L.Trainer, module: TrainingModule) -> None:
        # in the Trainer's precision, as the scorecard evaluates (Runtime.forward_context)
        acc = accuracy(module.model, self.val.x, self.val.y, forward_context=trainer.precision_plugin.forward_context)
        if acc > self.best_acc:
            self.best_acc, self.best_epoch = acc, trainer.current_epoch
            self._state = {k: v.detach().clone() for k, v in module.model.state_dict().items()}

    def on_fit_end(self, trainer: L.Trainer, module: TrainingModule) -> None:
        if self._state is not None:
            module.model.load_state_dict(self._state)


class ERM(TrainingModule):
    """Empirical risk minimisation on rows ``indices`` of TRAIN with a recipe: the original model."""

    def __init__(
        self, model: Classifier, dataset: GroupDataset, indices: Tensor, recipe: Recipe, seed: int
    ) -> None:
        super().__init__(model, dataset, **OptimiserSettings.of(recipe))
        self.indices, self.seed, self.recipe = indices, seed, recipe

    def train_dataloader(self):
        return make_loader(
            self.dataset, "train", self.indices, batch_size=self.recipe.batch_size, shuffle=True, seed=self.seed
        )

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        return self.cross_entropy(batch)

    def trainer_arguments(self) -> dict[str, Any]:
        arguments = super().trainer_arguments()
        if self.recipe.select_best_on_val:
            arguments["callbacks"] = [KeepBestOnVal(self.dataset.val)]
        return arguments
