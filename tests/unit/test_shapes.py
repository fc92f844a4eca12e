import hashlib

import numpy as np
import pytest
import torch

import tasks.shapes as shapes
from tasks.shapes import PRESET_DATA, ShapesSource, group_counts, mix32, random_bits, stream_key, tasks

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

SMALL = dict(n_train=400, n_val=80, n_test=120)


def test_same_settings_same_bytes():
    a, b = ShapesSource(**SMALL).build(), ShapesSource(**SMALL).build()
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.test.a, b.test.a)
    assert a.fingerprint == b.fingerprint
    c = ShapesSource(**SMALL, seed=1).build()
    assert not torch.equal(a.train.x, c.train.x) and a.fingerprint != c.fingerprint


def test_format_and_groups():
    d = ShapesSource(**SMALL).build()
    assert d.train.x.dtype == torch.uint8 and d.train.x.shape == (400, 3, 24, 24)
    assert d.num_groups == 4 and d.group_name(2) == "vertical, land"
    assert torch.equal(d.groups("train"), d.train.y * 2 + d.train.a)
    # spurious correlation in TRAIN, none in VAL/TEST
    agree = (d.train.y == d.train.a).float().mean().item()
    assert 0.85 < agree < 0.95
    assert d.group_counts("val") == [20] * 4 and d.group_counts("test") == [30] * 4


def test_background_carries_the_attribute():
    d = ShapesSource(**SMALL).build()
    blue_minus_red = d.train.x[:, 2].float().mean((1, 2)) - d.train.x[:, 0].float().mean((1, 2))
    assert (blue_minus_red > 0).eq(d.train.a == 1).float().mean() > 0.99


