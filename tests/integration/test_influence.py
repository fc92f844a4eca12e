"""The influence maths of the soft-weighted scheme (benchmark/influence.py): the closed-form
weights, the head's gradients and Hessian against autograd, the Newton update against
refitting, the first-order effect of the soft step on VAL, and the per-sample weights."""

import ast
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from benchmark import influence as inf
from benchmark.errors import BenchmarkError
from tests.helpers import cell, tiny_runner

f64 = torch.float64


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(original, task data) of the tiny task, trained once for the module."""
    runner = tiny_runner(tmp_path_factory.mktemp("influence"), ["soft_weighted"])
    c = cell(runner, "soft_weighted")
    return runner.artefacts.original(c.task, c.seed), runner.artefacts.task_data(c.task, c.seed)


# -- 1. the closed form ---------------------------------------------------------------
def test_soft_weights_meet_both_constraints_with_minimum_norm():
    g = torch.Generator().manual_seed(0)
    f, u = torch.randn(50, generator=g, dtype=f64), torch.randn(50, generator=g, dtype=f64)
    w = inf.soft_weights(f, u, -0.3)  # the sign of F_0 does not matter: f^T w = |F_0|
    assert (f @ w).item() == pytest.approx(0.3, abs=1e-6)
    assert abs((u @ w).item()) < 1e-6
    minimum_norm = torch.linalg.pinv(torch.stack([f, u])) @ torch.tensor([0.3, 0.0], dtype=f64)
    torch.testing.assert_close(w, minimum_norm)


def test_soft_weights_refuse_parallel_influences():
    f = torch.tensor([1.0, 2.0, 3.0], dtype=f64)
    with pytest.raises(BenchmarkError, match="parallel"):
        inf.soft_weights(f, -2 * f, 0.1)


def test_forget_weights_meet_both_constraints_on_the_tiny_task(tiny):
    original, data = tiny
    _, influence = inf.forget_influence(original, data, "eo", None, 256)
    w = inf.forget_weights(original, data, scheme="soft", target="eo")
    assert w.shape == data.forget_idx.shape and w.dtype == f64
    assert (influence.f @ w).item() == pytest.approx(abs(influence.f0), abs=1e-6)
    assert abs((influence.u @ w).item()) < 1e-6
    assert torch.equal(inf.forget_weights(original, data, scheme="hard"), -torch.ones_like(w))


# -- 2. the algebra on a small logistic regression -------------------------------------
def logistic_problem(n: int, classes: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """n points in 3 dimensions with a 1 appended, labels drawn from a softmax model (not separable)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g, dtype=f64)
    logits = x @ torch.randn(3, classes, generator=g, dtype=f64) * 1.5
    y = torch.multinomial(logits.softmax(1), 1, generator=g).squeeze(1)
    return torch.cat([x, torch.ones(n, 1, dtype=f64)], dim=1), y


def objective(theta, e, y, weights, lam):
    """sum_i s_i CE_i + lam / 2 |theta|^2."""
    return (weights * F.cross_entropy(e @ theta.T, y, reduction="none")).sum() + lam / 2 * theta.pow(2).sum()


def refit(e, y, weights, lam, classes: int = 2) -> torch.Tensor:
    """The exact minimiser, by Newton's method with autograd's gradient and Hessian."""
    theta = torch.zeros(classes, e.shape[1], dtype=f64)
    for _ in range(30):
        grad = torch.func.grad(objective)(theta, e, y, weights, lam).reshape(-1)
        if grad.norm() < 1e-10:
            return theta
        hess = torch.func.hessian(objective)(theta, e, y, weights, lam).reshape(grad.numel(), -1)
        theta = theta - torch.linalg.solve(hess, grad).reshape(theta.shape)
    raise AssertionError("Newton did not converge")


