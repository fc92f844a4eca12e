"""Robust accuracy under L∞ attacks (torchattacks), on a fixed group-stratified TEST subset.

- ``pgd_acc``: PGD (eps, step alpha, ``pgd_steps`` steps, random start), torchattacks' PGD.
  eps is the dataset's ``attack_eps`` (8/255, REFERENCE §5, unless the dataset says
  otherwise) when the settings leave it unset; alpha defaults to eps/4 (torchattacks' 2/255
  at 8/255).
- ``autoattack_acc``: the AutoAttack ensemble run one attack after the other on the rows
  still robust (torchattacks' MultiAttack): APGD-CE, APGD-T, FAB-T and Square when the task
  has at least 4 classes; APGD-CE and Square otherwise (APGD-T/FAB-T need ≥ 4 classes,
  APGD-DLR ≥ 3). ``aa_steps`` steps and ``square_queries`` queries (the official AutoAttack
  uses 100 and 5,000; the budget is a setting and is recorded).
- ``*_worst_group_acc``: the minimum over groups of the same accuracy within each group.

A row counts as robust only if the model classifies it correctly both clean and attacked,
so robust accuracy never exceeds clean accuracy (RobustBench's convention). Pitfalls handled
(REFERENCE §6): attacks are built after the model is on its device, inputs are in [0, 1]
(normalisation is inside the model), no autocast, gradients enabled, and the global RNG
state (torch, CUDA, numpy, random) is restored afterwards because APGD/FAB/Square reseed it.
"""

from __future__ import annotations

import random
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from typing import Any, Iterator

import numpy as np
import torch
import torchattacks
from torch import Tensor, nn

from benchmark.augment import to_unit_float
from benchmark.evaluate import eval_mode


DEFAULT_EPS = 8 / 255  # REFERENCE §5, torchattacks' default


@dataclass(frozen=True)
class AttackSettings:
    rows: int = 64  # size of the group-stratified TEST subset
    eps: float | None = None  # None: the dataset's attack_eps (DEFAULT_EPS when run outside a task)
    pgd_alpha: float | None = None  # None: eps / 4
    pgd_steps: int = 10
    aa_steps: int = 10
    square_queries: int = 25  # a CPU budget: on shapes 100 cost 4x the time and broke no more rows
    seed: int = 0
    batch_size: int = 256

    def resolved(self, eps: float = DEFAULT_EPS) -> AttackSettings:
        """These settings with eps (``eps`` when unset) and the PGD step filled in."""
        eps = eps if self.eps is None else self.eps
        return replace(self, eps=eps, pgd_alpha=eps / 4 if self.pgd_alpha is None else self.pgd_alpha)


def autoattack_names(num_classes: int) -> list[str]:
    return ["APGD-CE", "APGD-T", "FAB-T", "Square"] if num_classes >= 4 else ["APGD-CE", "Square"]


def build_attacks(model: nn.Module, num_classes: int, s: AttackSettings) -> dict[str, Any]:
    """The attacks, built with the model already on its device (torchattacks fixes it then)."""
    s = s.resolved()
    components = {
        "APGD-CE": lambda: torchattacks.APGD(model, norm="Linf", eps=s.eps, steps=s.aa_steps, loss="ce", seed=s.seed),
        "APGD-T": lambda: torchattacks.APGDT(model, norm="Linf", eps=s.eps, steps=s.aa_steps, n_classes=num_classes, seed=s.seed),
        "FAB-T": lambda: torchattacks.FAB(
            model, norm="Linf", eps=s.eps, steps=s.aa_steps, n_classes=num_classes, multi_targeted=True, seed=s.seed
        ),
        "Square": lambda: torchattacks.Square(model, norm="Linf", eps=s.eps, n_queries=s.square_queries, seed=s.seed),
    }
    return {
        "pgd": torchattacks.PGD(model, eps=s.eps, alpha=s.pgd_alpha, steps=s.pgd_steps, random_start=True),
        "autoattack": torchattacks.MultiAttack([components[name]() for name in autoattack_names(num_classes)]),
    }


@contextmanager
def preserved_rng() -> Iterator[None]:
    """Restore torch (CPU and CUDA), numpy and random generator states on exit."""
    state = (torch.get_rng_state(), np.random.get_state(), random.getstate())
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    try:
        yield
    finally:
        torch.set_rng_state(state[0])
        np.random.set_state(state[1])
        random.setstate(state[2])
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)


def _group_acc(correct: Tensor, groups: Tensor) -> tuple[float, float]:
    per_group = [correct[groups == g].float().mean().item() for g in groups.unique()]
    return 100.0 * correct.float().mean().item(), 100.0 * min(per_group)


def robust_metrics(
    model: nn.Module, x: Tensor, y: Tensor, g: Tensor, num_classes: int, settings: AttackSettings, device: torch.device
) -> dict[str, float]:
    """pgd_acc, pgd_worst_group_acc, autoattack_acc, autoattack_worst_group_acc (%) on rows x."""
    model = model.to(device)
    correct = {"pgd": [], "autoattack": []}
    with preserved_rng(), eval_mode(model), torch.enable_grad(), torch.autocast(device.type, enabled=False):
        attacks = build_attacks(model, num_classes, settings)
        for start in range(0, len(x), settings.batch_size):
            xb = to_unit_float(x[start : start + settings.batch_size].to(device))
            yb = y[start : start + settings.batch_size].to(device)
            with torch.no_grad():
                clean = model(xb).argmax(1) == yb
            # torchattacks' APGD and Square index inputs as [B, C, H, W]: a table row goes in
            # as a 1 x 1 x D image (the MLP flattens it again) and comes back as a row
            shaped = xb.view(len(xb), 1, 1, -1) if xb.dim() == 2 else xb
            for name, attack in attacks.items():
                adv = attack(shaped, yb).view_as(xb)
                with torch.no_grad():
                    correct[name].append((clean & (model(adv).argmax(1) == yb)).cpu())
    out = {}
    for name, parts in correct.items():
        out[f"{name}_acc"], out[f"{name}_worst_group_acc"] = _group_acc(torch.cat(parts), g)
    return out


def describe(settings: AttackSettings, num_classes: int) -> dict[str, Any]:
    """What ran, for the result file."""
    return {**asdict(settings.resolved()), "norm": "Linf", "pgd": "PGD, random start", "autoattack": autoattack_names(num_classes),
            "robust_if": "correct clean and attacked", "library": f"torchattacks {torchattacks.__version__}"}
