"""Robust accuracy: the attacks, their named budgets, the budget resolution and the intervals."""

import dataclasses
import random

import numpy as np
import pytest
import torch
import torchattacks
from scipy.stats import beta
from torch import nn

from benchmark.metrics import scorecard
from benchmark.errors import BenchmarkError
from benchmark.report.leaderboard import Entry, Leaderboard, Ranking, Stat
from benchmark.report.render import to_markdown
from benchmark.metrics.robustness import (
    AttackSettings,
    autoattack_names,
    budget_met,
    build_attacks,
    clopper_pearson,
    describe,
    preserved_rng,
    robust_correct,
    robust_evaluation,
    robust_metrics,
    summarise,
)
from benchmark.inference import Forward
from benchmark.run.runtime import Runtime
from benchmark.run.spec import build_spec
from tasks.shapes import ShapesSource

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one thread, no spinning against the others
CPU = torch.device("cpu")
SHAPES = "shapes/g2-r0.9-skew1.0"


class Linear(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)
        with torch.no_grad():
            self.fc.weight.copy_(torch.tensor([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0]]))
            self.fc.bias.zero_()

    def forward(self, x):
        return self.fc(x.flatten(1))


def linear_data(n=64):
    x = torch.rand(n, 1, 2, 2)
    y = (x.flatten(1)[:, 2:].sum(1) > x.flatten(1)[:, :2].sum(1)).long()
    return x, y, 2 * y + torch.arange(n) % 2


def test_robust_accuracy_is_zero_on_a_linear_model_once_eps_is_large():
    x, y, g = linear_data()
    settings = AttackSettings(rows=64, eps=1.0, pgd_alpha=0.25, pgd_steps=10, square_queries=50)
    m = robust_metrics(Linear(), x, y, g, 2, settings, CPU)
    assert m["pgd_acc"] == 0.0 and m["autoattack_reduced_acc"] == 0.0 and m["pgd_worst_group_acc"] == 0.0


def test_robust_accuracy_never_exceeds_clean_and_restores_the_rng():
    torch.manual_seed(3)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    x, y, g = linear_data()
    clean = 100.0 * (model(x).argmax(1) == y).float().mean().item()
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    m = robust_metrics(model, x, y, g, 2, AttackSettings(eps=0.05, square_queries=20), CPU)
    assert torch.equal(torch.rand(3), expected)  # the attacks reseed; the state is restored
    assert m["pgd_acc"] <= clean and m["autoattack_reduced_acc"] <= clean
    assert m["pgd_worst_group_acc"] <= m["pgd_acc"]


def test_preserved_rng_restores_numpy_and_random():
    np.random.seed(1)
    random.seed(1)
    a = (np.random.rand(), random.random())
    np.random.seed(1)
    random.seed(1)
    with preserved_rng():
        np.random.seed(99)
        random.seed(99)
    assert (np.random.rand(), random.random()) == a


def test_attack_budget_is_the_datasets_unless_the_settings_name_one():
    shapes = build_spec({"runtime": {"accelerator": "cpu"}}, tasks=[SHAPES])
    assert shapes.metrics_for(shapes.tasks[0]).attacks.eps == pytest.approx(2 / 255)
    assert shapes.metrics_for(shapes.tasks[0]).attacks.pgd_alpha == pytest.approx(0.5 / 255)  # eps / 4
    adult = build_spec({}, tasks=["adult/g2-r0.5-skew1.0"])
    assert adult.metrics_for(adult.tasks[0]).attacks.eps == pytest.approx(8 / 255)  # REFERENCE §5
    chosen = build_spec({"metrics": {"attacks": {"eps": 0.1, "pgd_alpha": 0.01}}, "runtime": {"accelerator": "cpu"}}, tasks=[SHAPES])
    reduced = dict(rows=64, aa_steps=10, square_queries=25)
    assert chosen.metrics_for(chosen.tasks[0]).attacks == AttackSettings(eps=0.1, pgd_alpha=0.01, **reduced)
    assert AttackSettings().resolved() == AttackSettings(eps=8 / 255, pgd_alpha=2 / 255, **reduced)  # outside a task


