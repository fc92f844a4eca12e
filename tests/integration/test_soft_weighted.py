"""The soft-weighted method on the tiny task: it moves the head only, by the weighted Newton
step, through the runner. The maths it applies is tested in tests/integration/test_influence.py."""

import pytest
import torch

from benchmark import influence as inf
from benchmark.errors import BenchmarkError
from tests.helpers import cell, tiny_runner


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
            runs[scheme, target] = (runner, c, runner.cells.unlearn(c)[0])
        return runs[scheme, target]

    return run


# -- 1. the method changes the head only, by the Newton step ----------------------------
@pytest.mark.parametrize("scheme", ["hard", "soft"])
def test_only_the_head_moves_by_the_weighted_newton_step(unlearned, scheme):
    runner, c, method = unlearned(scheme)
    original = runner.artefacts.original(c.task, c.seed)
    before, after = original.state_dict(), method.model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in before.items() if not k.startswith("head."))
    assert not torch.equal(after["head.weight"], before["head.weight"])
    problem, influence = inf.forget_influence(method.original, method.data, "eo", None, 256)
    w = inf.weights_from(influence, scheme)
    h = inf.head_hessian(problem.theta, problem.train_e, inf.resolve_damping(method.data, None))
    step = -torch.linalg.solve(h, influence.grads.T @ w).reshape(problem.theta.shape)  # hard: +H^-1 sum g_j
    moved = inf.head_parameters(method.model.head) - problem.theta
    torch.testing.assert_close(moved, step, rtol=1e-4, atol=1e-5)
    if scheme == "soft":  # first-order change of F_val: -sum_j w_j f_j = -|F_0|; of L_val: 0
        assert (-(w @ influence.f)).item() == pytest.approx(-abs(influence.f0), abs=1e-6)
        assert abs((w @ influence.u).item()) < 1e-6


# -- 2. end to end --------------------------------------------------------------------
@pytest.mark.parametrize("target", inf.TARGETS)
@pytest.mark.parametrize("scheme", inf.SCHEMES)
def test_runs_through_the_runner(unlearned, scheme, target):
    method = unlearned(scheme, target)[2]
    assert not method.trains()
    assert torch.isfinite(method.model.head.weight).all() and torch.isfinite(method.model.head.bias).all()


def test_writes_a_result(base):
    runner = tiny_runner(base, ["soft_weighted"])
    outcome = runner.cells.execute(cell(runner, "soft_weighted"))
    assert outcome.status == "done", outcome.error
    assert outcome.record.hparams["scheme"] == "soft" and "worst_group_acc" in outcome.record.metrics


def test_rejects_unknown_choices(base):
    for bad in ({"scheme": "medium"}, {"target": "accuracy"}, {"damping": 0.0}):
        runner = tiny_runner(base, ["soft_weighted"], hparams={"soft_weighted": bad})
        with pytest.raises(BenchmarkError, match="soft_weighted"):
            runner.cells.unlearn(cell(runner, "soft_weighted"))
