"""Validation before any work: every bad setting is one line naming its key, exit status 2,
no traceback and nothing trained; every method is built once before training."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from benchmark.errors import BenchmarkError
from benchmark.registry import load_method, method_names, required_arguments
from benchmark.run.spec import build_spec
from benchmark.run.validate import check_spec
from benchmark.settings import OneOf, Range, check_settings, matches
from tests.helpers import tiny_runner

ONE_TASK = ["--tasks", "shapes/g2-r0.9-skew1.0", "--methods", "finetune"]

REQUIRED_ARGUMENT = '''
from benchmark import UnlearningMethod

class MyMethod(UnlearningMethod):
    def __init__(self, model, original, data, strength, *, epochs: int = 1, **common):
        super().__init__(model, original, data, epochs=epochs, **common)
'''

PLAIN = '''
from benchmark import UnlearningMethod

class MyMethod(UnlearningMethod):
    def train_dataloader(self):
        return self.loader("retain")
'''

# (config, flags, what the one line must hold)
CONFIG_FAULTS = {
    "recipe type": ({"recipe": {"epochs": "two"}}, [], "recipe.epochs must be int, not 'two'"),
    "recipe range": ({"recipe": {"epochs": 0}}, [], "recipe.epochs must be >= 1, not 0"),
    "recipe lr": ({"recipe": {"lr": 0}}, [], "recipe.lr must be > 0"),
    "recipe schedule": ({"recipe": {"schedule": "linear"}}, [], "recipe.schedule must be one of cosine, constant"),
    "recipe unknown": ({"recipe": {"epoch": 2}}, [], "unknown key recipe.epoch"),
    "model type": ({"model": {"image_size": "big"}}, [], "model.image_size must be int, not 'big'"),
    "model flag type": ({"model": {"channels_last": "yes"}}, [], "model.channels_last must be bool"),
    "model mlp": ({"model": {"backbone": "mlp:wide"}}, [], "model.backbone must be"),
    "model std": ({"model": {"std": [0.5, 0.0, 0.5]}}, [], "model.std must be"),
    "mi rows": ({"metrics": {"mi_rows": "abc"}}, [], "metrics.mi_rows must be int, not 'abc'"),
    "mi rows range": ({"metrics": {"mi_rows": 0}}, [], "metrics.mi_rows must be >= 1"),
    "attack type": ({"metrics": {"attacks": {"pgd_steps": "x"}}}, [], "metrics.attacks.pgd_steps must be int, not 'x'"),
    "attack range": ({"metrics": {"attacks": {"eps": -0.1}}}, [], "metrics.attacks.eps must be >= 0"),
    "attack unknown": ({"metrics": {"attacks": {"epsilon": 0.1}}}, [], "unknown key metrics.attacks.epsilon"),
    "seeds": ({"seeds": [0, 1.5]}, [], "seeds must be whole numbers, not [0, 1.5]"),
    "workers": ({"workers": 2.5}, [], "workers must be a whole number >= 1 or 'auto', not 2.5"),
    "hparams type": ({"hparams": {"finetune": {"epochs": "two"}}}, [], "hparams.finetune.epochs must be int, not 'two'"),
    "hparams bool": ({"hparams": {"finetune": {"reweight": 1}}}, [], "hparams.finetune.reweight must be bool, not 1"),
    "hparams range": ({"hparams": {"finetune": {"lr": -1}}}, [], "hparams.finetune.lr must be > 0, not -1"),
    "hparams annotated": ({"hparams": {"retrain": {"epochs": 2.5}}}, [], "hparams.retrain.epochs must be int or None"),
    "hparams absent method": ({"hparams": {"neggrad": {"epochs": "x"}}}, [], "hparams.neggrad.epochs must be int"),
    "hparams misspelt method": ({"hparams": {"fintune": {"epochs": 1}}}, [], "hparams.fintune: no method 'fintune'"),
    "runtime devices list on cpu": ({"runtime": {"accelerator": "cpu", "devices": [0]}}, [], "runtime: Lightning refuses"),
    "dataset of no suite": ({"datasets": {"shapez": {"n_train": 40}}}, [], "datasets.shapez: no task suite 'shapez'"),
    "precision": ({}, ["--precision", "bogus"], "runtime.precision must be one of auto, 32-true, bf16-mixed, 16-mixed"),
    "devices": ({}, ["--devices", "0"], "runtime.devices must be a number of devices >= 1"),
    "accelerator": ({}, ["--accelerator", "tpuu"], "runtime.accelerator must be one of auto, cpu, gpu, cuda, not 'tpuu'"),
    "gpu without one": ({}, ["--accelerator", "gpu"], "runtime.accelerator is 'gpu' but no CUDA GPU is visible"),
    "cuda without one": ({}, ["--accelerator", "cuda"], "runtime.accelerator is 'cuda' but no CUDA GPU is visible"),
    "workers flag": ({}, ["--workers", "x"], "workers must be a whole number"),
    "data of no suite": ({}, ["--data", "nope=somewhere"], "data.nope: no task suite 'nope'; known: "),
}


def one_line(cli, tmp_path: Path, config: dict, flags: list[str]) -> str:
    """Run the CLI; check it refused with one line, no traceback, nothing trained."""
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    code, out, err = cli("run", "--config", str(path), *flags)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (code, err)
    assert "Traceback" not in out + err
    assert not list((tmp_path / "runs" / "cache").rglob("*.pt")) and not (tmp_path / "runs" / "cache" / "models").exists()
    return lines[0]


@pytest.mark.parametrize("config, flags, expected", CONFIG_FAULTS.values(), ids=CONFIG_FAULTS.keys())
def test_a_bad_setting_is_one_line_before_any_work(cli, tmp_path, monkeypatch, config, flags, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # the GPU faults, on any machine
    line = one_line(cli, tmp_path, config, [*ONE_TASK, *flags])
    assert expected in line, line


def test_a_plugin_init_with_a_required_argument(cli, tmp_path):
    plugin = tmp_path / "needs.py"
    plugin.write_text(REQUIRED_ARGUMENT)
    line = one_line(cli, tmp_path, {}, ["--methods", f"{plugin}:MyMethod"])
    assert f"{plugin}:MyMethod: __init__ argument 'strength' has no default" in line


def test_two_plugins_of_one_class_name(cli, tmp_path):
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text(PLAIN), b.write_text(PLAIN)
    line = one_line(cli, tmp_path, {}, ["--tasks", "shapes/g2-r0.9-skew1.0", "--methods", f"{a}:MyMethod", f"{b}:MyMethod"])
    assert "two methods are named 'MyMethod'" in line and f"{a}:MyMethod" in line and f"{b}:MyMethod" in line


def test_a_misspelt_method_names_the_run_methods(cli, tmp_path):
    line = one_line(cli, tmp_path, {"hparams": {"fintune": {"epochs": 1}}}, ONE_TASK)
    assert "this run's methods: retrain, finetune" in line


# -- every method built once ----------------------------------------------------------


def checked(runner) -> None:
    check_spec(runner.spec, lambda task: runner.artefacts.task_data(task, runner.spec.seeds[0]))


@pytest.mark.parametrize(
    "method, hparams, expected",
    [
        ("salun", {"gamma": 2.0}, "method salun on task shapes/g2-r0.9-skew1.0 cannot be built: ValueError: gamma must be in (0, 1]"),
        ("cf_k", {"k": 99}, "method cf_k on task shapes/g2-r0.9-skew1.0 cannot be built: ValueError: k must be between 0 and"),
    ],
)
def test_a_method_that_cannot_be_built_stops_before_training(tmp_path, method, hparams, expected):
    runner = tiny_runner(tmp_path, [method], hparams={method: hparams})
    with pytest.raises(BenchmarkError) as caught:
        checked(runner)
    assert expected in str(caught.value) and "\n" not in str(caught.value)
    assert not (tmp_path / "runs" / "cache" / "models").exists()


def test_every_method_builds_once_and_nothing_trains(tmp_path):
    runner = tiny_runner(tmp_path, ["original", "finetune", "finetune+rw", "scrub", "ssd", "eu_k", "soft_weighted"])
    checked(runner)
    assert not (tmp_path / "runs" / "cache" / "models").exists()


def test_a_trainer_argument_lightning_refuses(tmp_path):
    plugin = tmp_path / "odd.py"
    plugin.write_text(PLAIN + "\n    def trainer_arguments(self):\n        return {'max_epochs': 1, 'no_such_argument': 3}\n")
    runner = tiny_runner(tmp_path, [f"{plugin}:MyMethod"])
    with pytest.raises(BenchmarkError, match="method MyMethod on task .*: Lightning refuses the Trainer: TypeError"):
        checked(runner)


# -- the checker ----------------------------------------------------------------------


def test_types_as_yaml_gives_them():
    assert matches(1, float) and not matches(True, float) and not matches(True, int) and not matches(1.5, int)
    assert matches([0.5, 1], tuple[float, ...]) and not matches([0.5, "a"], tuple[float, ...])
    assert matches(None, int | None) and matches("auto", int | str) and not matches(1, str)


def test_rules_print_what_they_allow():
    assert str(Range(1)) == ">= 1" and str(Range(0, above=True)) == "> 0" and str(Range(0, 1)) == "in [0, 1]"
    assert not Range(0).holds("x") and not Range(0).holds(True) and Range(0, 1).holds(1)
    assert OneOf((16, "16")).holds("16") and not OneOf((1,)).holds(True)
    with pytest.raises(BenchmarkError, match=r"^x.b must be one of p, q, not 'r'$"):
        check_settings({"b": str}, {"b": "r"}, "x", {"b": OneOf(("p", "q"))})


def test_every_registered_method_defaults_every_hyper_parameter():
    assert all(required_arguments(load_method(name).cls) == [] for name in method_names())


def test_one_plugin_file_written_two_ways_is_one_method(tmp_path, monkeypatch):
    """``./a.py:X`` and ``a.py:X`` name one class of one file: one method, not a clash of names."""
    (tmp_path / "a.py").write_text(PLAIN)
    monkeypatch.chdir(tmp_path)
    spec = build_spec({"tasks": ["shapes/g2-r0.9-skew1.0"]}, methods=["./a.py:MyMethod", "a.py:MyMethod"])
    assert [m.name for m in spec.methods].count("MyMethod") == 1
