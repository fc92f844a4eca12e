"""Soft-weighted unlearning: the closed-form weights, the influence algebra against autograd
and against refitting, and the method on the tiny task."""

import pytest
import torch
from torch.nn import functional as F

from benchmark.errors import BenchmarkError
from methods import soft_weighted as sw
from tests.helpers import cell, tiny_runner

f64 = torch.float64


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """One output folder for the module: the tiny original is trained once and cached."""
    return tmp_path_factory.mktemp("soft_weighted")


@pytest.fixture(scope="module")
def unlearned(base):
    """unlearned(scheme, target) -> (runner, cell, method), each run once for the module."""
    runs = {}

    def run(scheme: str, target: str = "eo"):
        if (scheme, target) not in runs:
            runner = tiny_runner(base, ["soft_weighted"], hparams={"soft_weighted": {"scheme": scheme, "target": target}})
            c = cell(runner, "soft_weighted")
            runs[scheme, target] = (runner, c, runner.unlearn(c)[0])
        return runs[scheme, target]

    return run


@pytest.fixture(scope="module")
def problem(unlearned) -> sw.HeadProblem:
    method = unlearned("hard")[2]
    return sw.head_problem(method.original, method.data, 256)


def tiny_influence(method, problem: sw.HeadProblem, target: str = "eo") -> sw.Influence:
    data = method.data
    return sw.influence(problem, data.forget_idx, data.dataset.train.y, target, sw.resolve_damping(data, None))


# -- 1. the closed form ---------------------------------------------------------------
def test_soft_weights_meet_both_constraints_with_minimum_norm():
    g = torch.Generator().manual_seed(0)
    f, u = torch.randn(50, generator=g, dtype=f64), torch.randn(50, generator=g, dtype=f64)
    w = sw.soft_weights(f, u, -0.3)  # the sign of F_0 does not matter: f^T w = |F_0|
    assert (f @ w).item() == pytest.approx(0.3, abs=1e-6)
    assert abs((u @ w).item()) < 1e-6
    minimum_norm = torch.linalg.pinv(torch.stack([f, u])) @ torch.tensor([0.3, 0.0], dtype=f64)
    torch.testing.assert_close(w, minimum_norm)


def test_soft_weights_refuse_parallel_influences():
    f = torch.tensor([1.0, 2.0, 3.0], dtype=f64)
    with pytest.raises(BenchmarkError, match="parallel"):
        sw.soft_weights(f, -2 * f, 0.1)


def test_forget_weights_meet_both_constraints_on_the_tiny_task(unlearned, problem):
    method = unlearned("hard")[2]
    data = method.data
    inf = tiny_influence(method, problem)
    w = sw.forget_weights(method.original, data, scheme="soft", target="eo")
    assert w.shape == data.forget_idx.shape and w.dtype == f64
    assert (inf.f @ w).item() == pytest.approx(abs(inf.f0), abs=1e-6)
    assert abs((inf.u @ w).item()) < 1e-6
    assert torch.equal(sw.forget_weights(method.original, data, scheme="hard"), -torch.ones_like(w))


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
    torch.testing.assert_close(sw.head_hessian(theta, e), hess.reshape(4 * classes, 4 * classes))
    torch.testing.assert_close(sw.head_hessian(theta, e, 0.5) - sw.head_hessian(theta, e), 0.5 * torch.eye(4 * classes, dtype=f64))
    per_row = torch.func.vmap(torch.func.grad(lambda t, ei, yi: F.cross_entropy(ei @ t.T, yi)), (None, 0, 0))
    torch.testing.assert_close(sw.per_sample_grads(theta, e, y), per_row(theta, e, y).reshape(30, -1))