# -- the budget: resolved from the run, named from the numbers --------------------------


@dataclasses.dataclass(frozen=True)
class CudaRuntime(Runtime):
    """A runtime that believes it runs on a GPU (the resolution only asks ``uses_cuda``)."""

    @property
    def uses_cuda(self) -> bool:
        return True


def attacks_for(spec):
    return spec.metrics_for(spec.tasks[0]).attacks


def numbers(s: AttackSettings) -> tuple:
    return s.rows, s.aa_steps, s.square_queries, s.pgd_steps


def test_the_default_cpu_run_keeps_the_reduced_budget():
    s = attacks_for(build_spec({"runtime": {"accelerator": "cpu"}}, tasks=[SHAPES]))
    assert numbers(s) == (64, 10, 25, 10) and budget_met(s, 64, 2000) == "reduced"
    if not torch.cuda.is_available():  # the plain default, on this machine
        assert attacks_for(build_spec({}, tasks=[SHAPES])) == s


def test_the_paper_preset_and_a_gpu_run_the_standard_budget():
    paper = attacks_for(build_spec({"preset": "paper", "runtime": {"accelerator": "cpu"}}, tasks=[SHAPES]))
    gpu = attacks_for(dataclasses.replace(build_spec({}, tasks=[SHAPES]), runtime=CudaRuntime()))
    for s in (paper, gpu):
        assert numbers(s) == (1000, 100, 5000, 10)
        assert budget_met(s, 1000, 2000) == "standard"
        assert budget_met(s, 200, 200) == "standard"  # all of a small TEST
        assert budget_met(s, 200, None) == "reduced"  # rows of an unknown split: need 1,000


def test_lowered_numbers_are_reduced_under_auto_and_refused_under_standard():
    spec = dataclasses.replace(build_spec({"metrics": {"attacks": {"aa_steps": 10}}}, tasks=[SHAPES]), runtime=CudaRuntime())
    assert numbers(attacks_for(spec)) == (1000, 10, 5000, 10) and budget_met(attacks_for(spec), 1000, 2000) == "reduced"
    for lowered in ({"aa_steps": 10}, {"square_queries": 4999}, {"rows": 64}):
        with pytest.raises(BenchmarkError, match="standard"):
            build_spec({"metrics": {"attacks": {"budget": "standard", **lowered}}}, tasks=[SHAPES])
    with pytest.raises(BenchmarkError, match="auto, standard or reduced"):
        AttackSettings(budget="full")
    # the numbers name it, not the label: 'reduced' with the standard's numbers meets standard
    assert budget_met(AttackSettings(budget="reduced", rows=1000, aa_steps=100, square_queries=5000), 1000) == "standard"
    # an explicit standard on a CPU run is standard
    s = attacks_for(build_spec({"metrics": {"attacks": {"budget": "standard"}}, "runtime": {"accelerator": "cpu"}}, tasks=[SHAPES]))
    assert numbers(s) == (1000, 100, 5000, 10)


def test_the_result_file_records_the_budget_met_on_a_small_test_split(tmp_path):
    dataset = ShapesSource(n_train=8, n_val=8, n_test=40).load(tmp_path)
    standard = scorecard.MetricSettings(attacks=AttackSettings(budget="standard").resolved(2 / 255))
    record = scorecard.record(standard, dataset, layers=0)["attacks"]
    assert record["budget"] == "standard" and record["rows"] == 40 == record["test_rows"]  # all of TEST
    assert record["rows_setting"] == 1000 and record["budget_setting"] == "standard"
    assert (record["aa_steps"], record["square_queries"], record["pgd_steps"]) == (100, 5000, 10)
    assert (record["eps"], record["pgd_alpha"]) == (pytest.approx(2 / 255), pytest.approx(0.5 / 255))
    assert record["autoattack"] == ["APGD-CE", "FAB-T", "Square"] and list(record["left_out"]) == ["APGD-T"]
    assert record["targets"] == 1 and record["library"] == f"torchattacks {torchattacks.__version__}"
    reduced = scorecard.record(scorecard.MetricSettings(attacks=AttackSettings().resolved()), dataset, 0)["attacks"]
    assert reduced["budget"] == "reduced" and reduced["rows"] == 40 and reduced["rows_setting"] == 64
    assert reduced["autoattack"] == ["APGD-CE", "Square"] and list(reduced["left_out"]) == ["APGD-T", "FAB-T"]


