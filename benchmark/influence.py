"""Influence maths of the soft-weighted scheme (seed 001), apart from Lightning: the head
problem of a model, per-sample gradients and the Hessian of its last linear layer, the
influences on VAL targets, the closed-form soft weights, the Newton update, and
``SampleWeights`` (the weights as per-sample loss weights, for GA and FT). The method that
applies the update is ``methods/soft_weighted.py``.

The head problem. The backbone stays frozen: e_i = features(x_i) of the original model (eval
mode, no augmentation), and e~_i = [e_i; 1] carries the bias, so the head is one matrix
theta = [W | b] in R^{C x (d+1)}, flattened row-major. With p_i = softmax(theta e~_i) and
l_i = CE(theta e~_i, y_i), both exact for any C (float64):

    g_i = grad_theta l_i = (p_i - onehot(y_i)) (x) e~_i
    H   = sum_{i in TRAIN} (diag(p_i) - p_i p_i^T) (x) e~_i e~_i^T + lam I

For C = 2 this is the binary sum p(1-p) e e^T in the redundant softmax parameterisation:
theta -> theta + 1 (x) v leaves every p_i unchanged, so the undamped H is singular along
those directions; every g_i and every gradient below is orthogonal to them, and lam makes H
invertible (along the logit difference, the step equals the binary Newton step with lam/2).
H sums over all of TRAIN: the original head was fitted to TRAIN, and the influence function
expands that objective around theta_0. By default lam = |TRAIN| x the recipe's weight decay:
SGD's weight decay wd on the mean loss is the term |TRAIN| wd / 2 |theta|^2 of the summed
loss, so H is then the exact Hessian of the objective the original head was trained on.

Influence. Reweight the training loss by 1 + w_j on the forget rows j in F:
L_w(theta) = sum_i l_i + sum_{j in F} w_j l_j + lam/2 |theta|^2. One Newton step from theta_0
(taken as the optimum of the unweighted objective; SGD leaves it close, not exactly there) gives

    theta_w = theta_0 - H^-1 sum_j w_j g_j               (the update ``soft_weighted`` applies)

so w_j = -1 is the classic removal of row j, theta_0 + H^-1 g_j (Koh & Liang). To first order a
function Phi on VAL moves by grad Phi^T (theta_w - theta_0) = -sum_j w_j g_j^T H^-1 grad Phi; with

    u_j = g_j^T H^-1 grad L_val      (L_val = mean CE on VAL, the utility)
    f_j = g_j^T H^-1 grad F_val      (F_val = the target gap on VAL, F_0 = its value at theta_0)

Delta L_val = -u^T w and Delta F_val = -f^T w.

Schemes. ``hard``: w = -1 on every row of F (first-order removal of F from the head). ``soft``:
the minimum-norm w with f^T w = |F_0| and u^T w = 0; by Lagrange w = alpha f + beta u, and the
2 x 2 system gives

    w = |F_0| (|u|^2 f - (f^T u) u) / (|f|^2 |u|^2 - (f^T u)^2),

so Delta F_val = -|F_0| (every target is a gap >= 0: it is cancelled to first order) and
Delta L_val = 0. The paper's wiki form adds box constraints 0 <= w <= 1; this closed form has
none (REFERENCE section 4 gives both; we implement the closed form).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from benchmark.augment import to_unit_float
from benchmark.errors import BenchmarkError
from benchmark.task import TaskData

SCHEMES = ("hard", "soft")
TARGETS = ("dp", "eo", "robust")


@dataclass(frozen=True)
class ValSet:
    """VAL with frozen features: ``e`` [N, d+1] (a 1 appended), labels, attributes, groups,
    and the binarisation of the dp/eo gaps: ``positive`` = g*'s target, ``attribute`` = g*'s
    attribute (for binary targets and attributes, the plain gaps of REFERENCE section 5)."""

    e: Tensor
    y: Tensor
    a: Tensor
    g: Tensor
    positive: int
    attribute: int


@dataclass(frozen=True)
class HeadProblem:
    """The original head ``theta`` = [W | b] (float64) and the frozen TRAIN and VAL features."""

    theta: Tensor
    train_e: Tensor
    val: ValSet


@dataclass(frozen=True)
class Influence:
    """Per-sample gradients of the forget rows, the Cholesky factor of H, u, f and F_0."""

    grads: Tensor
    chol: Tensor
    u: Tensor
    f: Tensor
    f0: float


# -- the head problem -----------------------------------------------------------------
@torch.no_grad()
def extract_features(model: nn.Module, x: Tensor, batch_size: int) -> Tensor:
    """Penultimate features of every row of ``x`` (eval mode, no augmentation), float64 on
    the CPU, with a column of ones appended for the bias."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        chunks = [
            model.features(to_unit_float(x[s : s + batch_size].to(device))).double().cpu()
            for s in range(0, len(x), batch_size)
        ]
    finally:
        model.train(was_training)
    e = torch.cat(chunks)
    return torch.cat([e, e.new_ones(len(e), 1)], dim=1)