@pytest.mark.parametrize("classes", [2, 3])
def test_gradients_and_hessian_match_autograd(classes):
    e, y = logistic_problem(30, classes)
    theta = torch.randn(classes, 4, generator=torch.Generator().manual_seed(1), dtype=f64)
    hess = torch.func.hessian(lambda t: F.cross_entropy(e @ t.T, y, reduction="sum"))(theta)
    torch.testing.assert_close(inf.head_hessian(theta, e), hess.reshape(4 * classes, 4 * classes))
    torch.testing.assert_close(inf.head_hessian(theta, e, 0.5) - inf.head_hessian(theta, e), 0.5 * torch.eye(4 * classes, dtype=f64))
    per_row = torch.func.vmap(torch.func.grad(lambda t, ei, yi: F.cross_entropy(ei @ t.T, yi)), (None, 0, 0))
    torch.testing.assert_close(inf.per_sample_grads(theta, e, y), per_row(theta, e, y).reshape(30, -1))


def test_hard_removal_is_the_influence_function_of_a_refit():
    # 300 points: the error of a first-order removal falls as 1/n (about 3-50% for single
    # points at n = 30, under 4% here), so a sign or scale error cannot hide in the tolerance.
    n, lam = 300, 1.0
    e, y = logistic_problem(n, 2)
    ones = torch.ones(n, dtype=f64)
    theta = refit(e, y, ones, lam)
    chol = torch.linalg.cholesky(inf.head_hessian(theta, e, lam))
    grads = inf.per_sample_grads(theta, e, y)
    shift = torch.cholesky_solve(grads.T, chol).norm(dim=0)
    for j in shift.topk(3).indices.tolist():  # the most influential points: the hardest case
        predicted = inf.newton_update(theta, chol, grads[j : j + 1], -torch.ones(1, dtype=f64))
        exact = refit(e, y, ones.index_fill(0, torch.tensor([j]), 0.0), lam)
        assert (predicted - exact).norm() / (exact - theta).norm() < 5e-2
    # soft weights on several rows: the update predicts the refit with loss weights 1 + w
    rows = torch.arange(10)
    w = torch.linspace(-0.2, 0.2, 10, dtype=f64)
    predicted = inf.newton_update(theta, chol, grads[rows], w)
    exact = refit(e, y, ones.index_add(0, rows, w), lam)
    assert (predicted - exact).norm() / (exact - theta).norm() < 5e-2


# -- 3. the soft step on VAL -----------------------------------------------------------
@pytest.mark.parametrize("target", inf.TARGETS)
def test_soft_step_shrinks_the_gap_and_keeps_the_loss_to_first_order(tiny, target):
    """Central differences along the soft step on VAL: dF/dt = -|F_0|, dL_val/dt = 0."""
    problem, influence = inf.forget_influence(*tiny, target, None, 256)
    direction = inf.influence_update(*tiny, "soft", target, None, 256) - problem.theta
    t = 1e-5
    for fn, expected in ((lambda th: inf.val_metric(th, problem.val, target), -abs(influence.f0)), (lambda th: inf.val_loss(th, problem.val), 0.0)):
        slope = (fn(problem.theta + t * direction) - fn(problem.theta - t * direction)).item() / (2 * t)
        assert slope == pytest.approx(expected, abs=1e-6)


# -- 4. per-sample weights for other methods -------------------------------------------
def test_sample_weights_are_the_forget_weights_on_f_and_zero_elsewhere(tiny):
    original, data = tiny
    weights = inf.SampleWeights("soft", "eo")
    weights.compute(original, data)
    on_forget = weights.of(data.forget_idx)
    assert torch.equal(on_forget, inf.forget_weights(original, data, "soft", "eo"))
    assert weights.by_row.abs().sum() == on_forget.abs().sum()  # nothing outside F
    off = inf.SampleWeights("none", "anything")
    off.compute(original, data)
    assert not off.active and off.by_row is None


@pytest.mark.parametrize("choice", [("medium", "eo", None), ("soft", "accuracy", None), ("soft", "eo", 0.0)])
def test_unknown_choices_are_refused(choice):
    with pytest.raises(BenchmarkError, match="must be"):
        inf.check_weighting(*choice)


@pytest.mark.parametrize("plugin", ["soft_weighted", "finetune", "neggrad"])
def test_the_weighting_methods_take_the_maths_from_the_public_surface(plugin):
    source = Path(__file__).parents[2] / "methods" / f"{plugin}.py"
    modules = {n.module for n in ast.walk(ast.parse(source.read_text())) if isinstance(n, ast.ImportFrom)}
    assert "benchmark" in modules
    assert not [m for m in modules if m.startswith(("methods", "benchmark."))]
