"""MIU: its Donsker-Varadhan estimator, the EMA-corrected gradient, and the method on tiny tasks."""

import math

import pytest
import torch
from torch.nn import functional as F

from benchmark.augment import to_unit_float
from benchmark.dataset import Batch
from benchmark.method import default_hparams
from benchmark.run.fitting import fit
from methods.miu import MINE, MIU, StatisticsNetwork, dv_bound, dv_terms, ema_surrogate, eval_features, random_groups
from tests.helpers import cell, tiny_runner

# a tiny task whose original model does encode g* (bold bars, 4 epochs), so there is something to forget
ENCODES_G_STAR = {
    "datasets": {
        "shapes": {"n_train": 600, "n_val": 40, "n_test": 80, "contrast": 0.6, "noise": 0.05, "spurious": 0.8}
    },
    "recipe": {"epochs": 4},
}
QUICK = {"epochs": 2, "forget_epochs": 1, "mine_warmup_steps": 2, "mine_steps": 1}


def tune(z: torch.Tensor, g: torch.Tensor, groups: int, steps: int, seed: int = 0) -> StatisticsNetwork:
    """A fresh statistics network, seeded, after ``steps`` full-batch Adam ascent steps on Î."""
    torch.manual_seed(seed)
    mine = MINE(z.shape[1], groups)
    optimizer = torch.optim.Adam(mine.parameters(), lr=1e-3)
    for _ in range(steps):
        optimizer.zero_grad()
        (-mine(z, g, random_groups(g, groups))).backward()
        optimizer.step()
    return mine.statistics


@torch.no_grad()
def estimate(t: StatisticsNetwork, z: torch.Tensor, g: torch.Tensor, draws: int = 50) -> float:
    """The DV bound averaged over draws of g~."""
    return torch.stack([dv_bound(t, z, g, random_groups(g, t.num_groups)) for _ in range(draws)]).mean().item()


def test_dv_estimate_is_near_zero_when_independent_and_near_log_g_when_decodable():
    groups, n, d = 4, 300, 8
    gen = torch.Generator().manual_seed(0)
    g = torch.randint(0, groups, (2 * n,), generator=gen)
    noise = torch.randn(2 * n, d, generator=gen)
    decodable = 3 * torch.randn(groups, d, generator=gen)[g] + 0.3 * noise
    # Evaluated on fresh rows: on its own 300 rows a 512-wide network memorises the groups.
    fit, held_out = slice(0, n), slice(n, None)
    independent = estimate(tune(noise[fit], g[fit], groups, 300), noise[held_out], g[held_out])
    dependent = estimate(tune(decodable[fit], g[fit], groups, 300), decodable[held_out], g[held_out])
    assert independent < 0.1
    assert 0.5 * math.log(groups) < dependent < 1.1 * math.log(groups)


def test_ema_surrogate_has_the_dv_value_and_the_ema_corrected_gradient():
    torch.manual_seed(0)
    t = StatisticsNetwork(3, 2, hidden=4)
    z, g = torch.randn(6, 3), torch.randint(0, 2, (6,))
    log_ema = torch.tensor(0.7)
    g_tilde = torch.randint_like(g, 2)
    joint, log_mean_exp = dv_terms(t, z, g, g_tilde)
    surrogate = ema_surrogate(joint, log_mean_exp, log_ema)
    got = torch.autograd.grad(surrogate, list(t.parameters()))

    by_hand = t(z, g).mean()
    m = t(z, g_tilde).exp().mean()
    assert surrogate.item() == pytest.approx((by_hand - m.log()).item(), abs=1e-6)  # the value: the DV bound
    # the gradient: ∇joint − ∇m / m̄
    want = torch.autograd.grad(by_hand - m / log_ema.exp(), list(t.parameters()), retain_graph=True)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)
    plain = torch.autograd.grad(by_hand - m.log(), list(t.parameters()))
    assert not all(torch.allclose(a, b) for a, b in zip(got, plain))

    mine = MINE(3, 2)
    mine.update(torch.tensor(math.log(2.0)))
    mine.update(torch.tensor(math.log(4.0)))
    assert mine.log_ema.exp().item() == pytest.approx(0.99 * 2.0 + 0.01 * 4.0)