def head_parameters(head: nn.Linear) -> Tensor:
    """theta = [W | b] in float64, [C, d+1]."""
    return torch.cat([head.weight, head.bias[:, None]], dim=1).detach().double().cpu()


@torch.no_grad()
def set_head(head: nn.Linear, theta: Tensor) -> None:
    """Write theta = [W | b] into ``head`` (in its own dtype and device)."""
    head.weight.copy_(theta[:, :-1])
    head.bias.copy_(theta[:, -1])


def head_problem(model: nn.Module, data: TaskData, batch_size: int) -> HeadProblem:
    """The head problem of ``model`` (the original) on its task: theta_0, TRAIN and VAL."""
    ds = data.dataset
    positive, attribute = divmod(data.forget_group, ds.num_attributes)
    val = ValSet(
        e=extract_features(model, ds.val.x, batch_size),
        y=ds.val.y.long(),
        a=ds.val.a.long(),
        g=ds.groups("val").long(),
        positive=positive,
        attribute=attribute,
    )
    return HeadProblem(head_parameters(model.head), extract_features(model, ds.train.x, batch_size), val)


# -- linear algebra -------------------------------------------------------------------
def per_sample_grads(theta: Tensor, e: Tensor, y: Tensor) -> Tensor:
    """g_i = (p_i - onehot(y_i)) (x) e~_i for every row: [N, C (d+1)]."""
    p = torch.softmax(e @ theta.T, dim=1)
    residual = p - F.one_hot(y, theta.shape[0]).to(p)
    return (residual[:, :, None] * e[:, None, :]).reshape(len(e), -1)


def head_hessian(theta: Tensor, e: Tensor, lam: float = 0.0) -> Tensor:
    """sum_i (diag(p_i) - p_i p_i^T) (x) e~_i e~_i^T + lam I, built block by block
    (block (a, b) = e~^T diag(delta_ab p_a - p_a p_b) e~; symmetric, so b >= a suffices)."""
    p = torch.softmax(e @ theta.T, dim=1)
    c, dim = theta.shape
    h = theta.new_zeros(c, dim, c, dim)
    for a in range(c):
        for b in range(a, c):
            weight = p[:, a] * (float(a == b) - p[:, b])
            block = e.T @ (weight[:, None] * e)
            h[a, :, b] = block
            h[b, :, a] = block
    h = h.reshape(c * dim, c * dim)
    return h + lam * torch.eye(c * dim, dtype=h.dtype)


def resolve_damping(data: TaskData, damping: float | None) -> float:
    """lam: ``damping`` itself, or (None) |TRAIN| x the recipe's weight decay."""
    lam = len(data.dataset.train) * data.recipe.weight_decay if damping is None else damping
    if not lam > 0:
        raise BenchmarkError("soft_weighted: the recipe has no weight decay; give damping > 0 explicitly")
    return lam


