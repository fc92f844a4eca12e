"""The leaderboard's statistics against answers known by hand: the t-interval over seeds, rank
bands, like-gold, and the paired bootstrap over TEST rows (its pairing, determinism and
agreement with a plain scipy.stats.bootstrap call); the store's predictions loader."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from benchmark.metrics.groups import accuracy_metrics
from benchmark.metrics.predictions import PARTS, Predictions
from benchmark.report.collect import predictions_loader
from benchmark.report.scoring import score, stat
from benchmark.report.statistics import (
    N_RESAMPLES, Query, align_test_rows, contains_zero, paired_bootstrap, query_values, rank_bands, t_interval,
)
from benchmark.run.store import Store

TASK = {"id": "toy/g2-n10-skew1.0", "dataset": "toy", "forget_group": 2, "forget_size": 10, "skew": 1.0}
OTHER = {"retain_acc": 90.0, "forget_acc": 50.0, "mia_forget_nonmember": 30.0, "equalized_odds": 5.0, "unlearn_seconds": 1.0}


# -- intervals over seeds, rank bands, like gold --------------------------------------
def test_t_interval_by_hand():
    # mean 12, sd 2, t_{0.975, 2} = 4.302653: 12 ± 4.302653 · 2 / √3 = 12 ± 4.968275
    iv = t_interval([10.0, 12.0, 14.0])
    assert (iv.mean, iv.sd, iv.n) == (12.0, 2.0, 3)
    assert iv.ends == pytest.approx((7.031725, 16.968275), abs=1e-6)
    assert t_interval([3.0]).ends is None


def test_a_stat_carries_the_t_interval_of_its_defined_values():
    s = stat([10.0, math.nan, 12.0, 14.0])
    assert (s.mean, s.std, s.n) == (12.0, 2.0, 3) and s.ci == pytest.approx((7.031725, 16.968275), abs=1e-6)
    assert stat([5.0]).ci is None and stat([5.0, 5.0]).ci == (5.0, 5.0) and stat([math.nan]).ci is None
    assert s.boot is None  # a bootstrap interval needs the predictions


def test_rank_bands_by_hand():
    # A [1, 2], B [1.5, 3], C [4, 5], D the point 2.5 (one seed), lower is better:
    # A: best 1, worst 4 − #{C, D above 2} = 2;   B: best 1, worst 4 − #{C above 3} = 3
    # C: best 1 + #{A, B, D below 4} = 4, worst 4; D: best 1 + #{A below 2.5} = 2, worst 4 − #{C} = 3
    bands = rank_bands([(1.0, 2.0), (1.5, 3.0), (4.0, 5.0), (2.5, 2.5)])
    assert bands == [(1, 2), (1, 3), (4, 4), (2, 3)]
    assert rank_bands([(1.0, 1.0), (1.0, 1.0)]) == [(1, 2), (1, 2)]  # equal points may be tied either way
    assert rank_bands([]) == []


def test_contains_zero():
    assert contains_zero([(-1.0, 1.0), (0.0, 2.0)]) is True
    assert contains_zero([(-1.0, 1.0), (0.1, 2.0)]) is False
    assert contains_zero([]) is None


def cell(method, seed, metrics, gold="retrain", is_gold=False):
    return {"method": method, "seed": seed, "task": TASK, "is_gold": is_gold, "gold_method": gold,
            "metrics": {"test_acc": 80.0, "forget_group_test_acc": 40.0, **OTHER, **metrics}}


def cells_of(method, per_seed: list[dict], **kw) -> list[dict]:
    return [cell(method, seed, m, **kw) for seed, m in enumerate(per_seed)]


def entry(board, method):
    return next(e for e in board.entries if e.method == method)


def test_rank_bands_in_a_board_by_hand():
    # avg_gap = |forget_acc − 50| / 6 (every other component equals the gold's):
    # a 1, 1, 1 (ci [1, 1]); b 2, 2, 2 (ci [2, 2]); c 1, 2, 3 (ci 2 ± 4.3027/√3 = [−0.484, 4.484])
    cells = cells_of("retrain", [{}] * 3, gold="retrain", is_gold=True)
    cells += cells_of("a", [{"forget_acc": 56.0}] * 3)
    cells += cells_of("b", [{"forget_acc": 62.0}] * 3)
    cells += cells_of("c", [{"forget_acc": 56.0}, {"forget_acc": 62.0}, {"forget_acc": 68.0}])
    cells += [cell("d", 0, {"forget_acc": 59.0})]  # one seed: the point 1.5
    board = score(cells)
    assert entry(board, "c").metrics["avg_gap"].ci == pytest.approx((2 - 2.484138, 2 + 2.484138), abs=1e-6)
    ranks = {m: (entry(board, m).rank, entry(board, m).rank_band) for m in "abcd"}
    # a: best 1, worst 4 − #{b, d above 1} = 2; b: best 1 + #{a, d below 2} = 3, worst 4;
    # c: any rank; d: best 1 + #{a} = 2, worst 4 − #{b} = 3. Ranks by mean: a 1, d 2, b and c tied 3
    assert ranks == {"a": (1, (1, 2)), "d": (2, (2, 3)), "b": (3, (3, 4)), "c": (3, (1, 4))}
    assert entry(board, "retrain").rank_band is None and entry(board, "retrain").like_gold is None


def test_like_gold_over_seeds_by_hand():
    golds = cells_of("retrain", [{"retain_acc": 90.0}, {"retain_acc": 92.0}, {"retain_acc": 94.0}], is_gold=True)
    same = cells_of("same", [{"retain_acc": 90.0}, {"retain_acc": 92.0}, {"retain_acc": 94.0}])
    # forget_acc 10, 11, 12 above gold's: d = 10, 11, 12, 11 ± 4.3027 · 1 / √3 = [8.516, 13.484]
    apart = cells_of("apart", [{"forget_acc": 60.0}, {"forget_acc": 61.0}, {"forget_acc": 62.0}])
    board = score(golds + same + apart + [cell("once", 0, {})])
    assert entry(board, "same").vs_gold == {c: (0.0, 0.0) for c in ("retain_acc", "forget_acc", "mia_forget_nonmember", "equalized_odds")}
    assert entry(board, "same").like_gold is True
    assert entry(board, "apart").vs_gold["forget_acc"] == pytest.approx((8.515862, 13.484138), abs=1e-6)
    assert entry(board, "apart").like_gold is False
    assert entry(board, "once").vs_gold == {} and entry(board, "once").like_gold is None  # one seed: no interval


# -- the paired bootstrap over TEST rows ----------------------------------------------
N = 400
GROUPS = np.arange(N) % 4  # 100 rows of each of 4 groups; g* = 2


def predictions(correct: np.ndarray, order: np.ndarray | None = None) -> Predictions:
    """TEST rows only, binary y = g // 2 and a = g % 2, predicted right where ``correct``."""
    y = GROUPS // 2
    predicted = np.where(correct, y, 1 - y)
    probs = np.eye(2, dtype=np.float32)[predicted]
    order = np.arange(N) if order is None else order
    return Predictions(probs=probs[order], y=y[order], a=(GROUPS % 2)[order], g=GROUPS[order],
                       part=np.full(N, PARTS.index("test"), np.uint8), index=np.arange(N)[order],
                       num_groups=4, num_attributes=2, forget_group=2)