def test_miu_lowers_the_mutual_information_on_the_forget_set(tmp_path):
    """Î on F: the DV bound over F's rows, with a fresh statistics network per model tuned on
    that model's TRAIN features (same seeds, same steps). Tuning on F alone would measure
    nothing: F holds one group, so with g~ uniform the optimum is log G whatever the features.
    The forget pass is what lowers it: without it the value stays near the original's."""
    runner = tiny_runner(tmp_path, ["miu"], **ENCODES_G_STAR)
    method, _ = runner.cells.unlearn(cell(runner, "miu"))
    without_forget_pass = tiny_runner(tmp_path, ["miu"], hparams={"miu": {"forget_pass": False}}, **ENCODES_G_STAR)
    retained_only, _ = without_forget_pass.cells.unlearn(cell(without_forget_pass, "miu"))
    train, forget = method.data.dataset.train, method.data.forget_idx
    x, g = to_unit_float(train.x), method.data.dataset.groups("train")

    def mi_on_forget(model: torch.nn.Module) -> float:
        z = eval_features(model, x)
        values = []
        for seed in range(2):
            t = tune(z, g, method.data.num_groups, 100, seed=seed)
            torch.manual_seed(seed)
            values.append(estimate(t, z[forget], g[forget]))
        return sum(values) / len(values)

    unlearned = mi_on_forget(method.model)
    assert unlearned < mi_on_forget(method.original) - 0.05
    assert unlearned < mi_on_forget(retained_only.model) - 0.05


def build(tmp_path, **hparams) -> tuple:
    runner = tiny_runner(tmp_path, ["miu"], hparams={"miu": hparams})
    return runner, runner.cells.build_method(cell(runner, "miu"))


def fit_recording_parts(runner, method: MIU, monkeypatch) -> list[tuple[int, str]]:
    """Fit ``method``; returns the (epoch, part) of every batch its training_step received."""
    seen = []
    step = MIU.training_step

    def recording(self, batch, batch_idx):
        seen.append((self.current_epoch, batch[0]))
        return step(self, batch, batch_idx)

    monkeypatch.setattr(MIU, "training_step", recording)
    fit(runner.spec, method, runner.cells.report, "t")
    return seen