# -- targets on VAL -------------------------------------------------------------------
def val_loss(theta: Tensor, val: ValSet) -> Tensor:
    """L_val: mean cross-entropy on VAL."""
    return F.cross_entropy(val.e @ theta.T, val.y)


def _gap(values: Tensor, side: Tensor) -> Tensor:
    if side.all() or not side.any():
        raise BenchmarkError("soft_weighted: a dp/eo gap needs VAL rows on both sides of the attribute")
    return (values[side].mean() - values[~side].mean()).abs()


def val_metric(theta: Tensor, val: ValSet, target: str) -> Tensor:
    """F_val, a differentiable gap >= 0:
    dp:     |mean_{a=a*} p(y*) - mean_{a!=a*} p(y*)|       (soft probabilities)
    eo:     the same over the VAL rows with y = y*
    robust: max_g CE_g - mean CE (CE_g the mean CE of VAL group g; the worst group is the
            one with the highest CE at theta, held fixed for the gradient)."""
    logits = val.e @ theta.T
    if target == "robust":
        ce = F.cross_entropy(logits, val.y, reduction="none")
        per_group = torch.stack([ce[val.g == k].mean() for k in val.g.unique()])
        return per_group.max() - ce.mean()
    keep = val.y == val.positive if target == "eo" else torch.ones_like(val.y, dtype=torch.bool)
    p = torch.softmax(logits[keep], dim=1)[:, val.positive]
    return _gap(p, val.a[keep] == val.attribute)


def value_and_grad(fn: Callable[[Tensor], Tensor], theta: Tensor) -> tuple[float, Tensor]:
    """fn(theta) and its gradient, flattened like g_i."""
    t = theta.detach().clone().requires_grad_(True)
    value = fn(t)
    (grad,) = torch.autograd.grad(value, t)
    return value.item(), grad.reshape(-1)


def influence(problem: HeadProblem, forget_idx: Tensor, y_train: Tensor, target: str, lam: float) -> Influence:
    """g_j on the forget rows, H over TRAIN with damping ``lam``, and u_j = g_j^T H^-1 grad L_val,
    f_j = g_j^T H^-1 grad F_val by Cholesky solves."""
    theta = problem.theta
    chol = torch.linalg.cholesky(head_hessian(theta, problem.train_e, lam))
    _, grad_loss = value_and_grad(lambda t: val_loss(t, problem.val), theta)
    f0, grad_metric = value_and_grad(lambda t: val_metric(t, problem.val, target), theta)
    solved = torch.cholesky_solve(torch.stack([grad_loss, grad_metric], dim=1), chol)
    grads = per_sample_grads(theta, problem.train_e[forget_idx], y_train[forget_idx].long())
    u, f = (grads @ solved).unbind(dim=1)
    return Influence(grads, chol, u, f, f0)


def soft_weights(f: Tensor, u: Tensor, f0: float) -> Tensor:
    """The minimum-norm w with f^T w = |F_0| and u^T w = 0:
    w = |F_0| (|u|^2 f - (f^T u) u) / (|f|^2 |u|^2 - (f^T u)^2).
    |w| grows as 1 / (1 - cos^2(f, u)): on a forget set drawn from one group, f and u are
    nearly parallel and weights far outside [-1, 1] are common (the wiki form's box
    constraints would bound them; this closed form does not)."""
    ff, uu, fu = f @ f, u @ u, f @ u
    det = ff * uu - fu**2
    if det <= 1e-12 * ff * uu:
        raise BenchmarkError("soft_weighted: the influences f and u are parallel; no weights meet both constraints")
    return abs(f0) * (uu * f - fu * u) / det


