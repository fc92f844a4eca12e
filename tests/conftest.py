"""Shared helpers: a tiny benchmark configuration and an in-process CLI runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from benchmark.cli import main

TINY = {
    "tasks": ["shapes"],  # its three tasks (the default benchmark adds Adult's and runs shapes at skew 1.0 only)
    "datasets": {"shapes": {"n_train": 240, "n_val": 40, "n_test": 80}},
    "recipe": {"epochs": 1},
    "seeds": [0],
    "hparams": {"finetune": {"epochs": 1}, "neggrad": {"epochs": 1}, "random_label": {"epochs": 1}},
}


@pytest.fixture
def tiny_config(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


class CLI:
    def __init__(self, capsys: pytest.CaptureFixture, cwd: Path) -> None:
        self.capsys, self.cwd = capsys, cwd

    def __call__(self, *args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out, err = self.capsys.readouterr()
        return code, out, err


@pytest.fixture
def cli(capsys: pytest.CaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CLI:
    monkeypatch.chdir(tmp_path)
    return CLI(capsys, tmp_path)


@pytest.fixture
def one_thread():
    """Tiny models run faster on one intra-op thread, and idle threads do not spin against
    whatever else shares the cores."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())
