"""Robust accuracy under L∞ attacks (torchattacks), on a fixed group-stratified TEST subset.

- ``pgd_acc``: PGD (eps, step alpha, ``pgd_steps`` steps, random start), torchattacks' PGD.
  eps is the dataset's ``attack_eps`` (8/255, REFERENCE §5, unless the dataset says
  otherwise) when the settings leave it unset; alpha defaults to eps/4 (torchattacks' 2/255
  at 8/255).
- ``autoattack_<budget>_acc``: the AutoAttack ensemble run one attack after the other on the
  rows still robust (torchattacks' MultiAttack). The budget is named by the numbers that ran
  (``budget_met``): ``standard`` is the official AutoAttack (APGD-CE, APGD-T, FAB-T, Square;
  100 APGD/FAB iterations, 5,000 Square queries, one restart each) on ≥ 1,000 TEST rows or
  all of TEST; anything less is ``reduced`` (by default the CPU budget: 10 iterations, 25
  queries, 64 rows). APGD-T and FAB-T target the min(9, C − 1) classes ranked after the top
  one. APGD-T needs ≥ 4 classes (its targeted DLR loss divides by the top logit minus the
  mean of the 3rd and 4th largest) and is left out below that; FAB-T runs on 2 and 3 classes
  under the standard budget, and is left out of the reduced one there (its CPU cost).
- ``*_worst_group_acc``: the minimum over groups of the same accuracy within each group.
- Every accuracy comes with its exact (Clopper–Pearson) 95% binomial interval and its k/n.

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
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torchattacks
from scipy.stats import binomtest
from torch import Tensor, nn

from benchmark.augment import to_unit_float
from benchmark.errors import BenchmarkError
from benchmark.inference import eval_mode
from benchmark.source import DEFAULT_EPS

BUDGET_FIELDS = ("rows", "aa_steps", "square_queries")
# the numbers of each named budget; "standard" is the official AutoAttack's (rows: at least)
BUDGETS: dict[str, dict[str, int]] = {
    "standard": {"rows": 1000, "aa_steps": 100, "square_queries": 5000},
    # a CPU budget: on shapes 100 queries cost 4x the time of 25 and broke no more rows
    "reduced": {"rows": 64, "aa_steps": 10, "square_queries": 25},
}
MAX_TARGETS = 9  # the official AutoAttack's target classes for APGD-T and FAB-T
CONFIDENCE = 0.95


@dataclass(frozen=True)
class AttackSettings:
    """``budget``: 'auto' (standard under ``--preset paper`` or on a GPU, else reduced: see
    ``Spec.metrics_for``), 'standard' or 'reduced'; it fills the numbers left unset. A number
    below the standard's is refused under 'standard'. The name written with the results is
    always ``budget_met``'s, from the numbers that ran."""

    budget: str = "auto"
    rows: int | None = None  # size of the group-stratified TEST subset
    eps: float | None = None  # None: the dataset's attack_eps (DEFAULT_EPS when run outside a task)
    pgd_alpha: float | None = None  # None: eps / 4
    pgd_steps: int = 10
    aa_steps: int | None = None  # APGD-CE, APGD-T and FAB-T iterations
    square_queries: int | None = None
    seed: int = 0
    batch_size: int = 256

    def __post_init__(self) -> None:
        if self.budget not in ("auto", *BUDGETS):
            raise BenchmarkError(f"attack budget must be auto, standard or reduced, not {self.budget!r}")
        if self.budget == "standard":
            given = {k: getattr(self, k) for k in BUDGET_FIELDS if getattr(self, k) is not None}
            low = [f"{k} {v} < {BUDGETS['standard'][k]}" for k, v in given.items() if v < BUDGETS["standard"][k]]
            if low:
                raise BenchmarkError(f"attack budget 'standard' needs at least its numbers ({', '.join(low)}); "
                                     "name budget 'reduced' (or leave it 'auto') to run fewer")

    def resolved(self, eps: float = DEFAULT_EPS, auto: str = "reduced") -> AttackSettings:
        """These settings with eps (``eps`` when unset), the PGD step and the numbers of the
        budget (``auto``'s when the budget is 'auto') filled in; the budget label is kept."""
        eps = eps if self.eps is None else self.eps
        defaults = BUDGETS[auto if self.budget == "auto" else self.budget]
        numbers = {k: defaults[k] if getattr(self, k) is None else getattr(self, k) for k in BUDGET_FIELDS}
        return replace(self, eps=eps, pgd_alpha=eps / 4 if self.pgd_alpha is None else self.pgd_alpha, **numbers)