def newton_update(theta: Tensor, chol: Tensor, grads: Tensor, weights: Tensor) -> Tensor:
    """theta - H^-1 sum_j w_j g_j (H given by its Cholesky factor)."""
    step = torch.cholesky_solve((grads.T @ weights)[:, None], chol)
    return theta - step.reshape(theta.shape)


# -- public API -----------------------------------------------------------------------
def check_weighting(scheme: str, target: str, damping: float | None) -> None:
    """Refuse an unknown ``scheme`` (SCHEMES) or ``target`` (TARGETS), or a damping <= 0."""
    if scheme not in SCHEMES:
        raise BenchmarkError(f"soft_weighted: scheme must be one of {SCHEMES}, not {scheme!r}")
    if target not in TARGETS:
        raise BenchmarkError(f"soft_weighted: target must be one of {TARGETS}, not {target!r}")
    if damping is not None and not damping > 0:
        raise BenchmarkError(f"soft_weighted: damping must be > 0, not {damping!r}")


def forget_influence(
    model: nn.Module, data: TaskData, target: str, damping: float | None, batch_size: int
) -> tuple[HeadProblem, Influence]:
    """The head problem of ``model`` (the original) on its task and the influences of its
    forget rows on ``target``, with damping lam = ``resolve_damping(data, damping)``."""
    lam = resolve_damping(data, damping)
    problem = head_problem(model, data, batch_size)
    return problem, influence(problem, data.forget_idx, data.dataset.train.y, target, lam)


def weights_from(inf: Influence, scheme: str) -> Tensor:
    """w = -1 on every forget row (``hard``), or the closed-form soft weights (``soft``)."""
    return -torch.ones_like(inf.u) if scheme == "hard" else soft_weights(inf.f, inf.u, inf.f0)


def forget_weights(
    model: nn.Module,
    data: TaskData,
    scheme: str = "soft",
    target: str = "eo",
    damping: float | None = None,
    batch_size: int = 256,
) -> Tensor:
    """One weight per row of ``data.forget_idx`` (same order), float64 on the CPU, from
    ``model`` (the original). As per-sample loss weights: GA minimises sum_{j in F} w_j CE_j,
    FT minimises sum_{i in TRAIN} (1 + w_i) CE_i with w = 0 outside F; for the hard scheme
    (w = -1, no computation) these are plain GA and plain FT on R."""
    check_weighting(scheme, target, damping)
    if scheme == "hard":
        return -torch.ones(len(data.forget_idx), dtype=torch.float64)
    return weights_from(forget_influence(model, data, target, damping, batch_size)[1], scheme)


def influence_update(model: nn.Module, data: TaskData, scheme: str, target: str, damping: float | None, batch_size: int) -> Tensor:
    """theta_w = theta_0 - H^-1 sum_{j in F} w_j g_j: the head [W | b] of ``model`` (the
    original) after the Newton step with the weights of ``scheme`` (float64, on the CPU)."""
    problem, inf = forget_influence(model, data, target, damping, batch_size)
    return newton_update(problem.theta, inf.chol, inf.grads, weights_from(inf, scheme))


class SampleWeights:
    """Per-sample loss weights for other methods (GA, FT): ``scheme`` 'none' (off), 'hard' or
    'soft'; ``compute`` fills one weight per TRAIN row, w = 0 outside F."""

    def __init__(self, scheme: str, target: str) -> None:
        if scheme != "none":
            check_weighting(scheme, target, None)
        self.scheme, self.target = scheme, target
        self.by_row: Tensor | None = None

    @property
    def active(self) -> bool:
        return self.scheme != "none"

    def compute(self, original: nn.Module, data: TaskData) -> None:
        if not self.active:
            return
        self.by_row = torch.zeros(len(data.dataset.train), dtype=torch.float64)
        self.by_row[data.forget_idx] = forget_weights(original, data, self.scheme, self.target)

    def of(self, rows: Tensor) -> Tensor:
        """Weights of TRAIN rows ``rows``, on their device."""
        return self.by_row.to(rows.device)[rows]