def test_cache_round_trip(tmp_path):
    source = ShapesSource(**SMALL)
    built = source.load(tmp_path)
    cached = source.load(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [f"shapes-{source.fingerprint()}"]
    assert torch.equal(built.train.x, cached.train.x) and cached.class_names == built.class_names


def test_default_grid():
    ts = tasks(**SMALL)
    assert [t.skew for t in ts] == ["uniform", 0.5, 1.0]
    assert {t.forget_group for t in ts} == {2} and [t.default for t in ts] == [False, False, True]  # the short default: skew 1.0


# -- pinned bytes, engines, the paper preset -----------------------------------------------------


def digest(d) -> str:
    h = hashlib.sha256()
    for split in (d.train, d.val, d.test):
        for t in (split.x, split.y, split.a):
            h.update(t.numpy().tobytes())
    return h.hexdigest()[:16]


def test_quick_preset_bytes_are_pinned():
    """The default benchmark's data and cache name, as every version before drew them."""
    source = ShapesSource()
    assert source.fingerprint() == "095a0faa4c92705b" and digest(source.build()) == "a3f766316588c324"
    assert ShapesSource(**SMALL).fingerprint() == "db6d01377f94d8d2" and digest(ShapesSource(**SMALL).build()) == "a53d9cb06da0971b"


def test_numpy_chunks_are_one_draw(monkeypatch: pytest.MonkeyPatch):
    whole = ShapesSource(**SMALL, size=32).build()
    monkeypatch.setattr(shapes, "NUMPY_CHUNK", 3 * 32 * 32 * 7)  # 7 rows a chunk
    assert digest(ShapesSource(**SMALL, size=32).build()) == digest(whole)


def reference_mix32(v: np.ndarray) -> np.ndarray:
    """The hash in uint32 arithmetic, where wrapping is numpy's definition."""
    v = v.astype(np.uint32)
    for shift, multiplier in ((16, 0x7FEB352D), (15, 0x846CA68B)):
        v = (v ^ (v >> np.uint32(shift))) * np.uint32(multiplier)
    return v ^ (v >> np.uint32(16))


def test_counter_hash_is_exact_integer_arithmetic():
    x = torch.randint(-(2**31), 2**31, (1003,), dtype=torch.int32)  # odd length: vector and scalar code
    assert np.array_equal(mix32(x).numpy().view(np.uint32), reference_mix32(x.numpy().view(np.uint32)))
    assert len(set(random_bits(stream_key(0, 1, 2), torch.arange(5000)).tolist())) == 5000  # a bijection


COUNTER = dict(n_train=24, n_val=8, n_test=8, size=40, engine="counter")


def test_counter_chunks_do_not_change_the_bytes(monkeypatch: pytest.MonkeyPatch):
    first = ShapesSource(**COUNTER).build()
    monkeypatch.setattr(shapes, "COUNTER_CHUNK", {"cpu": 5, "cuda": 5})
    assert digest(ShapesSource(**COUNTER).build()) == digest(first)
    assert digest(ShapesSource(**COUNTER, seed=1).build()) != digest(first)


@CUDA
def test_counter_engine_draws_the_same_bytes_on_the_gpu(monkeypatch: pytest.MonkeyPatch):
    on_gpu = ShapesSource(**{**COUNTER, "n_train": 300}).build()
    monkeypatch.setattr(shapes, "generation_device", lambda: torch.device("cpu"))
    assert digest(ShapesSource(**{**COUNTER, "n_train": 300}).build()) == digest(on_gpu)


def test_counter_engine_draws_the_same_picture():
    d = ShapesSource(**{**COUNTER, "n_train": 200}, noise=0.0).build()
    blue_minus_red = d.train.x[:, 2].float().mean((1, 2)) - d.train.x[:, 0].float().mean((1, 2))
    assert (blue_minus_red > 0).eq(d.train.a == 1).float().mean() > 0.99
    assert d.group_counts("train") == group_counts((0.45, 0.05, 0.05, 0.45), 200) and d.group_counts("val") == [2] * 4


@pytest.mark.parametrize("engine", ["numpy", "counter"])
def test_bars_scale_with_the_image(engine: str):
    """Without noise the bar is what differs from the image's most common colour: it covers the
    same share of the image at 24 and 96 px."""

    def bar_share(size: int) -> float:
        x = ShapesSource(n_train=4, n_val=4, n_test=64, size=size, noise=0.0, contrast=1.0, engine=engine).build().test.x
        mode = x.flatten(2).mode(dim=2).values[:, :, None, None]
        return (x != mode).any(1).float().mean().item()

    small, large = bar_share(24), bar_share(96)
    assert 0.02 < small and abs(large / small - 1) < 0.15


def test_paper_preset_is_waterbirds_sized():
    source = ShapesSource(preset="paper")
    sizes, groups = {}, {}
    for split, y, a, _ in source.splits():  # the labels alone: the images are drawn lazily
        sizes[split] = len(y)
        groups[split] = np.bincount(2 * y + a, minlength=4).tolist()
    assert sizes == {"train": 4795, "val": 1199, "test": 5794}
    assert groups == {"train": [3498, 184, 56, 1057], "val": [467, 466, 133, 133], "test": [2255, 2255, 642, 642]}
    assert source.size == 224 and source.engine == "counter" and source.identity()["version"] == 2
    assert source.model.backbone == "resnet18" and source.model.image_size == 224 and source.model.pretrained == ""
    assert (source.recipe.epochs, source.recipe.batch_size, source.recipe.lr, source.recipe.weight_decay) == (30, 32, 1e-2, 1e-3)
    assert source.fingerprint() != ShapesSource().fingerprint()


def test_paper_preset_settings_can_be_changed():
    source = ShapesSource(preset="paper", n_train=40, n_val=8, n_test=8, train_groups=[1, 1, 1, 1])
    assert source.size == 224 and source.train_groups == (1.0, 1.0, 1.0, 1.0)
    d = source.build()
    assert d.train.x.shape == (40, 3, 224, 224) and d.group_counts("train") == [10] * 4
    assert all(t.source.preset == "paper" for t in tasks(preset="paper"))


def test_bad_settings_fail_on_one_line():
    with pytest.raises(Exception, match="no preset 'huge'"):
        ShapesSource(preset="huge")
    with pytest.raises(ValueError, match="engine must be one of numpy, counter"):
        ShapesSource(engine="gpu")
    with pytest.raises(ValueError, match="train_groups must be 4 numbers"):
        ShapesSource(train_groups=[1, 2])


def test_group_counts_split_rows_by_largest_remainder():
    assert group_counts((1, 1, 1, 1), 10) == [3, 3, 2, 2]
    assert group_counts(tuple(PRESET_DATA["paper"]["train_groups"]), 100) == [73, 4, 1, 22]