def budget_met(s: AttackSettings, rows: int, test_rows: int | None = None) -> str:
    """'standard' when the resolved numbers reach the official AutoAttack's on ``rows`` rows
    (≥ 1,000, or all ``test_rows`` of TEST; ``test_rows`` None: unknown), else 'reduced'."""
    s = s.resolved()
    need = BUDGETS["standard"]
    enough_rows = rows >= need["rows"] or (test_rows is not None and rows >= test_rows)
    return "standard" if enough_rows and s.aa_steps >= need["aa_steps"] and s.square_queries >= need["square_queries"] else "reduced"


def autoattack_names(num_classes: int, budget: str = "standard") -> list[str]:
    """The ensemble's attacks, in their order, that run on ``num_classes`` classes."""
    if num_classes >= 4:
        return ["APGD-CE", "APGD-T", "FAB-T", "Square"]
    return ["APGD-CE", "FAB-T", "Square"] if budget == "standard" else ["APGD-CE", "Square"]


def left_out(num_classes: int, budget: str = "standard") -> dict[str, str]:
    """The ensemble's attacks that do not run on ``num_classes`` classes, and why."""
    if num_classes >= 4:
        return {}
    out = {"APGD-T": "its targeted DLR loss reads the 3rd and 4th largest logits, so it needs >= 4 classes"}
    if budget != "standard":
        out["FAB-T"] = "left out of the reduced budget below 4 classes, for its CPU cost"
    return out


def targets(num_classes: int) -> int:
    """Target classes of APGD-T and FAB-T: the official 9, or every other class if fewer."""
    return min(MAX_TARGETS, num_classes - 1)


class _AllFooled(Exception):
    """Raised by ``_Watched`` at the first forward pass where every row it watches is misclassified."""

    def __init__(self, x: Tensor) -> None:
        self.x = x