def test_attacks_measured_on_a_dataset_carry_the_budget_and_intervals(tmp_path):
    dataset = ShapesSource(n_train=8, n_val=8, n_test=16).load(tmp_path)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 24 * 24, 2))
    settings = scorecard.MetricSettings(attacks=AttackSettings(aa_steps=2, square_queries=5, pgd_steps=2).resolved())
    metrics, details = scorecard.attack(model, dataset, settings, Forward())
    names = {"pgd_acc", "pgd_worst_group_acc", "autoattack_reduced_acc", "autoattack_reduced_worst_group_acc"}
    assert set(metrics) == set(details["intervals"]) == set(details["counts"]) == names
    assert details["counts"]["pgd_acc"][1] == 16 and details["counts"]["pgd_worst_group_acc"][1] == 4


# -- the ensembles ---------------------------------------------------------------------


def binary_linear_rows(distances):
    """A binary linear model and rows at the given signed L∞ distances from its boundary
    (inside [0.3, 0.7], so a perturbation of up to 0.1 never meets the [0, 1] box)."""
    w = torch.tensor([1.0, -1.0, 0.5, 0.5])
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    with torch.no_grad():
        model[1].weight.copy_(torch.stack([torch.zeros(4), w]))
        model[1].bias.copy_(torch.tensor([0.0, -0.5]))  # logit gap w.x - 0.5: zero at x = 0.5
    d = torch.tensor(distances)
    x = (0.5 + d[:, None] * w.sign()).view(-1, 1, 2, 2)  # the gap is d * ||w||_1: L∞ distance |d|
    return model.eval(), x, (d > 0).long()


def test_fab_t_runs_on_two_classes_and_finds_the_exact_boundary():
    distances = [0.05, -0.08, 0.09, -0.04, 0.12, -0.15, 0.2, -0.11]
    model, x, y = binary_linear_rows(distances)
    fab = torchattacks.FAB(model, norm="Linf", eps=0.1, steps=100, n_classes=2, multi_targeted=True, n_restarts=1)
    with preserved_rng():
        adv = fab(x, y)
    assert (adv - x).abs().max() <= 0.1 + 1e-6
    assert ((model(adv).argmax(1) == y).tolist()) == [abs(d) > 0.1 for d in distances]


def test_apgd_t_cannot_run_below_four_classes():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    with preserved_rng(), pytest.raises(IndexError):  # the targeted DLR loss reads the 4th largest logit
        torchattacks.APGDT(model, eps=0.1, steps=2, n_classes=3)(torch.rand(2, 1, 2, 2), torch.tensor([0, 1]))
    assert autoattack_names(3, "standard") == autoattack_names(2, "standard") == ["APGD-CE", "FAB-T", "Square"]


def ensemble(model, num_classes, settings, budget=None):
    return [(type(a).__name__, a.steps if hasattr(a, "steps") else a.n_queries, getattr(a, "n_target_classes", None))
            for a in build_attacks(model, num_classes, settings.resolved(), budget)["autoattack"].attacks]


