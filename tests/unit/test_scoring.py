import math

import pytest

from benchmark.report.leaderboard import Leaderboard
from benchmark.report.scoring import AVG_GAP_COMPONENTS, score, seed_scores

TASK = {"id": "toy/g2-n10-skew1.0", "dataset": "toy", "forget_group": 2, "forget_size": 10, "skew": 1.0}


def cell(method, seed, secs, ra, fa, ta, ga, gold="retrain", is_gold=False, reweight=False, mia=30.0, eo=5.0, mi=0.5):
    return {
        "method": method, "seed": seed, "task": TASK, "is_gold": is_gold, "reweight": reweight,
        "gold_method": gold,
        "metrics": {"retain_acc": ra, "forget_acc": fa, "test_acc": ta, "forget_group_test_acc": ga,
                    "mia_forget_nonmember": mia, "equalized_odds": eo, "mi_feature_group": mi,
                    "unlearn_seconds": secs},
    }


CELLS = [
    cell("retrain", 0, 100.0, 90, 50, 80, 40, is_gold=True),
    cell("retrain", 1, 120.0, 92, 52, 82, 44, is_gold=True),
    cell("ft", 0, 10.0, 94, 60, 80, 40, mi=0.8),   # gaps RA 4, FA 10, mia 0, eo 0 -> 14/6
    cell("ft", 1, 12.0, 92, 50, 84, 44, eo=7.0),   # gaps FA 2, TA 2, eo 2 -> 6/6
    cell("ga", 0, 1.0, 90, 50, 80, 40),            # 0
    cell("ga", 1, 1.0, 92, 52, 82, 48),            # g* 4 -> 4/6
    cell("retrain+rw", 0, 100.0, 90, 50, 80, 60, is_gold=True, gold="retrain+rw", reweight=True),
    cell("ft+rw", 0, 10.0, 90, 50, 80, 48, gold="retrain+rw", reweight=True),  # g* 12 -> 2
]


def entry(board, method):
    return next(e for e in board.entries if e.method == method)


def test_gaps_and_avg_gap_by_hand():
    m, gaps = seed_scores(CELLS[2], CELLS[0])
    assert gaps["retain_acc"] == 4 and gaps["forget_acc"] == 10
    assert m["avg_gap"] == pytest.approx(14 / 6)
    assert m["tow"] == pytest.approx(100 * 0.96 * 0.90 * 1.0)
    assert m["mi_calibration_error"] == pytest.approx(0.3) and m["mi_feature_group_gold"] == 0.5
    assert m["speedup_vs_gold"] == pytest.approx(10.0)


def test_a_gold_row_is_its_own_reference():
    m, gaps = seed_scores(CELLS[0], None)
    assert m["avg_gap"] == 0 and m["tow"] == 100 and m["mi_calibration_error"] == 0
    assert set(gaps.values()) == {0.0}


def test_aggregation_over_seeds():
    board = score(CELLS)
    ft = entry(board, "ft")
    assert ft.metrics["avg_gap"].mean == pytest.approx(10 / 6)
    assert ft.metrics["avg_gap"].std == pytest.approx(math.sqrt(((14 / 6 - 10 / 6) ** 2 + (1 - 10 / 6) ** 2) / 1))
    assert ft.metrics["avg_gap"].n == 2
    assert ft.metrics["retain_acc"].mean == 93
    assert ft.gap_to_gold["forget_acc"] == pytest.approx(6.0)
    assert ft.metrics["speedup_vs_gold"].mean == pytest.approx(10.0)
    assert ft.seeds == [0, 1]
    assert ft.metrics["avg_gap"].values == pytest.approx((14 / 6, 1.0))  # in the order of ft.seeds
    assert ft.metrics["retain_acc"].values == (94.0, 92.0)


def test_per_seed_values_follow_the_seeds_whatever_the_cell_order():
    board = score(list(reversed(CELLS)))
    ga = entry(board, "ga")
    assert ga.seeds == [0, 1]
    assert ga.metrics["forget_group_test_acc"].values == (40.0, 48.0)
    assert ga.metrics["avg_gap"].values == pytest.approx((0.0, 4 / 6))


def test_a_metric_missing_on_one_seed_is_nan_there():
    cells = [CELLS[0], CELLS[1], CELLS[4], {**CELLS[5], "metrics": {k: v for k, v in CELLS[5]["metrics"].items() if k != "test_acc"}}]
    s = entry(score(cells), "ga").metrics["test_acc"]
    assert (s.mean, s.std, s.n) == (80.0, 0.0, 1)
    assert s.values[0] == 80.0 and math.isnan(s.values[1])


def test_ranks_and_gold_rows():
    board = score(CELLS)
    assert entry(board, "ga").rank == 1          # avg gap 1/3
    assert entry(board, "ft").rank == 2          # 10/6
    assert entry(board, "ft+rw").rank == 3       # 2, against RW-retrain
    assert entry(board, "retrain").rank is None and entry(board, "retrain").is_gold
    assert set(entry(board, "retrain").gap_to_gold.values()) == {0.0}
    assert entry(board, "ft+rw").gold == "retrain+rw"
    assert board.ranking.components == AVG_GAP_COMPONENTS


def test_ties_share_a_rank():
    cells = [CELLS[0], cell("a", 0, 1.0, 91, 50, 80, 40), cell("b", 0, 1.0, 89, 50, 80, 40)]
    board = score(cells)
    assert entry(board, "a").rank == entry(board, "b").rank == 1


def test_missing_gold_leaves_entry_unranked():
    board = score([CELLS[2]])
    assert entry(board, "ft").rank is None
    assert "avg_gap" not in entry(board, "ft").metrics


def test_json_round_trip_and_validation(tmp_path):
    board = score(CELLS, {"torch": "x"})
    board.save(tmp_path / "lb.json")
    again = Leaderboard.load(tmp_path / "lb.json")
    assert again.to_json() == board.to_json()


def test_mi_calibration_error_carries_the_standard_error_of_both_estimates():
    gold = cell("retrain", 0, 100.0, 90, 50, 80, 40, is_gold=True, mi=0.5)
    method = cell("ft", 0, 10.0, 90, 50, 80, 40, mi=0.8)
    gold["metrics"]["mi_feature_group_se"], method["metrics"]["mi_feature_group_se"] = 0.03, 0.04
    m, _ = seed_scores(method, gold)
    assert m["mi_calibration_error"] == pytest.approx(0.3) and m["mi_calibration_error_se"] == pytest.approx(0.05)
    assert seed_scores(gold, None)[0]["mi_calibration_error_se"] == 0.0  # gold against itself
    assert not any(k.endswith("_se") for k in seed_scores(method, gold)[1])  # a standard error has no gap to gold


def test_the_task_record_says_what_the_attacks_ran_and_the_page_shows_it():
    from benchmark.report.render import to_markdown

    ran = {"budget": "reduced", "eps": 2 / 255, "pgd_steps": 10, "pgd_alpha": 0.5 / 255, "aa_steps": 10,
           "square_queries": 25, "rows": 64, "autoattack": ["APGD-CE", "Square"], "library": "torchattacks"}
    cells = [{**c, "metric_settings": {"attacks": ran}} for c in CELLS[:2]]
    board = score(cells)
    assert board.tasks[0]["attacks"] == {k: v for k, v in ran.items() if k != "library"}
    assert "AutoAttack reduced (APGD-CE + Square, 10 iterations, 25 queries) on 64 rows" in to_markdown(board)
    assert "ε = 2/255" in to_markdown(board)