def parameters(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def test_forget_pass_runs_only_in_the_forget_epochs_and_not_at_all_when_off(tmp_path, monkeypatch):
    seen = fit_recording_parts(*build(tmp_path, **QUICK), monkeypatch)
    assert {e for e, part in seen if part == "forget"} == {0}
    assert {e for e, part in seen if part == "retain"} == {0, 1}

    seen = fit_recording_parts(*build(tmp_path, **QUICK, forget_pass=False), monkeypatch)
    assert seen and all(part == "retain" for _, part in seen)


def test_calibration_off_drops_the_lambda_term_and_leaves_omega_o_untuned(tmp_path, monkeypatch):
    runner, method = build(tmp_path, **QUICK, lambda_mi=5.0)
    data, train = method.data, method.data.dataset.train
    rows = data.retain_idx[:32]
    batch = Batch(to_unit_float(train.x[rows]), train.y[rows], train.a[rows], data.dataset.groups("train")[rows], rows)
    with torch.no_grad():  # θ ≠ θ0, so that the calibration gap is not 0
        for p in method.model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    method.eval()  # the same features for both losses
    ce = F.cross_entropy(method.model(batch.x), batch.y).item()
    assert method.retain_loss(batch).item() > ce  # CE + λ·(Î_u − Î_o)²
    method.hparams.calibration = False
    assert method.retain_loss(batch).item() == pytest.approx(ce)

    omega_o, omega_u = parameters(method.mine_original), parameters(method.mine_unlearned)
    fit_recording_parts(runner, method, monkeypatch)
    assert all(torch.equal(a, b) for a, b in zip(parameters(method.mine_original), omega_o))
    assert not all(torch.equal(a, b) for a, b in zip(parameters(method.mine_unlearned), omega_u))


def test_reweight_is_on_by_default_and_recorded(tmp_path):
    assert default_hparams(MIU)["reweight"] is True
    _, method = build(tmp_path)
    assert method.hparams.reweight is True
    assert method.retain_batches.batch_sampler.weights is not None  # rows drawn in proportion to their weights
    assert method.forget_batches.batch_sampler.weights is None  # forget loaders stay uniform


def test_miu_runs_end_to_end_with_its_defaults(tmp_path):
    runner = tiny_runner(tmp_path, ["miu"])
    method, seconds = runner.cells.unlearn(cell(runner, "miu"))
    original = runner.artefacts.original(method.data.task, 0)
    assert seconds > 0 and method.hparams.epochs == MIU.dataset_overrides["shapes"]["epochs"]
    before = original.state_dict().values()
    assert any(not torch.equal(a.cpu(), b) for a, b in zip(method.model.state_dict().values(), before))
    assert all(torch.equal(a.cpu(), b) for a, b in zip(method.original.state_dict().values(), before))  # untouched
    assert all(torch.isfinite(p).all() for p in method.model.parameters())
    assert method.mine_unlearned.log_ema is not None and method.mine_original.log_ema is not None


def test_calibration_penalty_is_zero_at_the_original_in_the_trainers_mode(tmp_path):
    """At θ = θ0 (the method's start) the λ_MI term vanishes, in train mode as the Trainer runs
    it and after tuning both estimators: ω_o starts as a copy of ω_u, both read eval-mode
    features on a shared g̃. Reading θ's train-mode features against θ0's eval-mode ones, as
    before, left a penalty well above 0 at the same point."""
    runner, method = build(tmp_path, **QUICK)
    data, train = method.data, method.data.dataset.train
    rows = data.retain_idx[:64]
    batch = Batch(to_unit_float(train.x[rows]), train.y[rows], train.a[rows], data.dataset.groups("train")[rows], rows)
    trainer = runner.spec.runtime.trainer(max_epochs=0)
    trainer.strategy.connect(method)
    method.trainer = trainer
    optimizers, _ = method.configure_optimizers()
    trainer.strategy.optimizers = optimizers
    for _ in range(5):
        method.tune_estimators(batch)
    method.train()
    assert method.model.training and not any(m.training for m in method.original.modules() if list(m.parameters(recurse=False)))
    torch.manual_seed(0)
    assert method.calibration_gap(batch).abs().item() < 1e-6

    torch.manual_seed(0)
    g_tilde = random_groups(batch.g, data.num_groups)
    mixed = method.mine_unlearned(method.model.features(batch.x), batch.g, g_tilde) - dv_bound(
        method.mine_original.statistics, eval_features(method.original, batch.x), batch.g, g_tilde
    )
    assert mixed.abs().item() > 1e-3


@pytest.mark.parametrize(
    "task_id, expected",
    [
        # the authors' method/configs/config_files/<dataset>/resnet18/bias_0_<r>/miu.yaml
        ("celeba/g3-r0.1-skew1.0", {"lr": 0.001, "lambda_mi": 10.0, "mine_lr": 0.01, "batch_size": 256, "augment": True}),
        ("celeba/g3-r0.5-uniform", {"lr": 0.001, "lambda_mi": 10.0, "augment": False}),
        ("celeba/g3-r0.9-skew1.0", {"lr": 0.1, "lambda_mi": 1.0, "weight_decay": 1e-4}),
        ("waterbirds/g2-r0.9-skew1.0", {"lr": 0.1, "lambda_mi": 10.0, "batch_size": 32, "mine_lr": 0.001}),
        ("fairface/g23-r0.5-skew1.0", {"lr": 0.1, "weight_decay": 5e-5, "batch_size": 32, "forget_epochs": 7, "mine_lr": 0.001}),
        ("fairface/g23-r0.1-skew1.0", {"lr": 0.001, "batch_size": 256, "augment": False}),
        # no config of theirs: their fallback.yaml, with our Adult setting (lr, batch, schedule)
        ("adult/g2-r0.5-skew1.0", {"lr": 0.01, "batch_size": 256, "schedule": "cosine", "mine_lr": 0.01, "lambda_mi": 1.0}),
    ],
)
def test_the_authors_settings_per_dataset_and_forget_ratio(task_id, expected):
    from benchmark.method import resolve_hparams
    from benchmark.registry import load_tasks

    task = next(t for t in load_tasks(task_id.split("/")[0], {}) if t.id == task_id)
    chosen = {**default_hparams(MIU), **resolve_hparams(MIU, task, {}, "miu")}
    assert {k: chosen[k] for k in expected} == expected
