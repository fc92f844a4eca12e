import pytest
import torch

from benchmark.augment import crop_flip
from benchmark.dataset import Batch, make_loader
from benchmark.task import TaskData, Task
from benchmark.training import Recipe
from tasks.shapes import ShapesSource

SOURCE = ShapesSource(n_train=400, n_val=40, n_test=40)
DATA = SOURCE.build()


def task_data(skew=1.0):
    task = Task(SOURCE, 2, 0.9, "group", skew)
    forget, retain = task.split(DATA, 0)
    return TaskData(DATA, task, forget, retain, 0, Recipe(), initial_model=lambda: None)


def test_loader_covers_rows_once_per_epoch():
    rows = torch.arange(0, 400, 3)
    loader = make_loader(DATA, "train", rows, batch_size=32, shuffle=True, seed=0)
    batches = list(loader)
    assert all(isinstance(b, Batch) for b in batches)
    seen = torch.cat([b.index for b in batches])
    assert sorted(seen.tolist()) == rows.tolist()
    b = batches[0]
    assert torch.equal(b.x, DATA.train.x[b.index]) and torch.equal(b.g, DATA.groups("train")[b.index])


def test_loader_is_seeded():
    first = lambda seed: next(iter(make_loader(DATA, "train", None, batch_size=8, shuffle=True, seed=seed))).index
    assert torch.equal(first(1), first(1)) and not torch.equal(first(1), first(2))


def test_single_row_last_batch_is_dropped():
    loader = make_loader(DATA, "train", torch.arange(33), batch_size=32, shuffle=True)
    assert [len(b.index) for b in loader] == [32]


def test_parts():
    d = task_data()
    forget = torch.cat([b.index for b in d.loader("forget", 16)])
    assert sorted(forget.tolist()) == d.forget_idx.tolist()
    assert len(torch.cat([b.index for b in d.loader("test", 16, shuffle=False)])) == 40


def test_reweight_restores_the_train_group_mix():
    d = task_data(skew=1.0)  # 90% of g* removed: g* is rare in R
    train_mix = torch.bincount(DATA.groups("train"), minlength=4).double() / 400
    retain_mix = torch.bincount(DATA.groups("train")[d.retain_idx], minlength=4).double() / len(d.retain_idx)
    loader = d.loader("retain", 64, reweight=True)
    drawn = torch.cat([b.g for _ in range(40) for b in loader])  # 40 epochs of one loader
    drawn_mix = torch.bincount(drawn, minlength=4).double() / len(drawn)
    assert (retain_mix[2] - train_mix[2]).abs() > 0.01
    assert torch.allclose(drawn_mix, train_mix, atol=0.01)
    w = d.retain_weights()
    assert torch.allclose(w[DATA.groups("train")[d.retain_idx] != 2], torch.ones(1, dtype=w.dtype))


def test_crop_flip_keeps_shape_and_content():
    x = torch.rand(5, 3, 24, 24)
    y = crop_flip(x)
    assert y.shape == x.shape and y.min() >= x.min() and y.max() <= x.max()
    const = torch.full((2, 3, 24, 24), 0.3)
    assert torch.equal(crop_flip(const), const)


def test_a_writer_refuses_an_unknown_augmentation_in_one_line(tmp_path):
    from benchmark import BenchmarkError, DatasetWriter

    with pytest.raises(BenchmarkError, match="augment must be one of crop_flip, none, resized_crop_flip, not 'flip'"):
        DatasetWriter(tmp_path).finish(num_classes=2, num_attributes=2, augment="flip")
    assert not (tmp_path / "meta.json").exists()
