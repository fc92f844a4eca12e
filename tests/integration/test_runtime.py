"""The runtime: precision and strategy checked before any work, evaluation in the Trainer's
precision context, and DDP (spawned processes, gloo on the CPU) against one process."""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn
from torch.multiprocessing.spawn import ProcessRaisedException

from benchmark.dataset import Batch, Split
from benchmark.errors import BenchmarkError
from benchmark.inference import accuracy, predict_probs
from benchmark.model import build_model
from benchmark.run import artefacts as artefacts_module
from benchmark.run import runtime as runtime_module
from benchmark.run.failure import CellFailure
from benchmark.run.fitting import FiniteLoss, _process_failures, fit
from benchmark.run.runtime import Runtime, _Shares
from benchmark.training import ERM, KeepBestOnVal
from tests.helpers import tiny_runner

GPU_WITHOUT_BF16 = "Tesla V100"


@pytest.fixture
def gpu_without_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine whose GPU has no native bfloat16 (a V100), on any machine."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: GPU_WITHOUT_BF16)
    monkeypatch.setattr(runtime_module, "_cuda_bf16", lambda: False)


# -- bad settings: one line ---------------------------------------------------------------

BAD = {
    "fp16 on the CPU": ({"accelerator": "cpu", "precision": "16-mixed"}, "runtime.precision '16-mixed' (fp16 mixed) needs a CUDA GPU"),
    "fp16 by its short name": ({"accelerator": "cpu", "precision": 16}, "runtime.precision 16 (fp16 mixed) needs a CUDA GPU"),
    "a precision casting the weights": ({"precision": "64-true"}, "runtime.precision must be one of auto, 32-true, bf16-mixed, 16-mixed"),
    "an unknown strategy": ({"strategy": "fsdp"}, "runtime.strategy must be one of auto, ddp, ddp_spawn, not 'fsdp'"),
    "ddp on one device": ({"strategy": "ddp"}, "runtime.strategy 'ddp' runs one process per device: runtime.devices must name 2 or more"),
    "ddp on all devices": ({"strategy": "ddp", "devices": "auto"}, "not 'auto'"),
    "a strategy of the wrong type": ({"strategy": 2}, "runtime.strategy must be str, not 2"),
}


@pytest.mark.parametrize("settings, expected", BAD.values(), ids=BAD.keys())
def test_a_bad_precision_or_strategy_is_one_line(settings, expected):
    with pytest.raises(BenchmarkError) as caught:
        Runtime(**settings)
    assert expected in str(caught.value) and "\n" not in str(caught.value), str(caught.value)


def test_bf16_on_a_gpu_without_it_is_one_line_and_auto_falls_back_to_fp16(gpu_without_bf16):
    with pytest.raises(BenchmarkError, match=f"needs a GPU with bfloat16 support, and {GPU_WITHOUT_BF16} has none"):
        Runtime(accelerator="gpu", precision="bf16-mixed")
    assert Runtime(accelerator="gpu").resolved_precision == "16-mixed"
    assert Runtime(accelerator="cpu").resolved_precision == "32-true"