class _Watched(nn.Module):
    """The model as an APGD run sees it: while ``labels`` are set (one run's rows), a forward pass
    whose every row is misclassified ends the run with ``_AllFooled`` carrying those inputs."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model, self.labels = model, None
        self.training = model.training  # torchattacks restores this mode after each attack: the model's own

    def forward(self, x: Tensor) -> Tensor:
        logits = self.model(x)
        if self.labels is not None and len(x) == len(self.labels) and bool((logits.argmax(1) != self.labels).all()):
            raise _AllFooled(x.detach().clone())
        return logits


def _stops_when_all_fooled(attack: Any) -> Any:
    """``attack`` (torchattacks' APGD or APGDT, built on a ``_Watched`` model) with its runs ending
    at the first iterate where every row of the run is misclassified, instead of after all its
    iterations. Exact: a run's random start is drawn before its first forward pass (so the RNG
    advances as before); APGD keeps, per row, an iterate at which the row was misclassified and
    counts a row fooled once it has been, so a run whose rows are all fooled would end with the
    same rows fooled whatever its later iterations do (REFERENCE §6); the iterate returned is one
    at which all of them are."""
    run, watched = attack.attack_single_run, attack.model

    def stopping(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        watched.labels = y
        try:
            return run(x, y)
        except _AllFooled as fooled:
            none_left = torch.zeros(len(y), dtype=torch.bool, device=y.device)
            return fooled.x, none_left, torch.zeros(len(y), device=y.device), fooled.x
        finally:
            watched.labels = None

    attack.attack_single_run = stopping
    return attack


def _components(model: nn.Module, num_classes: int, s: AttackSettings) -> dict[str, Callable[[], Any]]:
    # torchattacks' APGDT and FAB target n_classes - 1 classes: n_classes = targets + 1
    # one watched model for the whole ensemble (MultiAttack wants one model): it only watches during APGD runs
    common = dict(norm="Linf", eps=s.eps, seed=s.seed, n_restarts=1)
    n, model = targets(num_classes) + 1, _Watched(model)
    return {
        "APGD-CE": lambda: _stops_when_all_fooled(torchattacks.APGD(model, steps=s.aa_steps, loss="ce", **common)),
        "APGD-T": lambda: _stops_when_all_fooled(torchattacks.APGDT(model, steps=s.aa_steps, n_classes=n, **common)),
        "FAB-T": lambda: torchattacks.FAB(model, steps=s.aa_steps, n_classes=n, multi_targeted=True, **common),
        "Square": lambda: torchattacks.Square(model, n_queries=s.square_queries, **common),
    }


def build_attacks(model: nn.Module, num_classes: int, s: AttackSettings, budget: str | None = None) -> dict[str, Any]:
    """PGD and the AutoAttack ensemble of ``budget`` (None: the one the settings' own numbers
    meet), built with the model already on its device (torchattacks fixes the device then)."""
    s = s.resolved()
    budget = budget or budget_met(s, s.rows)
    components = _components(model, num_classes, s)
    return {
        "pgd": torchattacks.PGD(model, eps=s.eps, alpha=s.pgd_alpha, steps=s.pgd_steps, random_start=True),
        "autoattack": torchattacks.MultiAttack([components[name]() for name in autoattack_names(num_classes, budget)]),
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


def clopper_pearson(k: int, n: int, confidence: float = CONFIDENCE) -> list[float]:
    """The exact binomial interval of k successes in n trials, in %."""
    ci = binomtest(k, n).proportion_ci(confidence_level=confidence, method="exact")
    return [100.0 * ci.low, 100.0 * ci.high]


def _worst_group(correct: Tensor, groups: Tensor) -> tuple[int, int]:
    """(k, n) of the group with the lowest accuracy (the smaller group among ties)."""
    counts = [(int(correct[groups == g].sum()), int((groups == g).sum())) for g in groups.unique()]
    return min(counts, key=lambda kn: (kn[0] / kn[1], kn[1]))


def robust_correct(
    model: nn.Module, x: Tensor, y: Tensor, num_classes: int, settings: AttackSettings, device: torch.device,
    budget: str | None = None,
) -> dict[str, Tensor]:
    """Per row of x, whether it is classified correctly both clean and attacked: under 'pgd'
    and under 'autoattack' (the ensemble of ``budget``, as in ``build_attacks``)."""
    model = model.to(device)
    correct: dict[str, list[Tensor]] = {"pgd": [], "autoattack": []}
    with preserved_rng(), eval_mode(model), torch.enable_grad(), torch.autocast(device.type, enabled=False):
        attacks = build_attacks(model, num_classes, settings, budget)
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
    return {name: torch.cat(parts) for name, parts in correct.items()}


def summarise(correct: dict[str, Tensor], groups: Tensor, budget: str) -> tuple[dict[str, float], dict[str, Any]]:
    """(metrics in %, details): the accuracy and worst-group accuracy of each attack, under
    names that carry the AutoAttack budget, and their 95% intervals and k/n."""
    metrics: dict[str, float] = {}
    details: dict[str, Any] = {"intervals": {}, "counts": {}}
    for attack, rows in correct.items():
        prefix = "pgd" if attack == "pgd" else f"autoattack_{budget}"
        overall = (int(rows.sum()), len(rows))
        for key, (k, n) in ((f"{prefix}_acc", overall), (f"{prefix}_worst_group_acc", _worst_group(rows, groups))):
            metrics[key] = 100.0 * k / n
            details["intervals"][key] = clopper_pearson(k, n)
            details["counts"][key] = [k, n]
    return metrics, details


def robust_evaluation(
    model: nn.Module, x: Tensor, y: Tensor, g: Tensor, num_classes: int, settings: AttackSettings,
    device: torch.device, test_rows: int | None = None,
) -> tuple[dict[str, float], dict[str, Any]]:
    """(metrics, details) on rows x drawn from ``test_rows`` TEST rows (None: unknown):
    pgd_acc, pgd_worst_group_acc, autoattack_<budget>_acc, autoattack_<budget>_worst_group_acc
    (%), and details {"intervals": {name: [lo, hi]}, "counts": {name: [k, n]}}."""
    budget = budget_met(settings, len(x), test_rows)
    return summarise(robust_correct(model, x, y, num_classes, settings, device, budget), g, budget)


def robust_metrics(
    model: nn.Module, x: Tensor, y: Tensor, g: Tensor, num_classes: int, settings: AttackSettings,
    device: torch.device, test_rows: int | None = None,
) -> dict[str, float]:
    """The metrics of ``robust_evaluation`` alone."""
    return robust_evaluation(model, x, y, g, num_classes, settings, device, test_rows)[0]


def describe(settings: AttackSettings, num_classes: int, rows: int, test_rows: int | None = None) -> dict[str, Any]:
    """What ran, for the result file: the budget met and every number behind it."""
    s = settings.resolved()
    budget = budget_met(s, rows, test_rows)
    return {
        **asdict(s),
        "budget": budget,
        "budget_setting": s.budget,
        "rows": rows,
        "rows_setting": s.rows,
        "test_rows": test_rows,
        "norm": "Linf",
        "pgd": "PGD, random start",
        "autoattack": autoattack_names(num_classes, budget),
        "left_out": left_out(num_classes, budget),
        "targets": targets(num_classes),
        "restarts": 1,
        "robust_if": "correct clean and attacked",
        "interval": f"Clopper-Pearson exact {CONFIDENCE:.0%}",
        "library": f"torchattacks {torchattacks.__version__}",
    }
