import torch

from tasks.shapes import ShapesSource, tasks

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
    assert {t.forget_group for t in ts} == {2} and all(t.default for t in ts)