def rows_right(share: float, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random(N) < share


def pcell(method: str, seed: int, p: Predictions, **kw) -> dict:
    """A cell whose TEST accuracies are those of its predictions (the others OTHER's)."""
    return cell(method, seed, {k: v for k, v in accuracy_metrics(p).items() if math.isfinite(v)}, **kw)


def board_with(table: dict[tuple[str, int], Predictions], golds=("retrain",)):
    cells = [pcell(m, s, p, is_gold=m in golds) for (m, s), p in table.items()]
    return score(cells, predictions=lambda c: table.get((c["method"], c["seed"])))


def test_identical_predictions_give_a_zero_interval_against_gold():
    gold = {("retrain", s): predictions(rows_right(0.8, s)) for s in range(3)}
    same = {("copy", s): p for (_, s), p in gold.items()}
    board = board_with({**gold, **same})
    copy, retrain = entry(board, "copy"), entry(board, "retrain")
    assert copy.vs_gold["test_acc"] == (0.0, 0.0) and copy.vs_gold["forget_group_test_acc"] == (0.0, 0.0)
    assert copy.like_gold is True
    for name in ("test_acc", "group_acc/0", "worst_group_acc", "forget_group_test_acc", "group_acc_gap"):
        assert copy.metrics[name].boot == retrain.metrics[name].boot
        low, high = copy.metrics[name].boot
        assert low < high  # a real interval: the rows are resampled
    low, high = copy.metrics["test_acc"].boot
    assert low < copy.metrics["test_acc"].mean < high
    assert copy.metrics["retain_acc"].boot is None and copy.metrics["avg_gap"].boot is None  # not on TEST rows


def test_a_clearly_better_method_is_told_apart_from_gold():
    gold = {("retrain", s): predictions(rows_right(0.7, s)) for s in range(3)}
    better = {("better", s): predictions(rows_right(0.7, s) | rows_right(0.5, 10 + s)) for s in range(3)}
    board = board_with({**gold, **better})
    e = entry(board, "better")
    low, high = e.vs_gold["test_acc"]
    diff = e.metrics["test_acc"].mean - entry(board, "retrain").metrics["test_acc"].mean
    assert 10 < low < diff < high  # about 15 points better: the interval is clear of 0
    assert e.vs_gold["forget_group_test_acc"][0] > 0 and e.like_gold is False


def test_the_bootstrap_is_deterministic_and_scipy_s():
    table = {("retrain", 0): predictions(rows_right(0.8, 0))}
    first, again = board_with(table), board_with(table)
    boot = entry(first, "retrain").metrics["test_acc"].boot
    assert boot == entry(again, "retrain").metrics["test_acc"].boot
    # one cell: the same resamples as scipy's own bootstrap of the row accuracies (random_state 0)
    plain = stats.bootstrap((100.0 * rows_right(0.8, 0),), np.mean, n_resamples=N_RESAMPLES, method="percentile",
                            random_state=0).confidence_interval
    assert boot == pytest.approx((plain.low, plain.high))


def test_rows_are_paired_by_index_not_by_position():
    correct = rows_right(0.8, 0)
    shuffled = np.random.default_rng(1).permutation(N)
    rows, positions = align_test_rows([predictions(correct), predictions(correct, order=shuffled)])
    assert positions == [0, 1] and np.array_equal(rows.correct[0], rows.correct[1])
    assert paired_bootstrap(rows, [Query("test_acc", (0,), (1,))]) == [(0.0, 0.0)]


def test_query_values_are_the_stored_accuracies():
    p = predictions(rows_right(0.8, 3))
    rows, _ = align_test_rows([p])
    names = ["test_acc", "group_acc/1", "worst_group_acc", "forget_group_test_acc", "group_acc_gap"]
    values = query_values(rows, [Query(n, (0,)) for n in names])
    assert values.tolist() == pytest.approx([accuracy_metrics(p)[n] for n in names])


def test_without_usable_predictions_there_is_no_bootstrap_interval():
    gold = {("retrain", s): predictions(rows_right(0.8, s)) for s in range(3)}
    method = {("m", s): predictions(rows_right(0.6, 20 + s)) for s in range(3)}
    cells = [pcell(m, s, p, is_gold=m == "retrain") for (m, s), p in {**gold, **method}.items()]
    cells[-1]["metrics"]["test_acc"] += 1.0  # its predictions do not give back its stored number
    board = score(cells, predictions=lambda c: {**gold, **method}.get((c["method"], c["seed"])))
    m = entry(board, "m")
    assert m.metrics["test_acc"].boot is None  # seed 2's cell takes no part: no seed mean over all seeds
    assert m.vs_gold["test_acc"] is not None  # over the seeds 0 and 1 where both take part
    nothing = score(cells, predictions=lambda c: None)
    assert entry(nothing, "m").metrics["test_acc"].boot is None and "test_acc" not in entry(nothing, "m").vs_gold
    assert "retain_acc" in entry(nothing, "m").vs_gold  # the intervals over seeds need no predictions


def test_the_loader_reads_a_cells_predictions_from_the_store(tmp_path):
    store = Store(tmp_path, warn=lambda message: None)
    p = predictions(rows_right(0.8, 0))
    path = store.cell(TASK["id"], "m", 0)
    store.write(store.predictions(path), p.save)
    load = predictions_loader(store)
    c = {**cell("m", 0, {}), "predictions": store.predictions(path).name}
    assert np.array_equal(load(c).correct, p.correct)
    assert load({**c, "predictions": ""}) is None and load({**c, "method": "other"}) is None  # none named, missing
    store.predictions(path).write_bytes(b"garbage")
    assert load(c) is None and list((tmp_path / "quarantine").rglob("*.preds.npz*"))  # corrupt: quarantined
