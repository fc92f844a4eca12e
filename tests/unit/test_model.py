"""The model wrapper: backbones, normalisation, stages, pretrained weights."""

import pytest
import torch

from benchmark.errors import BenchmarkError
from benchmark.model import Classifier, ModelSpec, build_model


def test_pretrained_weights_from_a_local_file(tmp_path):
    donor = build_model(ModelSpec(backbone="test_resnet"), 2, seed=5)
    path = tmp_path / "weights.pth"
    torch.save(donor.backbone.state_dict(), path)
    model = Classifier(ModelSpec(backbone="test_resnet", pretrained=str(path)), 2)
    assert all(torch.equal(a, b) for a, b in zip(model.backbone.state_dict().values(), donor.backbone.state_dict().values()))


def test_unreachable_weights_and_unknown_backbones_are_one_clear_error(monkeypatch):
    import timm

    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(timm, "create_model", offline)
    with pytest.raises(BenchmarkError, match="--pretrained PATH"):
        Classifier(ModelSpec(backbone="resnet18", pretrained="timm"), 2)
    monkeypatch.undo()
    with pytest.raises(BenchmarkError, match="cannot build backbone"):
        Classifier(ModelSpec(backbone="no_such_net"), 2)


def test_mlp_backbone_for_table_rows():
    model = build_model(ModelSpec(backbone="mlp:16,8", image_size=0, mean=(), std=(), channels_last=False, in_features=5), 2, seed=0)
    x = torch.rand(4, 5)
    assert model.features(x).shape == (4, 8) and model(x).shape == (4, 2)
    assert model.stages() == ["blocks.0", "blocks.1"]
    assert model.tail_parameters(1)[0].startswith("backbone.blocks.1.")


def test_same_seed_same_initial_weights():
    a = build_model(ModelSpec(), 2, seed=1)
    b = build_model(ModelSpec(), 2, seed=1)
    c = build_model(ModelSpec(), 2, seed=2)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(a.head.weight, c.head.weight)