def test_the_standard_ensemble_is_the_official_one():
    model, standard = nn.Linear(4, 12), AttackSettings(budget="standard")
    assert ensemble(model, 12, standard) == [("APGD", 100, None), ("APGDT", 100, 9), ("FAB", 100, 9), ("Square", 5000, None)]
    assert ensemble(model, 4, standard) == [("APGD", 100, None), ("APGDT", 100, 3), ("FAB", 100, 3), ("Square", 5000, None)]
    assert ensemble(model, 2, standard) == [("APGD", 100, None), ("FAB", 100, 1), ("Square", 5000, None)]
    # the reduced budget: the same numbers for every class count, no FAB-T below 4 classes (CPU cost)
    assert ensemble(model, 4, AttackSettings()) == [("APGD", 10, None), ("APGDT", 10, 3), ("FAB", 10, 3), ("Square", 25, None)]
    assert ensemble(model, 2, AttackSettings()) == [("APGD", 10, None), ("Square", 25, None)]
    # the ensemble follows the budget met: standard numbers on a few rows of an unknown split are reduced
    assert ensemble(model, 2, AttackSettings(budget="standard"), budget="reduced") == [("APGD", 100, None), ("Square", 5000, None)]


def test_the_standard_ensemble_runs_on_two_classes_and_breaks_exactly_the_rows_within_eps():
    distances = [0.05, -0.08, 0.09, -0.04, 0.12, -0.15, 0.2, -0.11]
    model, x, y = binary_linear_rows(distances)
    settings = AttackSettings(budget="standard", eps=0.1)
    metrics, details = robust_evaluation(model, x, y, torch.arange(8) % 2, 2, settings, CPU, test_rows=8)
    assert metrics["autoattack_standard_acc"] == metrics["pgd_acc"] == 50.0  # the 4 rows farther than eps
    assert details["counts"]["autoattack_standard_acc"] == [4, 8]


@pytest.mark.slow
@pytest.mark.parametrize("num_classes", [4, 10])
def test_the_standard_ensemble_runs_on_a_tiny_model(num_classes):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, num_classes)).eval()
    x = torch.rand(6, 3, 2, 2)
    y = model(x).argmax(1)
    metrics, details = robust_evaluation(model, x, y, torch.arange(6) % 2, num_classes, AttackSettings(budget="standard", eps=0.05), CPU, 6)
    assert set(metrics) == {"pgd_acc", "pgd_worst_group_acc", "autoattack_standard_acc", "autoattack_standard_worst_group_acc"}
    assert 0.0 <= metrics["autoattack_standard_acc"] <= 100.0 and details["counts"]["autoattack_standard_acc"][1] == 6


# -- names and intervals ----------------------------------------------------------------


def test_clopper_pearson_against_the_hand_computed_interval():
    lo, hi = clopper_pearson(0, 64)
    assert lo == 0.0 and hi == pytest.approx(100 * (1 - 0.025 ** (1 / 64)), abs=1e-9) and round(hi, 1) == 5.6
    assert clopper_pearson(64, 64) == pytest.approx([100 * 0.025 ** (1 / 64), 100.0])
    k, n = 13, 40  # the exact interval is the beta quantiles
    assert clopper_pearson(k, n) == pytest.approx([100 * beta.ppf(0.025, k, n - k + 1), 100 * beta.ppf(0.975, k + 1, n - k)])


def test_metric_keys_carry_the_budget_and_each_accuracy_its_interval():
    correct = {"pgd": torch.tensor([1, 1, 0, 0, 1, 0, 0, 0]).bool(), "autoattack": torch.zeros(8).bool()}
    groups = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    for budget in ("standard", "reduced"):
        metrics, details = summarise(correct, groups, budget)
        assert set(metrics) == {"pgd_acc", "pgd_worst_group_acc", f"autoattack_{budget}_acc", f"autoattack_{budget}_worst_group_acc"}
        assert not any(k.startswith("autoattack_acc") for k in metrics)
    assert (metrics["pgd_acc"], metrics["pgd_worst_group_acc"]) == (37.5, 25.0)
    assert details["counts"] == {"pgd_acc": [3, 8], "pgd_worst_group_acc": [1, 4],
                                 "autoattack_reduced_acc": [0, 8], "autoattack_reduced_worst_group_acc": [0, 4]}
    assert details["intervals"]["pgd_worst_group_acc"] == clopper_pearson(1, 4)
    assert details["intervals"]["autoattack_reduced_acc"] == pytest.approx([0.0, 100 * (1 - 0.025 ** (1 / 8))])


