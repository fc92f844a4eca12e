"""Fault injection: each test runs the real CLI on the tiny task and does to it what a hostile
environment does (kills, preemption, corrupt files, broken plugins, a second run on the same
directory); every fault must end in a named per-cell failure or a repair, with nothing
finished lost. A run that is killed, signalled or raced is a subprocess; the others call the
same ``main`` in this process (``cli_at_root``)."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import TINY
from tests.helpers import alive, board_numbers, workers_of

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = ROOT / "tests" / "faulty_methods.py"
TASK = "shapes/g2-r0.9-skew1.0"
METHODS = ["original", "retrain", "finetune"]


def _config(directory: Path) -> Path:
    path = directory / "tiny.yaml"
    path.write_text(yaml.safe_dump({**TINY, "tasks": [TASK], "workers": 1}))
    return path


def _args(directory: Path, *extra: str, methods: list[str] = METHODS) -> list[str]:
    return [
        "run", "--config", str(_config(directory)), "--out", str(directory / "runs"),
        "--leaderboard", str(directory / "leaderboard"), "--methods", *methods, *extra,
    ]  # fmt: skip


def _command(directory: Path, *extra: str, methods: list[str] = METHODS) -> list[str]:
    return [sys.executable, "-m", "benchmark.cli", *_args(directory, *extra, methods=methods)]


def run(directory: Path, *extra: str, methods: list[str] = METHODS) -> subprocess.CompletedProcess:
    return subprocess.run(_command(directory, *extra, methods=methods), cwd=ROOT, capture_output=True, text=True, timeout=600)


def numbers(directory: Path) -> dict:
    return board_numbers(directory / "leaderboard")


def no_traceback(result: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in result.stdout + result.stderr, result.stderr


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, float]:
    """An uninterrupted run: its directory and how long it took."""
    directory = tmp_path_factory.mktemp("reference")
    started = time.monotonic()
    result = run(directory)
    assert result.returncode == 0, result.stderr
    return directory, time.monotonic() - started


def _kill_at(directory: Path, moment: float) -> None:
    """Starts a run, SIGKILLs it after ``moment`` seconds and waits until its orphaned workers are gone."""
    process = subprocess.Popen(_command(directory), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(moment)
    children = workers_of(process.pid)
    process.send_signal(signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + 15
    while any(map(alive, children)) and time.monotonic() < deadline:  # orphaned workers exit on their own
        time.sleep(0.5)
    assert not any(map(alive, children))


def test_sigkill_at_random_moments_then_resume_gives_the_same_leaderboard(tmp_path, reference):
    """The run is killed three times in a row, at random moments, before it may finish."""
    directory, duration = reference
    draw = random.Random(0)
    for _ in range(3):
        _kill_at(tmp_path, draw.uniform(2.0, duration * 0.9))
    resumed = run(tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    no_traceback(resumed)
    assert numbers(tmp_path) == numbers(directory)


def test_sigterm_stops_every_process_and_keeps_finished_cells(tmp_path):
    process = subprocess.Popen(_command(tmp_path), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # stop it once a cell is finished and workers are busy (polled: a loaded machine starts slower)
    deadline, children = time.monotonic() + 180, []
    while time.monotonic() < deadline and process.poll() is None:
        children = workers_of(process.pid)
        if children and list((tmp_path / "runs" / "results").rglob("seed-*.json")):
            break
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 143, err
    assert "stopped by SIGTERM" in err and "Traceback" not in out + err
    assert children and not any(map(alive, children))
    assert not list((tmp_path / "runs").rglob("*.lock"))
    resumed = run(tmp_path)
    assert resumed.returncode == 0 and "reused" in resumed.stdout


def test_broken_and_hung_plugins_fail_their_cells_and_the_rest_is_scored(tmp_path, reference, cli_at_root):
    directory, _ = reference
    shutil.copytree(directory / "runs", tmp_path / "runs")  # the original and the gold are there already
    broken = ("Diverges", "Raises", "Wraps", "Halves", "Hangs")  # all but Hangs fail in their first step
    result = cli_at_root(_args(tmp_path, "--timeout", "8", methods=[*METHODS, *(f"{PLUGINS}:{name}" for name in broken)]))
    assert result.returncode == 1
    no_traceback(result)
    reasons = {line.split(":", 1)[1].split("·")[0].strip(): line for line in result.stderr.splitlines() if line.startswith("error:")}
    assert set(reasons) == set(broken)
    assert "non-finite loss" in reasons["Diverges"]
    assert "RuntimeError: a bug in the plugin's loss" in reasons["Raises"]
    assert "replaced self.model with a Sequential" in reasons["Wraps"]
    assert "torch.float16" in reasons["Halves"]
    assert "timed out after 8 s" in reasons["Hangs"]
    board = json.loads((tmp_path / "leaderboard" / "leaderboard.json").read_text())
    assert {e["method"] for e in board["entries"]} == set(METHODS)
    assert {f["method"] for f in board["failed"]} == set(broken)
    page = (tmp_path / "leaderboard" / "leaderboard.md").read_text()
    assert "## Failed cells" in page and all(f"| {name} |" in page for name in broken)


def _corrupt(path: Path, how: str) -> None:
    if how == "truncate":
        path.write_bytes(path.read_bytes()[: max(1, path.stat().st_size // 2)])
    else:
        path.write_bytes(os.urandom(path.stat().st_size))


def test_corrupt_files_are_named_moved_aside_and_rebuilt(tmp_path, reference, cli_at_root):
    directory, _ = reference
    shutil.copytree(directory / "runs", tmp_path / "runs")
    runs = tmp_path / "runs"
    victims = {  # each file, and what is done to it
        "checkpoint": (next(runs.glob("cache/models/original-*.pt")), "garbage"),
        "result": (next(runs.glob("results/**/finetune/seed-0.json")), "truncate"),
        "predictions": (next(runs.glob("results/**/retrain/seed-0.preds.npz")), "truncate"),
        "dataset": (next(runs.glob("cache/datasets/*/train.x.npy")), "garbage"),
    }
    for path, how in victims.values():
        _corrupt(path, how)
    # a method not run before needs the original and the dataset: both are rebuilt
    result = cli_at_root(_args(tmp_path, methods=[*METHODS, "neggrad"]))
    assert result.returncode == 0, result.stderr
    no_traceback(result)
    for name, (path, _) in victims.items():
        target = path if name != "dataset" else path.parent
        assert f"{target}:" in result.stderr, (name, result.stderr)
    assert len(list((runs / "quarantine").rglob("*"))) >= 4
    expected = numbers(directory)
    found = numbers(tmp_path)
    assert {k: v for k, v in found.items() if k[0] != "neggrad"} == expected


def test_two_runs_on_one_directory_split_the_work(tmp_path, reference):
    directory, _ = reference
    methods = [*METHODS, "neggrad"]
    first = subprocess.Popen(_command(tmp_path, methods=methods), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    second = subprocess.Popen(_command(tmp_path, methods=methods), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    outputs = [p.communicate(timeout=600) for p in (first, second)]
    assert (first.returncode, second.returncode) == (0, 0), [o[1] for o in outputs]
    ran = [int(out.split(" cells run")[0].split()[-1]) for out, _ in outputs]
    assert sum(ran) == len(methods), ran  # each cell computed once
    board = json.loads((tmp_path / "leaderboard" / "leaderboard.json").read_text())
    assert {e["method"] for e in board["entries"]} == set(methods)
    assert {k: v for k, v in numbers(tmp_path).items() if k[0] in METHODS} == numbers(directory)


def test_a_subset_run_keeps_the_full_leaderboard(tmp_path, reference, cli_at_root):
    directory, _ = reference
    shutil.copytree(directory / "runs", tmp_path / "runs")
    # the precision as typed is not in the keys, only as resolved ('32-true' is what 'auto' is on the CPU)
    result = cli_at_root(_args(tmp_path, "--precision", "32-true", methods=["finetune"]))
    assert result.returncode == 0 and "0 cells run" in result.stdout
    assert numbers(tmp_path) == numbers(directory)


def test_cells_run_against_another_gold_are_refused(tmp_path, reference, cli_at_root):
    directory, _ = reference
    shutil.copytree(directory / "runs", tmp_path / "runs")
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump({**TINY, "datasets": {"shapes": {**TINY["datasets"]["shapes"], "n_train": 300}}}))
    result = cli_at_root(["run", "--config", str(changed), "--tasks", TASK, "--workers", "1", "--out", str(tmp_path / "runs"),
                          "--leaderboard", str(tmp_path / "leaderboard"), "--methods", "retrain"])  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "refused: finetune · shapes/g2-r0.9-skew1.0 · seed 0: its gold (retrain, seed 0)" in result.stderr
    board = json.loads((tmp_path / "leaderboard" / "leaderboard.json").read_text())
    assert {r["method"] for r in board["refused"]} == {"finetune", "original"}
    assert {e["method"] for e in board["entries"]} == {"retrain"}


def test_the_disk_estimate_covers_what_a_run_writes(reference):
    """The free space a run asks for before any work (``Runner.disk_need``) covers its models,
    predictions and records without the headroom (the dataset cache is written before the check)."""
    from benchmark import Benchmark
    from benchmark.run.store import HEADROOM

    directory, _ = reference
    written = sum(p.stat().st_size for p in (directory / "runs").rglob("*") if p.is_file())
    need = Benchmark(_config(directory), methods=METHODS, out=directory / "runs").runner().disk_need()
    assert 0 < written <= need - HEADROOM