def test_hard_removal_is_the_influence_function_of_a_refit():
    # 300 points: the error of a first-order removal falls as 1/n (about 3-50% for single
    # points at n = 30, under 4% here), so a sign or scale error cannot hide in the tolerance.
    n, lam = 300, 1.0
    e, y = logistic_problem(n, 2)
    ones = torch.ones(n, dtype=f64)
    theta = refit(e, y, ones, lam)
    chol = torch.linalg.cholesky(sw.head_hessian(theta, e, lam))
    grads = sw.per_sample_grads(theta, e, y)
    shift = torch.cholesky_solve(grads.T, chol).norm(dim=0)
    for j in shift.topk(3).indices.tolist():  # the most influential points: the hardest case
        predicted = sw.newton_update(theta, chol, grads[j : j + 1], -torch.ones(1, dtype=f64))
        exact = refit(e, y, ones.index_fill(0, torch.tensor([j]), 0.0), lam)
        assert (predicted - exact).norm() / (exact - theta).norm() < 5e-2
    # soft weights on several rows: the update predicts the refit with loss weights 1 + w
    rows = torch.arange(10)
    w = torch.linspace(-0.2, 0.2, 10, dtype=f64)
    predicted = sw.newton_update(theta, chol, grads[rows], w)
    exact = refit(e, y, ones.index_add(0, rows, w), lam)
    assert (predicted - exact).norm() / (exact - theta).norm() < 5e-2


# -- 3. the method changes the head only, by the Newton step ----------------------------
@pytest.mark.parametrize("scheme", ["hard", "soft"])
def test_only_the_head_moves_by_the_weighted_newton_step(unlearned, problem, scheme):
    runner, c, method = unlearned(scheme)
    original = runner.original(c.task, c.seed)
    before, after = original.state_dict(), method.model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in before.items() if not k.startswith("head."))
    assert not torch.equal(after["head.weight"], before["head.weight"])
    inf = tiny_influence(method, problem)
    w = sw.weights_from(inf, scheme)
    h = sw.head_hessian(problem.theta, problem.train_e, sw.resolve_damping(method.data, None))
    step = -torch.linalg.solve(h, inf.grads.T @ w).reshape(problem.theta.shape)  # hard: +H^-1 sum g_j
    moved = sw.head_parameters(method.model.head) - problem.theta
    torch.testing.assert_close(moved, step, rtol=1e-4, atol=1e-5)
    if scheme == "soft":  # first-order change of F_val: -sum_j w_j f_j = -|F_0|; of L_val: 0
        assert (-(w @ inf.f)).item() == pytest.approx(-abs(inf.f0), abs=1e-6)
        assert abs((w @ inf.u).item()) < 1e-6


@pytest.mark.parametrize("target", sw.TARGETS)
def test_soft_step_shrinks_the_gap_and_keeps_the_loss_to_first_order(unlearned, problem, target):
    """Central differences along the soft step on VAL: dF/dt = -|F_0|, dL_val/dt = 0."""
    inf = tiny_influence(unlearned("hard")[2], problem, target)
    direction = sw.newton_update(problem.theta, inf.chol, inf.grads, sw.weights_from(inf, "soft")) - problem.theta
    t = 1e-5
    for fn, expected in ((lambda th: sw.val_metric(th, problem.val, target), -abs(inf.f0)), (lambda th: sw.val_loss(th, problem.val), 0.0)):
        slope = (fn(problem.theta + t * direction) - fn(problem.theta - t * direction)).item() / (2 * t)
        assert slope == pytest.approx(expected, abs=1e-6)


# -- 4. end to end --------------------------------------------------------------------
@pytest.mark.parametrize("target", sw.TARGETS)
@pytest.mark.parametrize("scheme", sw.SCHEMES)
def test_runs_through_the_runner(unlearned, scheme, target):
    method = unlearned(scheme, target)[2]
    assert not method.trains()
    assert torch.isfinite(method.model.head.weight).all() and torch.isfinite(method.model.head.bias).all()


def test_writes_a_result(base):
    runner = tiny_runner(base, ["soft_weighted"])
    outcome = runner.execute(cell(runner, "soft_weighted"))
    assert outcome.status == "done", outcome.error
    assert outcome.record["hparams"]["scheme"] == "soft" and "worst_group_acc" in outcome.record["metrics"]


def test_rejects_unknown_choices(base):
    for bad in ({"scheme": "medium"}, {"target": "accuracy"}, {"damping": 0.0}):
        runner = tiny_runner(base, ["soft_weighted"], hparams={"soft_weighted": bad})
        with pytest.raises(BenchmarkError, match="soft_weighted"):
            runner.unlearn(cell(runner, "soft_weighted"))