def test_a_bad_strategy_in_a_config_stops_the_cli_before_any_work(cli, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("runtime: {accelerator: cpu, strategy: ddp}\n")
    code, out, err = cli("run", "--config", str(config), "--tasks", "shapes/g2-r0.9-skew1.0", "--methods", "finetune")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "runtime.strategy 'ddp' runs one process per device" in lines[0], err
    assert not (tmp_path / "runs" / "cache").exists()


def test_ddp_resolves_alike_in_every_process_and_is_in_the_cache_key():
    ddp = Runtime(accelerator="cpu", devices=2, strategy="ddp")
    assert ddp.resolved_strategy == Runtime(accelerator="cpu", devices="0,1", strategy="ddp_spawn").resolved_strategy == "ddp_spawn"
    assert Runtime(accelerator="cpu", devices=2).spawns  # 'auto' on two devices is DDP, as in Lightning
    assert not Runtime(accelerator="cpu").spawns and ddp.processes == 2
    trainer = ddp.trainer()
    assert trainer.strategy.launcher._start_method == "spawn" and trainer.strategy._process_group_backend == "gloo"
    assert hash(ddp) == hash(Runtime(accelerator="cpu", devices=2, strategy="ddp"))


# -- evaluation in the Trainer's precision ------------------------------------------------


class Probe(nn.Module):
    """A linear classifier that records the dtype its logits were computed in."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(12, 2)
        self.dtypes: list[torch.dtype] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.linear(x.flatten(1))
        self.dtypes.append(logits.dtype)
        return logits


@pytest.mark.parametrize("precision, dtype", [("bf16-mixed", torch.bfloat16), ("32-true", torch.float32), ("auto", torch.float32)])
def test_evaluation_runs_in_the_precision_plugin_of_the_trainer(precision, dtype):
    runtime = Runtime(accelerator="cpu", precision=precision)
    trainer = runtime.trainer()
    assert type(trainer.precision_plugin) is type(runtime.precision_plugin())
    assert trainer.precision == runtime.resolved_precision
    probe, x = Probe(), torch.rand(5, 3, 2, 2)
    with trainer.precision_plugin.forward_context():
        probe(x)
    probs = predict_probs(probe, x, forward_context=runtime.forward_context, batch_size=2)
    assert probe.dtypes == [dtype] * 4 and probs.dtype == torch.float32  # the Trainer's, then 3 batches
    predict_probs(probe, x)
    assert probe.dtypes[-1] == torch.float32  # no context asked for: float32



def test_best_on_val_is_chosen_in_the_precision_of_the_trainer():
    """KeepBestOnVal's validation pass autocasts as the Trainer does (its precision plugin)."""
    trainer = Runtime(accelerator="cpu", precision="bf16-mixed").trainer()
    probe, y = Probe(), torch.tensor([0, 1, 0, 1, 1])
    keep = KeepBestOnVal(Split(torch.rand(5, 3, 2, 2), y, torch.zeros(5, dtype=torch.long)))
    keep.on_train_epoch_end(trainer, SimpleNamespace(model=probe))
    assert probe.dtypes == [torch.bfloat16] and keep.best_epoch == 0 and 0.0 <= keep.best_acc <= 1.0

# -- DDP ----------------------------------------------------------------------------------


def test_each_process_takes_its_share_of_every_batch():
    """Rank r of 2 keeps its contiguous half of every tensor of a batch (Batch tuples, passes'
    (name, batch) pairs alike); a batch with fewer rows than processes is skipped by both."""
    batches = [("retain", Batch(*(torch.arange(5) for _ in range(5)))), ("forget", Batch(*(torch.arange(1) for _ in range(5))))]
    shares = [list(_Shares(batches, rank, 2)) for rank in (0, 1)]
    assert len(_Shares(batches, 0, 2)) == 2 and [len(s) for s in shares] == [1, 1]
    (name, first), (_, second) = shares[0][0], shares[1][0]
    assert name == "retain" and first.x.tolist() == [0, 1, 2] and second.x.tolist() == [3, 4]
    assert first.index.tolist() == [0, 1, 2]


def test_a_training_process_failure_is_its_own_line():
    trace = "\n\n-- Process 1 terminated with the following error:\nTraceback (most recent call last):\n  ...\n"
    runtime = Runtime(accelerator="cpu", devices=2, strategy="ddp")
    finite = ProcessRaisedException(trace + "benchmark.run.runner.CellFailure: non-finite loss (nan) at epoch 0, batch 3\n", 1, 99)
    with pytest.raises(CellFailure, match=r"^non-finite loss \(nan\) at epoch 0, batch 3$"):
        with _process_failures(runtime):
            raise finite
    with pytest.raises(CellFailure, match=r"^ValueError: a bug \(training process 1\)$"):
        with _process_failures(runtime):
            raise ProcessRaisedException(trace + "ValueError: a bug", 1, 99)


class _NoPickle(ERM):
    """An ERM holding what does not pickle (a lambda)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.hook = lambda: None


def test_a_module_that_does_not_pickle_fails_its_ddp_cell_in_one_line(tmp_path):
    runner = tiny_runner(tmp_path, ["original"], runtime={"accelerator": "cpu", "devices": 2, "strategy": "ddp"})
    task = runner.spec.tasks[0]
    dataset = runner.artefacts.dataset(task)
    model = build_model(runner.spec.model_for(task), dataset.num_classes, 0)
    module = _NoPickle(model, dataset, torch.arange(len(dataset.train)), runner.spec.recipe_for(task), 0)
    with pytest.raises(CellFailure, match="DDP copies the module into each of its 2 processes by pickle, and it does not pickle: AttributeError") as caught:
        fit(runner.spec, module, lambda *a: None, "no pickle")
    assert "\n" not in str(caught.value)


class _RecordedBest(KeepBestOnVal):
    """KeepBestOnVal that writes, from rank 0, what it restored (the best validation accuracy,
    a checksum of the weights) and the optimiser steps taken."""

    def __init__(self, val, path: Path) -> None:
        super().__init__(val)
        self.path = path

    def on_fit_end(self, trainer, module) -> None:
        super().on_fit_end(trainer, module)
        if trainer.is_global_zero:
            restored = {"best_acc": self.best_acc, "checksum": checksum(module.model), "steps": trainer.global_step}
            self.path.write_text(json.dumps(restored))


class _RecordingERM(ERM):
    """The original's ERM with ``_RecordedBest`` in place of ``KeepBestOnVal``."""

    def __init__(self, *args, record: Path, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.record = record

    def trainer_arguments(self) -> dict:
        return {**super().trainer_arguments(), "callbacks": [_RecordedBest(self.dataset.val, self.record)]}


def checksum(model: nn.Module) -> float:
    return sum(float(t.double().sum()) for t in model.state_dict().values() if t.is_floating_point())


#: TINY with 3 epochs of batches of 32 (the background is learnt: TRAIN accuracy ~0.86, chance 0.5)
DDP_JOB = {"recipe": {"epochs": 3, "batch_size": 32, "select_best_on_val": True}}


@pytest.mark.slow
def test_ddp_with_two_gloo_processes_matches_one_process(tmp_path, monkeypatch):
    """The original trained by 2 spawned DDP processes (gloo) against 1 process: its weights,
    best-on-val restored in rank 0, come back into this process; progress comes from rank 0
    only; each step reads the rows of the one-process step (each process half of them), so
    both take the same steps, and both learn what a tiny job learns (the background: TRAIN
    accuracy ~0.86 against 0.5 by chance), to within 0.1 in TRAIN and TEST accuracy. (DDP
    differs by BatchNorm statistics over half batches and other augmentation draws; seeds 0-3
    of one process alone spread over 0.75-0.85 in TRAIN accuracy with this recipe.)"""
    accuracies, steps = {}, set()
    for devices in (1, 2):
        record = tmp_path / f"best-{devices}.json"
        monkeypatch.setattr(artefacts_module, "ERM", functools.partial(_RecordingERM, record=record))
        runtime = {"accelerator": "cpu", "devices": devices, **({"strategy": "ddp"} if devices > 1 else {})}
        runner = tiny_runner(tmp_path, ["original"], runtime=runtime, **DDP_JOB)
        reports: list[tuple] = []
        runner.artefacts.report = lambda *report: reports.append(report)
        task = runner.spec.tasks[0]
        model, dataset = runner.artefacts.original(task, 0), runner.artefacts.dataset(task)
        restored = json.loads(record.read_text())
        assert checksum(model) == pytest.approx(restored["checksum"], rel=1e-9)
        assert accuracy(model, dataset.val.x, dataset.val.y) == pytest.approx(restored["best_acc"], abs=0.026)  # 1 of 40 rows
        assert [r[1:] for r in reports if r[0].startswith("original")] == [(1, 3), (2, 3), (3, 3)]
        steps.add(restored["steps"])
        accuracies[devices] = [accuracy(model, s.x, s.y) for s in (dataset.train, dataset.test)]
    (train_1, test_1), (train_2, test_2) = accuracies[1], accuracies[2]
    assert steps == {24}  # 3 epochs of 8 batches of 32 rows (240 rows)
    assert min(train_1, train_2) > 0.75, accuracies
    assert abs(train_1 - train_2) <= 0.1 and abs(test_1 - test_2) <= 0.1, accuracies


# -- non-finite losses ---------------------------------------------------------------------


def _feed(check: FiniteLoss, losses: list[float], epoch: int = 0) -> None:
    trainer = SimpleNamespace(current_epoch=epoch)
    for batch_idx, loss in enumerate(losses):
        check.on_train_batch_end(trainer, None, {"loss": torch.tensor(loss)}, None, batch_idx)


def test_a_cpu_loss_is_checked_at_its_own_batch():
    with pytest.raises(CellFailure, match=r"^non-finite loss \(nan\) at epoch 1, batch 2$"):
        _feed(FiniteLoss(), [1.0, 2.0, math.nan, 3.0], epoch=1)


def test_losses_read_back_together_still_name_the_first_bad_batch():
    """Every 4 batches (an accelerator's way): nothing is read before the 4th, then the first bad one is named."""
    check = FiniteLoss(every=4)
    _feed(check, [1.0, 2.0, math.inf])  # kept, not read yet
    with pytest.raises(CellFailure, match=r"^non-finite loss \(inf\) at epoch 0, batch 2$"):
        check.on_train_batch_end(SimpleNamespace(current_epoch=0), None, torch.tensor(math.nan), None, 3)
    check = FiniteLoss(every=4)
    _feed(check, [1.0, math.nan])
    with pytest.raises(CellFailure, match=r"batch 1$"):
        check.on_train_epoch_end(SimpleNamespace(current_epoch=0), None)  # the epoch's end reads the rest
    check = FiniteLoss(every=4)
    _feed(check, [1.0, 2.0, 3.0, 4.0, 5.0])
    check.on_train_end(None, None)  # all finite: nothing raised