def test_describe_records_what_ran():
    d = describe(AttackSettings(), 10, rows=64, test_rows=2000)
    assert d["budget"] == "reduced" and d["autoattack"] == ["APGD-CE", "APGD-T", "FAB-T", "Square"] and d["left_out"] == {}
    assert (d["eps"], d["pgd_alpha"], d["pgd_steps"], d["aa_steps"], d["square_queries"], d["rows"]) == (8 / 255, 2 / 255, 10, 10, 25, 64)
    assert d["targets"] == 9 and d["library"].startswith("torchattacks ")


def board_with(metric: str) -> Leaderboard:
    task = {"id": "t", "dataset": "d", "forget_group": 0, "forget_size": 1, "skew": 1.0}
    entry = Entry("m", "t", {metric: Stat(12.5, 0.0, 1, (12.5,))}, {}, 1, seeds=[0])
    return Leaderboard(2, Ranking("avg_gap", "asc", [], ""), [task], [entry])


def test_the_leaderboard_column_names_the_budget_the_entries_have():
    reduced, standard = to_markdown(board_with("autoattack_reduced_acc")), to_markdown(board_with("autoattack_standard_acc"))
    assert "AutoAttack (reduced) acc" in reduced and "| AutoAttack acc" not in reduced and "12.5" in reduced
    assert "| AutoAttack acc" in standard and "(reduced)" not in standard and "12.5" in standard


class Counting(nn.Module):
    """A small MLP that counts its forward passes."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.net, self.calls = nn.Sequential(nn.Flatten(), nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, num_classes)), 0

    def forward(self, x):
        self.calls += 1
        return self.net(x)


@pytest.mark.parametrize("num_classes, eps", [(2, 1.0), (4, 1.0), (4, 0.02)])
def test_apgd_runs_stop_once_every_row_is_fooled_with_the_same_counts(monkeypatch, num_classes, eps):
    """The standard budget on two batches: stopping changes no row's verdict, neither AutoAttack's
    nor the next batch's PGD (whose random start follows the RNG the ensemble leaves); where
    every row falls (eps 1.0) it saves most forward passes, where few do (0.02) none."""
    x = torch.rand(24, 1, 2, 2)
    settings = AttackSettings(budget="standard", eps=eps, batch_size=12).resolved()
    verdicts, calls = {}, {}
    for stopping in (True, False):
        if not stopping:
            monkeypatch.setattr("benchmark.metrics.robustness._stops_when_all_fooled", lambda attack: attack)
        model = Counting(num_classes).eval()
        y = model(x).argmax(1)  # every row right when clean
        model.calls = 0
        verdicts[stopping] = robust_correct(model, x, y, num_classes, settings, CPU, budget="standard")
        calls[stopping] = model.calls
    assert all(torch.equal(verdicts[True][k], verdicts[False][k]) for k in ("pgd", "autoattack"))
    if eps == 1.0:
        assert not verdicts[True]["autoattack"].any() and calls[True] < calls[False] / 5
    else:
        assert verdicts[True]["autoattack"].any() and calls[True] == calls[False]


def test_the_attacks_leave_a_batchnorm_model_as_they_found_it():
    """The ensemble runs on a wrapper of the model: torchattacks puts each attack's model back in
    the mode it found, which must be the model's eval mode, or BatchNorm would update its
    statistics (and the final checks would run in train mode)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2)).eval()
    x, y, _ = linear_data(16)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    robust_correct(model, x, y, 2, AttackSettings(eps=0.05, square_queries=10).resolved(), CPU)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not any(m.training for m in model.modules())
