"""MIU (Mutual Information-aware Machine Unlearning, seed 000; REFERENCE §4).

Mutual information between penultimate features z = φθ(x) and group g is estimated with
MINE's Donsker–Varadhan (DV) bound, with a statistics network T_ω([z; onehot(g)]):

    Î_ω(z; g) = mean_i T_ω(z_i, g_i) − log mean_i exp T_ω(z_i, g̃_i),   g̃_i ~ U{0, …, G−1}

(g̃ drawn independently of z). Two estimators: ω_u on the unlearned model's features and
ω_o on the original θ0's. Before each epoch both are tuned by gradient *ascent* on Î over
TRAIN batches (``mine_warmup_steps`` before the first epoch, ``mine_steps`` before the
others), with the model fixed. Then, with the estimators fixed, θ takes SGD steps on

    a pass over F (first ``forget_epochs`` epochs):  min_θ  Î_ωu(φθ(x), g)
    a pass over R (REWEIGHTed):                      min_θ  CE(θ(x), y)
                                                         + λ_MI · (Î_ωu(φθ(x), g) − sg[Î_ωo(φθ0(x), g)])²

with a cosine learning-rate schedule over all model steps (sg = stop-gradient).

MINE's bias correction: writing m = mean_i exp T(z_i, g̃_i), the gradient of log m is taken
as ∇m / m̄ instead of ∇m / m, where m̄ ← (1 − α)·m̄ + α·m (α = 0.01) is a moving average of m
over the batches the estimator has evaluated (its tuning steps and the model steps alike).
The reported value is still the DV bound.

Modes: every MI term sees eval-mode features (BatchNorm on its running statistics, which
these passes never update): tuning ω_u on φθ and ω_o on φθ0, the forget pass's φθ, and both
sides of the calibration term, so each estimator is read on the kind of features it was tuned
on and the penalty is exactly 0 at θ = θ0 (ω_o starts as a copy of ω_u, and both estimators
share each batch's g̃, as in the public code). The cross-entropy of the retain pass trains θ
in train mode as usual (a second, eval-mode pass gives the calibration term's features); θ0
is always in eval mode. The public code reads every term in train mode (θ0 too, whose running
statistics then drift); on a forget batch, which holds (mostly) one group, train-mode BatchNorm
normalises that group's signature away with the batch's own statistics: on the shapes task
the forget pass then had no measurable effect.

Hyper-parameters: the authors' ResNet-18 configs (tdemin16/group-robust_machine_unlearning,
method/configs/config_files/<dataset>/resnet18/bias_0_<r>/miu.yaml) per dataset and forget
ratio r, and their ``fallback.yaml`` where they have none; MINE is trained by SGD with
momentum 0.9, as in their code. Their cosine schedule steps per epoch; ours per step.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.utils.data import DataLoader

from benchmark import Batch, Classifier, eval_mode, Passes, TaskData, UnlearningMethod, Range, Search

HIDDEN = 512  # width of the statistics network
EMA_ALPHA = 0.01  # MINE's moving-average rate for the bias-corrected gradient
MINE_MOMENTUM = 0.9  # the authors' SGD for the statistics networks


class StatisticsNetwork(nn.Module):
    """MINE's T_ω([z; onehot(g)]) = Linear(d+G → 512) – ReLU – Linear(512 → 1), one score per row."""

    def __init__(self, num_features: int, num_groups: int, hidden: int = HIDDEN) -> None:
        super().__init__()
        self.num_groups = num_groups
        self.net = nn.Sequential(nn.Linear(num_features + num_groups, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, z: Tensor, g: Tensor) -> Tensor:
        onehot = F.one_hot(g, self.num_groups).to(z.dtype)
        return self.net(torch.cat([z, onehot], dim=1)).squeeze(1)


def dv_terms(t: StatisticsNetwork, z: Tensor, g: Tensor, g_tilde: Tensor) -> tuple[Tensor, Tensor]:
    """(mean_i T(z_i, g_i), log mean_i exp T(z_i, g̃_i))."""
    scores = t(z, g_tilde)
    return t(z, g).mean(), torch.logsumexp(scores, 0) - math.log(len(scores))


def dv_bound(t: StatisticsNetwork, z: Tensor, g: Tensor, g_tilde: Tensor) -> Tensor:
    """The DV bound Î(z; g) = mean T(z, g) − log mean exp T(z, g̃), with its exact gradient."""
    joint, log_mean_exp = dv_terms(t, z, g, g_tilde)
    return joint - log_mean_exp


def random_groups(g: Tensor, num_groups: int) -> Tensor:
    """g̃: a group drawn uniformly for every row, independently of z (the product of marginals)."""
    return torch.randint_like(g, num_groups)


def ema_surrogate(joint: Tensor, log_mean_exp: Tensor, log_ema: Tensor) -> Tensor:
    """Value: joint − log m, the DV bound. Gradient: ∇joint − ∇m / m̄ (MINE's correction).

    With m = exp(log_mean_exp) and m̄ = exp(log_ema): the ratio r = m / m̄ has value-zero
    part r − sg[r] and gradient ∇r = ∇m / m̄; kept in log space so exp T never overflows.
    """
    ratio = (log_mean_exp - log_ema.detach()).exp()
    return joint - log_mean_exp.detach() - (ratio - ratio.detach())


class MINE(nn.Module):
    """A statistics network with the moving average m̄ of mean exp T that its gradients use."""

    def __init__(self, num_features: int, num_groups: int, alpha: float = EMA_ALPHA) -> None:
        super().__init__()
        self.statistics = StatisticsNetwork(num_features, num_groups)
        self.alpha = alpha
        self.log_ema: Tensor | None = None  # log m̄; starts at the first batch's log m

    def forward(self, z: Tensor, g: Tensor, g_tilde: Tensor) -> Tensor:
        """Î(z; g) with the EMA-corrected gradient; folds this batch's m into m̄ first."""
        joint, log_mean_exp = dv_terms(self.statistics, z, g, g_tilde)
        self.update(log_mean_exp.detach())
        return ema_surrogate(joint, log_mean_exp, self.log_ema)

    def update(self, log_mean_exp: Tensor) -> None:
        """m̄ ← (1 − α)·m̄ + α·m, in log space."""
        if self.log_ema is None:
            self.log_ema = log_mean_exp
        else:
            self.log_ema = torch.logaddexp(
                self.log_ema + math.log1p(-self.alpha), log_mean_exp + math.log(self.alpha)
            )


def cycle(loader: DataLoader) -> Iterator[Batch]:
    """Batches of ``loader`` without end, reshuffled on each pass."""
    while True:
        yield from loader


@torch.no_grad()
def eval_features(model: Classifier, x: Tensor) -> Tensor:
    """Penultimate features in eval mode: no gradient, no BatchNorm statistics update."""
    with eval_mode(model):
        return model.features(x)


class MIU(UnlearningMethod):
    """MIU: unlearn F by minimising the mutual information between features and group on F,
    while training on R keeps that information calibrated to the original model's.

    Before each epoch, with θ fixed, two MINE statistics networks are tuned by SGD with
    momentum 0.9 (``mine_lr``) to maximise the Donsker–Varadhan bound on TRAIN batches,

        Î_ω(z; g) = mean_i T_ω(z_i, g_i) − log mean_i exp T_ω(z_i, g̃_i),   g̃ ~ U{0..G−1},

    ω_u on φθ(x) (the unlearned model, eval mode) and ω_o on φθ0(x) (the original): 100
    steps before the first epoch, 10 before each later one. Then, with ω fixed, SGD on θ:

        forget pass (epochs < forget_epochs):  L_F = Î_ωu(φθ(x), g)
        retain pass (REWEIGHT sampler):        L_R = CE(θ(x), y)
                                                     + λ_MI·(Î_ωu(φθ(x), g) − sg[Î_ωo(φθ0(x), g)])²

    Every Î reads eval-mode features; the two estimates of the λ_MI term share g̃, and ω_o
    starts as a copy of ω_u, so the term is 0 at θ = θ0. The gradient of log mean exp T uses
    MINE's moving average m̄ (α = 0.01) in place of the batch mean (see ``ema_surrogate``).
    Ablations: ``calibration=False`` drops the λ_MI term, ``forget_pass=False`` skips the
    forget passes, ``reweight=False`` draws R uniformly; ``augment`` is the authors'
    ``use_train_aug``.
    """

    description = "MIU: minimise feature-group mutual information on F, calibrated to the original on R (REWEIGHT)"
    search = Search({"lambda_mi": Range(0.1, 10.0), "mine_lr": Range(1e-3, 1e-2)})
    paper = "Group-robust Machine Unlearning (MIU), 2025"
    # the authors' ResNet-18 configs, method/configs/config_files/<dataset>/resnet18/bias_0_<r>/miu.yaml
    # (their "waterbird" is our waterbirds); values common to a dataset's three files sit under its name
    dataset_overrides = {
        "celeba": {"batch_size": 256, "schedule": "cosine", "mine_lr": 0.01},
        "celeba r=0.1": {"lr": 0.001, "lambda_mi": 10.0, "augment": True},  # celeba/resnet18/bias_0_0.1/miu.yaml
        "celeba r=0.5": {"lr": 0.001, "lambda_mi": 10.0, "augment": False},  # celeba/resnet18/bias_0_0.5/miu.yaml
        "celeba r=0.9": {"lr": 0.1, "lambda_mi": 1.0, "augment": True},  # celeba/resnet18/bias_0_0.9/miu.yaml
        "waterbirds": {"lr": 0.1, "schedule": "cosine", "lambda_mi": 10.0},
        "waterbirds r=0.1": {"batch_size": 256, "mine_lr": 0.001, "augment": False},  # waterbird/resnet18/bias_0_0.1/miu.yaml
        "waterbirds r=0.5": {"batch_size": 256, "mine_lr": 0.01, "augment": False},  # waterbird/resnet18/bias_0_0.5/miu.yaml
        "waterbirds r=0.9": {"batch_size": 32, "mine_lr": 0.001, "augment": True},  # waterbird/resnet18/bias_0_0.9/miu.yaml
        "fairface": {"weight_decay": 5e-5, "schedule": "cosine", "forget_epochs": 7, "lambda_mi": 1.0},
        "fairface r=0.1": {"batch_size": 256, "lr": 0.001, "mine_lr": 0.001, "augment": False},  # fairface/resnet18/bias_0_0.1/miu.yaml
        "fairface r=0.5": {"batch_size": 32, "lr": 0.1, "mine_lr": 0.001, "augment": True},  # fairface/resnet18/bias_0_0.5/miu.yaml
        "fairface r=0.9": {"batch_size": 32, "lr": 0.1, "mine_lr": 0.01, "augment": True},  # fairface/resnet18/bias_0_0.9/miu.yaml
        # ours, not the authors': the embedded 3,000-image task on a 2-core CPU, a smaller budget, same rule
        # (MINE's 100/10 tuning steps stay: with 30 the forget pass no longer lowered Î on F;
        # SGD at mine_lr >= 0.05 diverged)
        "shapes": {"epochs": 3, "forget_epochs": 2, "batch_size": 256, "lr": 0.01, "schedule": "cosine", "mine_lr": 0.01},
        # ours: Adult's MLP (no config of theirs), the shapes rule. At the fallback's lr 0.1 (batch 32)
        # all 6 default Adult cells diverged (NaN loss or BatchNorm statistics); at lr 0.01 or 0.005 with
        # batch 32, 1 of 6; with batch 256 and the cosine schedule none. Hand-set until an equal tuning budget.
        "adult": {"lr": 0.01, "batch_size": 256, "schedule": "cosine"},
    }

    def __init__(
        self,
        model: Classifier,
        original: Classifier,
        data: TaskData,
        *,
        # the authors' fallback.yaml, for datasets without a config of theirs
        epochs: int = 10,
        lr: float = 0.1,
        batch_size: int = 32,
        weight_decay: float = 1e-4,
        schedule: str = "constant",
        reweight: bool = True,
        forget_epochs: int = 5,
        lambda_mi: float = 1.0,
        mine_lr: float = 0.01,
        mine_warmup_steps: int = 100,
        mine_steps: int = 10,
        augment: bool = True,
        calibration: bool = True,
        forget_pass: bool = True,
        **common: Any,
    ) -> None:
        super().__init__(
            model,
            original,
            data,
            epochs=epochs,
            lr=lr,
            batch_size=batch_size,
            weight_decay=weight_decay,
            schedule=schedule,
            reweight=reweight,
            **common,
        )
        self.automatic_optimization = False  # three optimisers: θ, ω_u and ω_o
        self.mine_unlearned = MINE(model.num_features, data.num_groups)  # ω_u
        self.mine_original = copy.deepcopy(self.mine_unlearned)  # ω_o, from the same weights
        self.theta_moved = False  # θ is still θ0 until its first step
        self.forget_batches = self.loader("forget")
        self.retain_batches = self.loader("retain")
        self.tuning_batches = cycle(self.loader("train"))

    # -- data ------------------------------------------------------------------------
    def forgets(self, epoch: int) -> bool:
        """Whether ``epoch`` opens with a pass over F."""
        return bool(self.hparams.forget_pass) and epoch < self.hparams.forget_epochs

    def train_dataloader(self) -> Passes:
        """This epoch's stream of (part, batch): a pass over F in a forget epoch, then one over R.
        The loaders are kept across epochs, so each epoch draws a fresh order."""
        passes = {"forget": self.forget_batches} if self.forgets(self.current_epoch) else {}
        return Passes({**passes, "retain": self.retain_batches})

    def trainer_arguments(self) -> dict[str, Any]:
        # the stream changes length once the forget epochs are over
        return {**super().trainer_arguments(), "reload_dataloaders_every_n_epochs": 1}

    def model_steps(self) -> int:
        """SGD steps on θ over the whole run: the length of the cosine schedule."""
        forget_epochs = sum(self.forgets(epoch) for epoch in range(self.hparams.epochs))
        return forget_epochs * len(self.forget_batches) + self.hparams.epochs * len(self.retain_batches)

    # -- optimisation ----------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        hp = self.hparams
        model, schedule = self.sgd_with_schedule(self.model_steps())
        mines = [
            torch.optim.SGD(m.parameters(), lr=hp.mine_lr, momentum=MINE_MOMENTUM)
            for m in (self.mine_unlearned, self.mine_original)
        ]
        return [model, *mines], [schedule]

    def mutual_information(self, mine: MINE, z: Tensor, g: Tensor, g_tilde: Tensor) -> Tensor:
        """Î_ω(z; g) with the EMA-corrected gradient, in float32 whatever the training precision."""
        with torch.autocast(self.device.type, enabled=False):
            return mine(z.float(), g, g_tilde)

    # -- tuning the estimators --------------------------------------------------------
    def on_train_epoch_start(self) -> None:
        super().on_train_epoch_start()
        hp = self.hparams
        steps = hp.mine_warmup_steps if self.current_epoch == 0 else hp.mine_steps
        for _ in range(steps):
            self.tune_estimators(self.next_tuning_batch())

    def next_tuning_batch(self) -> Batch:
        """A TRAIN batch on the device, x as float in [0, 1], not augmented."""
        return self.on_device(next(self.tuning_batches))

    def tune_estimators(self, batch: Batch) -> None:
        """One ascent step on Î for each estimator in use, θ and θ0 fixed, both on the same g̃.
        ω_o sees θ0's features (the public code fed both estimators the unlearned model's)."""
        _, opt_u, opt_o = self.optimizers()
        g_tilde = random_groups(batch.g, self.data.num_groups)
        z = eval_features(self.model, batch.x)
        if self.hparams.forget_pass or self.hparams.calibration:
            self.ascend(self.mine_unlearned, opt_u, z, batch.g, g_tilde)
        if self.hparams.calibration:
            # before θ's first step its eval-mode features are θ0's, bit for bit
            z0 = eval_features(self.original, batch.x) if self.theta_moved else z
            self.ascend(self.mine_original, opt_o, z0, batch.g, g_tilde)

    def ascend(self, mine: MINE, optimizer: Any, z: Tensor, g: Tensor, g_tilde: Tensor) -> None:
        optimizer.zero_grad()
        self.manual_backward(-self.mutual_information(mine, z, g, g_tilde))
        optimizer.step()

    # -- unlearning steps -------------------------------------------------------------
    def training_step(self, batch: tuple[str, Batch], batch_idx: int) -> Tensor:
        part, rows = batch
        loss = self.forget_loss(rows) if part == "forget" else self.retain_loss(rows)
        optimizer = self.optimizers()[0]
        optimizer.zero_grad()
        self.manual_backward(loss)
        optimizer.step()
        self.theta_moved = True
        self.lr_schedulers().step()
        return loss.detach()

    def forget_loss(self, batch: Batch) -> Tensor:
        """L_F = Î_ωu(φθ(x), g), φθ in eval mode: train-mode BatchNorm would normalise the
        (mostly single-group) batch's group signature away, and fold F's statistics into the
        running ones (see the module docstring)."""
        g_tilde = random_groups(batch.g, self.data.num_groups)
        return self.mutual_information(self.mine_unlearned, self.eval_mode_features(batch.x), batch.g, g_tilde)

    def retain_loss(self, batch: Batch) -> Tensor:
        """L_R = CE(θ(x), y) [+ λ_MI·(Î_ωu(φθ(x), g) − sg[Î_ωo(φθ0(x), g)])² with calibration]."""
        loss = F.cross_entropy(self.model(batch.x), batch.y)
        if not self.hparams.calibration:
            return loss
        return loss + self.hparams.lambda_mi * self.calibration_gap(batch).square()

    def calibration_gap(self, batch: Batch) -> Tensor:
        """Î_ωu(φθ(x), g) − sg[Î_ωo(φθ0(x), g)]: both on eval-mode features and one shared g̃."""
        g_tilde = random_groups(batch.g, self.data.num_groups)
        z0 = eval_features(self.original, batch.x)
        with torch.no_grad(), torch.autocast(self.device.type, enabled=False):
            target = dv_bound(self.mine_original.statistics, z0.float(), batch.g, g_tilde)
        return self.mutual_information(self.mine_unlearned, self.eval_mode_features(batch.x), batch.g, g_tilde) - target

    def eval_mode_features(self, x: Tensor) -> Tensor:
        """φθ(x) in eval mode, with its gradient."""
        with eval_mode(self.model):
            return self.model.features(x)
