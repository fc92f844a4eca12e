"""Isolation (benchmark/run/isolation.py): a plugin cannot touch another cell's numbers, nor
its own scoring inputs. Tampering plugins (tests/tampering_methods.py) run between clean
cells in one worker; the clean cells' numbers must equal those of a run without them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
import yaml

from benchmark.errors import BenchmarkError
from benchmark.run.isolation import Baseline, Shared, digest, restore_state, torch_state
from tests.conftest import TINY
from tests.helpers import board_numbers, tiny_runner

TAMPERING = "tests/tampering_methods.py"
TASK = "shapes/g2-r0.9-skew1.0"
CLEAN = ["finetune", "neggrad", "random_label"]
FEW_ATTACKS = {"attacks": {"rows": 16, "pgd_steps": 2, "aa_steps": 2, "square_queries": 2}}  # what the attacks say is not the point here
#: what each tamperer does, and whether its own cell must fail (else it is scored on the true data)
FAILS = {"ZeroesLabels": True, "ReplacesLabels": True, "EditsGroups": True, "WritesInputs": True, "SetsDefaultDtype": True,
         "DisablesGrad": True, "SetsMatmulPrecision": True, "ForgetsRetainRows": False, "HooksItsModel": False}  # fmt: skip


def _args(directory: Path, methods: list[str]) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "tiny.yaml"
    config.write_text(yaml.safe_dump({**TINY, "tasks": [TASK], "workers": 1, "metrics": FEW_ATTACKS}))
    return ["run", "--config", str(config), "--out", str(directory / "runs"), "--leaderboard", str(directory / "leaderboard"),
            "--methods", *methods]  # fmt: skip


def _interleaved() -> list[str]:
    """original, retrain, then each tamperer followed by a clean method (one worker runs them in this order)."""
    names = [f"{TAMPERING}:{name}" for name in FAILS]
    clean = CLEAN * len(names)
    order = ["original", "retrain"]
    for i, name in enumerate(names):
        order += [name] + ([clean[i]] if clean[i] not in order else [])
    return order


@pytest.mark.slow
def test_tampering_plugins_change_no_other_cell_and_are_scored_on_the_true_data(tmp_path, cli_at_root):
    clean = cli_at_root(_args(tmp_path / "clean", ["original", "retrain", *CLEAN]))
    assert clean.returncode == 0, clean.stderr
    shutil.copytree(tmp_path / "clean" / "runs", tmp_path / "tampered" / "runs")  # its original and gold: reused
    for method in CLEAN:  # ... but the clean cells run again, after the tamperers
        shutil.rmtree(tmp_path / "tampered" / "runs" / "results" / TASK / method)
    tampered = cli_at_root(_args(tmp_path / "tampered", _interleaved()))
    assert tampered.returncode == 1, tampered.stderr  # as before: a failed cell makes the run exit 1
    assert "Traceback" not in tampered.stdout + tampered.stderr
    reference, numbers = board_numbers(tmp_path / "clean" / "leaderboard"), board_numbers(tmp_path / "tampered" / "leaderboard")
    for method in ["original", "retrain", *CLEAN]:
        assert numbers[(method, TASK)] == reference[(method, TASK)], method
    failed = yaml.safe_load((tmp_path / "tampered" / "leaderboard" / "leaderboard.json").read_text())["failed"]
    reasons = {f["method"]: f["error"] for f in failed}
    for name, fails in FAILS.items():
        if name == "WritesInputs":  # the inputs are mapped read-only: the write kills its worker, which is replaced
            assert "segmentation fault" in reasons[name], reasons.get(name)
        elif fails:
            assert "changed what cells share" in reasons[name], (name, reasons.get(name))
        else:  # it changed no weight: scored on the true data, it is the original model
            assert name not in reasons
            assert numbers[(name, TASK)] == reference[("original", TASK)], name
    assert "default dtype (torch.float32 -> torch.float64)" in reasons["SetsDefaultDtype"]
    assert "shapes test.y" in reasons["ZeroesLabels"] and "shapes val.y" in reasons["ZeroesLabels"]


def test_a_method_that_tampers_while_being_built_is_refused_before_training(tmp_path):
    runner = tiny_runner(tmp_path, ["finetune", f"{TAMPERING}:ZeroesLabelsWhenBuilt"])
    with pytest.raises(BenchmarkError, match="ZeroesLabelsWhenBuilt.*building it changed what cells share: shapes test.y"):
        runner.validate()
    labels = runner.artefacts.dataset(runner.spec.tasks[0]).test.y
    assert labels.any(), "the runner reads the dataset afresh after a tampering"
    assert runner.artefacts.tainted


def test_torch_state_changes_are_named_and_set_back():
    baseline = Baseline.take(Shared({}, {}))
    before = torch_state()
    torch.set_default_dtype(torch.float64)
    torch.set_grad_enabled(False)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = not torch.backends.cudnn.benchmark
    try:
        changes = baseline.changes(Shared({}, {}))
    finally:
        restore_state(baseline.state)
    assert torch_state() == before
    assert any("default dtype" in c for c in changes) and any("grad mode" in c for c in changes)
    assert any("deterministic algorithms" in c for c in changes) and any("cudnn.benchmark" in c for c in changes)


def test_a_tensor_digest_sees_one_changed_element_dtype_and_shape():
    x = torch.arange(12, dtype=torch.float32)
    assert digest(x) == digest(x.clone())
    changed = x.clone()
    changed[7] += 1
    assert digest(changed) != digest(x)
    assert digest(x.view(3, 4)) != digest(x)
    assert digest(x.to(torch.float64)) != digest(x)
    assert digest(x.to(torch.bfloat16)) != digest(x.to(torch.float16))


def test_a_channels_last_weight_is_digested_in_place_and_a_change_is_seen():
    weight = torch.randn(8, 3, 5, 5).to(memory_format=torch.channels_last)
    assert not weight.is_contiguous()
    same, changed = weight.clone(), weight.clone()
    changed[3, 1, 2, 4] += 1
    assert digest(same) == digest(weight) != digest(changed)
    assert digest(weight) != digest(weight.contiguous())  # the layout is part of what is shared
