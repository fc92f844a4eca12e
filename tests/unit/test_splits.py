import pytest
import torch

from benchmark.errors import BenchmarkError
from benchmark.splits import check_skew, forget_split
from benchmark.task import Task
from tasks.shapes import ShapesSource

# 100 rows: group 2 has 20 of them
GROUPS = torch.tensor([0] * 40 + [1] * 20 + [2] * 20 + [3] * 20)[torch.randperm(100, generator=torch.Generator().manual_seed(1))]


@pytest.mark.parametrize("skew, from_group", [(0.0, 0), (0.25, 4), (0.5, 8), (0.8, 13), (1.0, 16)])
def test_exact_counts_per_skew(skew, from_group):
    forget, retain = forget_split(GROUPS, 2, 16, skew, seed=0)
    assert len(forget) == 16
    assert int((GROUPS[forget] == 2).sum()) == from_group == round(skew * 16)


def test_uniform_draws_from_all_groups():
    hits = [int((GROUPS[forget_split(GROUPS, 2, 50, "uniform", seed=s)[0]] == 2).sum()) for s in range(20)]
    assert 0 < sum(hits) / len(hits) < 50  # about 50 * 20/100 = 10 on average, not all from g*
    assert abs(sum(hits) / len(hits) - 10) < 3


@pytest.mark.parametrize("skew", [0.0, 0.5, 1.0, "uniform"])
def test_forget_and_retain_partition_train(skew):
    forget, retain = forget_split(GROUPS, 2, 16, skew, seed=3)
    assert set(forget.tolist()).isdisjoint(retain.tolist())
    assert sorted(forget.tolist() + retain.tolist()) == list(range(100))
    assert forget.tolist() == sorted(forget.tolist())


def test_deterministic_in_seed():
    a = forget_split(GROUPS, 2, 16, 0.5, seed=7)[0]
    b = forget_split(GROUPS, 2, 16, 0.5, seed=7)[0]
    c = forget_split(GROUPS, 2, 16, 0.5, seed=8)[0]
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("bad", [1.5, -0.1, "lots", True])
def test_bad_skew_is_rejected(bad):
    with pytest.raises(BenchmarkError, match="skew"):
        check_skew(bad)


def test_too_many_rows_from_group():
    with pytest.raises(BenchmarkError, match="only 20"):
        forget_split(GROUPS, 2, 30, 1.0, seed=0)


SOURCE = ShapesSource(n_train=200, n_val=20, n_test=40)


def test_task_sizes_and_ids():
    data = SOURCE.build()
    n_g = data.group_counts("train")[2]
    assert Task(SOURCE, 2, 0.5, "group", 1.0).forget_count(data) == round(0.5 * n_g)
    assert Task(SOURCE, 2, 0.1, "train", "uniform").forget_count(data) == 20
    assert Task(SOURCE, 2, 7, skew=0.5).forget_count(data) == 7
    assert Task(SOURCE, 2, 0.9, "group", 1.0).id == "shapes/g2-r0.9-skew1.0"
    assert Task(SOURCE, 1, 0.1, "train", "uniform").id == "shapes/g1-f0.1-uniform"
    assert Task(SOURCE, 2, 7, skew=0.5).id == "shapes/g2-n7-skew0.5"


def test_task_split_is_deterministic_and_depends_on_task():
    data = SOURCE.build()
    t = Task(SOURCE, 2, 0.5, "group", 1.0)
    assert torch.equal(t.split(data, 0)[0], t.split(data, 0)[0])
    assert not torch.equal(t.split(data, 0)[0], t.with_overrides({"skew": "0.0"}).split(data, 0)[0])


def test_task_overrides_and_validation():
    t = Task(SOURCE, 2).with_overrides({"skew": "0.7", "forget_size": "12"})
    assert t.skew == 0.7 and t.forget_size == 12
    with pytest.raises(BenchmarkError, match="skew"):
        Task(SOURCE, 2).with_overrides({"skew": "1.5"})
    with pytest.raises(BenchmarkError, match="no setting"):
        Task(SOURCE, 2).with_overrides({"colour": "red"})
    with pytest.raises(BenchmarkError, match="does not exist"):
        Task(SOURCE, 9).forget_count(SOURCE.build())
