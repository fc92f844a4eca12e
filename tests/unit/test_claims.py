"""The claims checker on leaderboards scored from synthetic result cells with effects known by
hand: each claim supported, contradicted and inconclusive; the interval and projection
arithmetic; 'not measured'; the command."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from benchmark.report import claims as C
from benchmark.report import statistics
from benchmark.report.claims import CONTRADICTED, INCONCLUSIVE, NOT_MEASURED, SUPPORTED
from benchmark.report.leaderboard import Leaderboard
from benchmark.report.scoring import score

SEEDS = (0, 1, 2)
TASKS = {
    skew: {"id": f"toy/g2-n10-{name}", "dataset": "toy", "forget_group": 2, "forget_size": 10, "skew": skew}
    for skew, name in (("uniform", "uniform"), (0.5, "skew0.5"), (1.0, "skew1.0"))
}
BASE = {
    "retain_acc": 90.0, "forget_acc": 50.0, "test_acc": 80.0, "mia_forget_nonmember": 30.0, "equalized_odds": 5.0,
    "forget_group_test_acc": 40.0, "worst_group_acc": 60.0, "pgd_acc": 50.0, "fairness_gap": 0.5, "unlearn_seconds": 1.0,
}
GOLDS = {"retrain", "retrain+rw"}


def cells(spec: dict[tuple[str, object], dict[str, list[float]]], seeds=SEEDS) -> list[dict]:
    """Result cells: (method, skew) -> {metric: one value per seed}; every other metric BASE's.
    miu, retrain+rw and +rw variants are scored against retrain+rw, the rest against retrain."""
    out = []
    for (method, skew), metrics in spec.items():
        gold = "retrain+rw" if method == "miu" or method.endswith("+rw") else "retrain"
        for i, seed in enumerate(seeds):
            values = {**BASE, **{k: v[i] for k, v in metrics.items()}}
            out.append({"method": method, "seed": seed, "task": TASKS[skew], "is_gold": method in GOLDS,
                        "gold_method": gold, "metrics": values})
    return out


def board(spec, seeds=SEEDS) -> Leaderboard:
    return Leaderboard.from_json(score(cells(spec, seeds)).to_json())  # as read from the file


def one(findings: list[C.Finding]) -> C.Finding:
    assert len(findings) == 1, findings
    return findings[0]


def flat(value: float) -> list[float]:
    return [value] * len(SEEDS)


# -- the statistics -------------------------------------------------------------------
def test_t_interval_by_hand():
    assert C.t_interval is statistics.t_interval  # one t-interval, the leaderboard's
    iv = C.t_interval([10.0, 12.0, 14.0], [0, 1, 2])
    # mean 12, sd 2, t_{0.975, 2} = 4.3027: 12 ± 4.3027 · 2 / √3 = 12 ± 4.968
    assert (iv.mean, iv.sd, iv.n, iv.seeds) == (12.0, 2.0, 3, (0, 1, 2))
    assert iv.low == pytest.approx(7.0317, abs=1e-4) and iv.high == pytest.approx(16.9683, abs=1e-4)
    assert iv.side == 1 and C.sign_verdict(iv) == SUPPORTED
    assert C.fmt_iv(iv) == "12.00 [7.03, 16.97]"


def test_one_seed_has_no_interval():
    iv = C.t_interval([3.0], [0])
    assert iv.mean == 3.0 and math.isnan(iv.low) and iv.side == 0
    assert "one seed" in C.fmt_iv(iv) and "one seed" in C.projection([("", iv)])


def test_seeds_needed_projection():
    # d = 1, −1, 3: mean 1, sd 2; t_{0.975, n−1} · 2/√n < 1 first at n = 18 (t_17 = 2.110: 0.497; n = 17: 0.514)
    iv = C.t_interval([1.0, -1.0, 3.0])
    assert C.sign_verdict(iv) == INCONCLUSIVE
    assert C.seeds_needed(iv.mean, iv.sd) == 18
    assert C.seeds_needed(-1.0, 2.0) == 18  # the sign does not matter
    assert C.seeds_needed(0.0, 2.0) is None and C.seeds_needed(5.0, 0.0) == 2
    assert C.projection([("", iv)]).startswith("18 seeds")
    assert C.projection([("", C.t_interval([1.0, -1.0]))]).startswith("∞/none")


def test_verdict_rules():
    up, down, flat_ = C.t_interval([10.0, 12, 14]), C.t_interval([-10.0, -12, -14]), C.t_interval([1.0, -1, 3])
    assert C.all_above_verdict([up, up]) == SUPPORTED
    assert C.all_above_verdict([up, flat_]) == INCONCLUSIVE
    assert C.all_above_verdict([flat_, down]) == CONTRADICTED
    assert C.miu3_verdict([up, up], flat_) == SUPPORTED
    assert C.miu3_verdict([up, up], down) == CONTRADICTED
    assert C.miu3_verdict([up, down], up) == CONTRADICTED
    assert C.miu3_verdict([up, flat_], up) == INCONCLUSIVE


# -- MIU-1 and MIU-2 ------------------------------------------------------------------
def miu1_spec(skew1: list[float]) -> dict:
    return {("retrain", "uniform"): {"forget_group_test_acc": [70, 72, 74]},
            ("retrain", 0.5): {"forget_group_test_acc": [65, 66, 67]},
            ("retrain", 1.0): {"forget_group_test_acc": skew1}}


@pytest.mark.parametrize(
    "skew1, verdict",
    [([60, 60, 60], SUPPORTED), ([80, 80, 80], CONTRADICTED), ([69, 73, 71], INCONCLUSIVE)],  # d = 10,12,14 / −10,−8,−6 / 1,−1,3
)
def test_miu1(skew1, verdict):
    f = one(C.miu1(board(miu1_spec(skew1))))
    assert f.verdict == verdict and f.scope == "toy, g* = 2, forget 10" and f.seeds == SEEDS
    assert "uniform 72.0 ± 2.0 → skew 0.5 66.0 ± 1.0 → skew 1.0" in f.numbers
    if verdict == SUPPORTED:
        assert "d (uniform − skew 1.0) = 12.00 [7.03, 16.97]" in f.numbers and f.needed == ""
    if verdict == INCONCLUSIVE:
        assert f.needed.startswith("18 seeds")


def test_miu1_pairs_by_seed_and_skips_undefined_seeds():
    spec = miu1_spec([60, math.nan, 60])  # seed 1 undefined at skew 1.0: d = 10, 14
    f = one(C.miu1(board(spec)))
    assert f.seeds == (0, 2) and "12.00 [" in f.numbers


def test_miu1_reports_the_skews_it_has():
    spec = miu1_spec([60, 60, 60])
    del spec[("retrain", 0.5)]
    f = one(C.miu1(board(spec | {("finetune", 0.5): {}})))
    assert f.verdict == SUPPORTED and "uniform 72.0 ± 2.0 → skew 1.0 60.0 ± 0.0;" in f.numbers


def test_miu1_needs_a_uniform_and_a_skew1_task():
    f = one(C.miu1(board({("retrain", 1.0): {}})))
    assert f.verdict == NOT_MEASURED and "uniform" in f.reason


@pytest.mark.parametrize(
    "rw, verdict", [([30, 37, 44], SUPPORTED), ([10, 13, 16], CONTRADICTED), ([21, 24, 33], INCONCLUSIVE)]
)
def test_miu2(rw, verdict):
    spec = {("retrain", 1.0): {"forget_group_test_acc": [20, 25, 30]}, ("retrain+rw", 1.0): {"forget_group_test_acc": rw}}
    f = one(C.miu2(board(spec)))
    assert f.verdict == verdict and f.scope == TASKS[1.0]["id"]
    assert "g* acc retrain+rw" in f.numbers


def test_miu2_without_the_reweight_gold_is_not_measured():
    f = one(C.miu2(board({("retrain", 1.0): {}})))
    assert f.verdict == NOT_MEASURED and f.reason == f"no retrain+rw on {TASKS[1.0]['id']}"


# -- MIU-3 ----------------------------------------------------------------------------
def miu3_spec(finetune_fa: list[float], miu_worst: list[float] = (61, 59, 60)) -> dict:
    """avg_gap = |forget_acc − 50| / 6 (every other component equals the gold's): miu's is 1
    on every seed, neggrad's 3, finetune's |finetune_fa − 50| / 6."""
    return {("retrain", 1.0): {}, ("retrain+rw", 1.0): {}, ("original", 1.0): {"forget_acc": flat(100)},
            ("miu", 1.0): {"forget_acc": flat(56), "worst_group_acc": list(miu_worst)},
            ("finetune", 1.0): {"forget_acc": finetune_fa}, ("neggrad", 1.0): {"forget_acc": [66, 68, 70]}}


def test_miu3_supported():
    f = one(C.miu3(board(miu3_spec([62, 63, 64]))))
    assert f.verdict == SUPPORTED
    assert "rank 1 of 3 (best: miu, 1.00)" in f.numbers and "significantly lower than 2 of 2 methods" in f.numbers
    assert "worst-group acc miu − original = 0.00 [" in f.numbers
    assert [c.label for c in f.details] == ["finetune", "neggrad"]  # original is not an approximate method


@pytest.mark.parametrize(
    "finetune_fa, miu_worst",
    [([50, 50.6, 51.2], (61, 59, 60)),   # finetune's gap 0, 0.1, 0.2: significantly below miu's
     ([62, 63, 64], (40, 41, 42))],      # miu loses 19 points of worst-group accuracy
)
def test_miu3_contradicted(finetune_fa, miu_worst):
    f = one(C.miu3(board(miu3_spec(finetune_fa, miu_worst))))
    assert f.verdict == CONTRADICTED


def test_miu3_inconclusive_with_the_hardest_comparison_projected():
    f = one(C.miu3(board(miu3_spec([62, 50, 74]))))  # finetune's gaps 2, 0, 4: d = 1, −1, 3
    assert f.verdict == INCONCLUSIVE
    assert "rank 1 of 3" in f.numbers and "significantly lower than 1 of 2" in f.numbers
    assert f.needed == "18 seeds"


def test_miu3_without_miu_is_not_measured():
    spec = miu3_spec([62, 63, 64])
    del spec[("miu", 1.0)]
    assert one(C.miu3(board(spec))).verdict == NOT_MEASURED


# -- SW-1 -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "soft_acc, soft_eo, verdict",
    [([90, 92, 94], [2, 3, 4], SUPPORTED),      # d_u = 10, 12, 14; c = 8, 7, 6
     ([70, 72, 74], [2, 3, 4], CONTRADICTED),   # d_u below 0
     ([90, 92, 94], [12, 13, 14], CONTRADICTED),  # the gap widens
     ([81, 79, 83], [2, 3, 4], INCONCLUSIVE)],  # d_u = 1, −1, 3
)
def test_sw1(soft_acc, soft_eo, verdict):
    spec = {("retrain", 1.0): {}, ("original", 1.0): {"equalized_odds": flat(10)},
            ("soft_weighted", 1.0): {"test_acc": soft_acc, "equalized_odds": soft_eo},
            ("hard_weighted", 1.0): {"test_acc": flat(80)}}
    f = one(C.sw1(board(spec)))
    assert f.verdict == verdict
    if verdict == SUPPORTED:
        assert f.numbers == "test acc soft − hard = 12.00 [7.03, 16.97]; eq. odds original − soft = 7.00 [4.52, 9.48]"
    if verdict == INCONCLUSIVE:
        assert f.needed == "18 seeds"


def test_sw1_without_hard_weighted_is_not_measured():
    spec = {("retrain", 1.0): {}, ("original", 1.0): {}, ("soft_weighted", 1.0): {}}
    f = one(C.sw1(board(spec)))
    assert f.verdict == NOT_MEASURED and "hard_weighted" in f.reason


def test_sw1_without_the_metric_is_not_measured():
    data = score(cells({("retrain", 1.0): {}, ("original", 1.0): {}, ("soft_weighted", 1.0): {}, ("hard_weighted", 1.0): {}}))
    stripped = Leaderboard.from_json(data.to_json() | {"entries": [
        {**e, "metrics": {k: v for k, v in e["metrics"].items() if k != "equalized_odds"}} for e in data.to_json()["entries"]]})
    f = one(C.sw1(stripped))
    assert f.verdict == NOT_MEASURED and "equalized_odds" in f.reason


# -- FR-1 -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "finetune, neggrad, verdict, counts",
    [([50, 51, 52], [40, 42, 44], SUPPORTED, "2 significantly below their gold, 0 above"),  # D = 15, 13.5, 12
     ([70, 71, 72], [80, 82, 84], CONTRADICTED, "0 significantly below their gold, 2 above"),
     ([59, 61, 57], [60, 62, 60], INCONCLUSIVE, "0 significantly below their gold, 0 above")],  # D = 0.5, −1.5, 1.5
)
def test_fr1(finetune, neggrad, verdict, counts):
    spec = {("retrain", 1.0): {"pgd_acc": flat(60)}, ("retrain+rw", 1.0): {"pgd_acc": flat(60)},
            ("original", 1.0): {"pgd_acc": flat(0)}, ("finetune", 1.0): {"pgd_acc": finetune},
            ("neggrad", 1.0): {"pgd_acc": neggrad}}
    f = one(C.fr1(board(spec)))
    assert f.verdict == verdict and counts in f.numbers and "mean over 2 methods" in f.numbers
    assert {c.label for c in f.details} == {"finetune", "neggrad"}
    if verdict == SUPPORTED:
        assert f.numbers.startswith("mean over 2 methods of pgd acc gold − method = 13.50 [9.77, 17.23]")


def test_fr1_compares_each_method_with_its_own_gold():
    spec = {("retrain", 1.0): {"pgd_acc": flat(60)}, ("retrain+rw", 1.0): {"pgd_acc": [40, 41, 42]},
            ("miu", 1.0): {"pgd_acc": [30, 30, 30]}}  # miu's gold is retrain+rw: d = 10, 11, 12
    f = one(C.fr1(board(spec)))
    assert f.numbers.startswith("mean over 1 method of pgd acc gold − method = 11.00")


def test_fr1_without_robust_accuracy_is_not_measured():
    data = score(cells({("retrain", 1.0): {}, ("finetune", 1.0): {}})).to_json()
    for e in data["entries"]:
        e["metrics"].pop("pgd_acc")
    assert one(C.fr1(Leaderboard.from_json(data))).verdict == NOT_MEASURED


# -- FR-2 -----------------------------------------------------------------------------
METHODS = ["retrain", "retrain+rw", "finetune", "neggrad", "miu", "scrub", "salun", "ssd"]
GAPS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]


def fr2_board(pgd: list[float]) -> Leaderboard:
    spec = {(m, 1.0): {"fairness_gap": flat(g), "pgd_acc": flat(p)} for m, g, p in zip(METHODS, GAPS, pgd)}
    spec[("original", 1.0)] = {"fairness_gap": flat(9.0), "pgd_acc": flat(99.0)}  # left out
    return board(spec)


@pytest.mark.parametrize(
    "pgd, verdict",
    [([60, 58, 59, 50, 52, 45, 40, 41], SUPPORTED), ([40, 41, 45, 52, 50, 59, 58, 60], CONTRADICTED),
     ([50, 40, 60, 45, 55, 42, 58, 47], INCONCLUSIVE)],
)
def test_fr2(pgd, verdict):
    f = one(C.fr2(fr2_board(pgd), n_resamples=2000))
    assert f.verdict == verdict and "over 8 methods" in f.numbers
    if verdict == INCONCLUSIVE:
        assert f.needed.startswith("n/a")


def test_fr2_rho_and_interval_are_scipy_s():
    from scipy import stats

    pgd = [60, 58, 59, 50, 52, 45, 40, 41]
    c = C.spearman_interval(GAPS, pgd, n_resamples=2000, random_state=0)
    assert c.rho == pytest.approx(stats.spearmanr(GAPS, pgd)[0]) and c.k == 8
    assert c.low <= c.rho <= c.high < 0 and c.method in ("BCa", "percentile")
    assert C.spearman_interval(GAPS, pgd, n_resamples=2000, random_state=0) == c  # fixed random_state


def test_fr2_constant_metric_is_inconclusive_and_too_few_methods_not_measured():
    f = one(C.fr2(fr2_board([50] * 8), n_resamples=200))
    assert f.verdict == INCONCLUSIVE and "undefined" in f.numbers
    few = board({("retrain", 1.0): {}, ("finetune", 1.0): {}})
    assert one(C.fr2(few)).verdict == NOT_MEASURED


# -- the whole evaluation and the command ---------------------------------------------
def full_spec() -> dict:
    spec = {}
    for skew in TASKS:
        spec.update({(m, skew): {} for m in ("retrain", "retrain+rw", "original", "finetune", "soft_weighted", "hard_weighted")})
        spec[("miu", skew)] = {"forget_acc": flat(56)}
        spec[("neggrad", skew)] = {"forget_acc": [66, 68, 70], "pgd_acc": [40, 42, 44], "fairness_gap": flat(0.9)}
    spec.update(miu1_spec([60, 60, 60]))
    return spec


def test_evaluate_covers_every_claim_in_order():
    findings = C.evaluate(board(full_spec()), n_resamples=500)
    assert [f.claim for f in findings] == ["MIU-1", "MIU-2", "MIU-3", "SW-1", "SW-1", "SW-1", "FR-1", "FR-1", "FR-1", "FR-2", "FR-2", "FR-2"]
    assert {f.verdict for f in findings} <= {SUPPORTED, CONTRADICTED, INCONCLUSIVE, NOT_MEASURED}


def write_board(directory: Path) -> Leaderboard:
    b = score(cells(full_spec()))
    b.save(directory / "leaderboard.json")
    return b


def test_cli_prints_the_table_and_writes_the_markdown(cli):
    write_board(Path("leaderboard"))
    code, out, err = cli("claims", "--markdown", "docs/claims.md")
    assert code == 0, err
    assert "MIU-1" in out and "supported" in out and "FR-2" in out
    md = Path("docs/claims.md").read_text()
    assert md.startswith("# Claims of the seed papers, checked on this benchmark\n")
    assert "<!-- generated from leaderboard.json by `unlearn-bench claims --markdown`; do not edit -->" in md
    assert "none is the papers'" in md and "seeds (0, 1, 2)" in md
    for claim in C.CLAIMS:
        assert f"## {claim.id} ({claim.source})" in md
    assert "| toy, g* = 2, forget 10 | retrain g* acc: uniform 72.0 ± 2.0" in md
    assert "Seeds needed (projected from the observed mean and sd)" in md and "<details>" in md


def test_cli_shows_each_verdict_against_another_board_and_whether_it_changed(cli):
    write_board(Path("leaderboard"))
    spec = full_spec()
    spec.update(miu1_spec([80, 80, 80]))  # the other board: MIU-1 no longer holds
    score(cells(spec)).save(Path("defaults/leaderboard.json"))
    code, _, err = cli("claims", "--against", "defaults", "--markdown", "claims.md")
    assert code == 0, err
    md = Path("claims.md").read_text()
    assert "| Claim | Statement | Task | Verdict | With hand-set settings | Tuning changed it |" in md
    rows = [line for line in md.splitlines() if line.startswith("| MIU-1 |")]
    assert rows and rows[0].endswith("| yes |") and any(line.endswith("| no |") for line in md.splitlines())


def test_cli_reads_another_directory_or_file(cli):
    write_board(Path("elsewhere"))
    assert cli("claims", "--leaderboard", "elsewhere")[0] == 0
    assert cli("claims", "--leaderboard", "elsewhere/leaderboard.json")[0] == 0


@pytest.mark.parametrize("content", [None, "{not json", '{"schema_version": 1}'])
def test_cli_unreadable_leaderboard_is_one_error_line(cli, content):
    if content is not None:
        Path("leaderboard").mkdir()
        Path("leaderboard/leaderboard.json").write_text(content)
    code, out, err = cli("claims")
    assert code == 2 and out == ""
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1


def test_spearman_without_scipy_s_vectorised_rho(monkeypatch):
    """On a scipy without spearmanrho, ρ comes from spearmanr slice by slice: the same numbers."""
    pgd = [60, 58, 59, 50, 52, 45, 40, 41]
    fast = C.spearman_interval(GAPS, pgd, n_resamples=300)
    monkeypatch.delattr(C.stats, "spearmanrho")
    slow = C.spearman_interval(GAPS, pgd, n_resamples=300)
    assert (slow.rho, slow.low, slow.high) == pytest.approx((fast.rho, fast.low, fast.high))
