"""The CLI end to end on a tiny configuration, and its answers to bad input."""

import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import read_json
from tests.helpers import one_line_error, workers_of

PLUGIN = '''
from torch.nn import functional as F
from benchmark import UnlearningMethod

class SmoothFinetune(UnlearningMethod):
    description = "fine-tune on R with label smoothing"
    def __init__(self, model, original, data, *, smoothing: float = 0.1, epochs: int = 1, **common):
        super().__init__(model, original, data, epochs=epochs, **common)
    def train_dataloader(self):
        return self.loader("retain")
    def training_step(self, batch, batch_idx):
        return F.cross_entropy(self.model(batch.x), batch.y, label_smoothing=self.hparams.smoothing)

class Broken(UnlearningMethod):
    def __init__(self, model, original, data, *, epochs: int = 1, **common):
        super().__init__(model, original, data, epochs=epochs, **common)
    def train_dataloader(self):
        return self.loader("forget")
    def training_step(self, batch, batch_idx):
        raise RuntimeError("boom")

class NotAMethod:
    pass
'''


SCORECARD = [
    "retain_acc", "forget_acc", "test_acc", "group_acc/2", "worst_group_acc", "forget_group_test_acc", "group_acc_gap",
    "equalized_odds", "demographic_parity", "ece", "mia_forget_nonmember", "mia_auc", "mia_balanced_forget_nonmember",
    "mia_balanced_auc", "mi_feature_group", "mi_feature_group_se", "mi_feature_group_original", "mi_feature_group_gold",
    "mi_calibration_error", "mi_calibration_error_se", "fairness_gap", "pgd_acc", "pgd_worst_group_acc",
    "autoattack_reduced_acc", "autoattack_reduced_worst_group_acc", "avg_gap", "tow", "unlearn_seconds",
    "speedup_vs_gold",
]


@pytest.fixture
def plugin(tmp_path: Path) -> Path:
    path = tmp_path / "my_method.py"
    path.write_text(PLUGIN)
    return path


@pytest.mark.slow
def test_tiny_benchmark_end_to_end(cli, tiny_config, plugin):
    code, out, err = cli("run", "--config", str(tiny_config), "--methods", "original", "finetune", f"{plugin}:SmoothFinetune")
    assert code == 0, err
    board = read_json(Path("leaderboard/leaderboard.json"))
    assert board["schema_version"] == 5
    assert board["versions"]["cpu"].endswith(torch.backends.cpu.get_cpu_capability())  # CPU numerics depend on it
    assert [t["skew"] for t in sorted(board["tasks"], key=lambda t: str(t["skew"]))] == [0.5, 1.0, "uniform"]
    methods = {"original", "finetune", "SmoothFinetune", "retrain"}
    for t in board["tasks"]:
        entries = [e for e in board["entries"] if e["task"] == t["id"]]
        assert {e["method"] for e in entries} == methods  # the gold was added
        for e in entries:
            for name in ("retain_acc", "forget_acc", "test_acc", "worst_group_acc", "forget_group_test_acc",
                         "unlearn_seconds", "speedup_vs_gold", "group_acc/2"):
                assert e["metrics"][name]["n"] == 1
            assert e["rank"] is None if e["method"] == "retrain" else e["rank"] >= 1
            assert e["method"] == "retrain" or "test_acc" in e["gap_to_gold"]
    results = sorted(Path("runs/results").rglob("seed-0.json"))
    assert len(results) == 12 and len(list(Path("runs/results").rglob("*.preds.npz"))) == 12
    cell = read_json(Path("runs/results/shapes/g2-r0.9-skew1.0/SmoothFinetune/seed-0.json"))
    assert cell["hparams"]["smoothing"] == 0.1 and cell["task"]["forget_group"] == 2
    assert cell["metric_settings"]["attacks"]["eps"] == 2 / 255  # the shapes dataset's budget
    assert Path("leaderboard/leaderboard.md").exists() and Path("leaderboard/index.html").exists()

    # every entry carries every metric
    names = set(board["entries"][0]["metrics"])
    assert all(set(e["metrics"]) == names for e in board["entries"])
    assert set(SCORECARD) <= names

    # rescore reproduces every stored metric exactly from the predictions files
    code, out, _ = cli("rescore", "--runs", "runs", "--leaderboard", "leaderboard")
    assert code == 0 and "12 result files rescored" in out and "0 had a different stored value" in out
    assert read_json(Path("leaderboard/leaderboard.json"))["entries"] == board["entries"]

    # a cell whose predictions are gone is named, keeps its stored numbers, and nothing is dropped
    lost = Path("runs/results/shapes/g2-r0.9-skew1.0/finetune/seed-0.preds.npz")
    lost.unlink()
    code, out, err = cli("rescore", "--runs", "runs", "--leaderboard", "leaderboard")
    assert code == 1 and f"not rescored: {lost.with_name('seed-0.json')}: its predictions file is missing" in err
    assert "11 result files rescored" in out
    kept = read_json(Path("leaderboard/leaderboard.json"))["entries"]
    assert _without_row_bootstrap(kept) == _without_row_bootstrap(board["entries"])
    # its TEST-row bootstrap needs the lost rows: not shown rather than made up
    (finetune,) = [e for e in kept if e["method"] == "finetune" and e["task"] == "shapes/g2-r0.9-skew1.0"]
    assert finetune["metrics"]["test_acc"]["boot"] is None and "test_acc" not in finetune["vs_gold"]

    # a second run recomputes that cell only, reuses every other and gives the same leaderboard
    code, out, _ = cli("run", "--config", str(tiny_config), "--methods", "original", "finetune", f"{plugin}:SmoothFinetune")
    assert code == 0 and "1 cells run, 11 reused" in out.replace("\n", " ")
    again = read_json(Path("leaderboard/leaderboard.json"))["entries"]
    assert without_cost(again) == without_cost(board["entries"])

    # the leaderboard is rebuilt from the result files alone
    Path("leaderboard/leaderboard.json").unlink()
    code, out, _ = cli("leaderboard", "--runs", "runs", "--leaderboard", "rebuilt")
    assert code == 0
    assert read_json(Path("rebuilt/leaderboard.json"))["entries"] == again


def without_cost(entries: list[dict]) -> list[dict]:
    """Entries without the timings (a recomputed cell takes its own time)."""
    cost = ("unlearn_seconds", "speedup_vs_gold")
    return [{**e, "metrics": {k: v for k, v in e["metrics"].items() if k not in cost},
             "gap_to_gold": {k: v for k, v in e["gap_to_gold"].items() if k not in cost}} for e in entries]


@pytest.mark.slow
def test_same_spec_and_seed_give_the_same_numbers(cli, tiny_config):
    args = ["run", "--config", str(tiny_config), "--methods", "finetune", "--tasks", "shapes/g2-r0.9-skew1.0"]
    assert cli(*args, "--out", "a", "--leaderboard", "la")[0] == 0
    assert cli(*args, "--out", "b", "--leaderboard", "lb")[0] == 0
    for method in ("retrain", "finetune"):
        a = read_json(Path(f"a/results/shapes/g2-r0.9-skew1.0/{method}/seed-0.json"))
        b = read_json(Path(f"b/results/shapes/g2-r0.9-skew1.0/{method}/seed-0.json"))
        strip = lambda m: {k: v for k, v in m.items() if k not in ("unlearn_seconds", "speedup_vs_gold")}
        assert strip(a["metrics"]) == strip(b["metrics"])


@pytest.mark.slow
def test_a_failing_method_loses_nothing_else(cli, tiny_config, plugin):
    code, out, err = cli("run", "--config", str(tiny_config), "--tasks", "shapes/g2-r0.9-skew1.0",
                         "--methods", "original", f"{plugin}:Broken")
    assert code == 1
    assert "Broken" in err and "RuntimeError: boom" in err and "Traceback" not in err + out
    board = read_json(Path("leaderboard/leaderboard.json"))
    assert {e["method"] for e in board["entries"]} == {"original", "retrain"}


def test_unknown_method(cli):
    assert "unknown method 'nope'" in one_line_error(cli, "run", "--methods", "nope")


def test_unknown_task(cli):
    assert "unknown task suite 'nope'" in one_line_error(cli, "run", "--tasks", "nope")
    assert "unknown task 'shapes/nope'" in one_line_error(cli, "run", "--tasks", "shapes/nope")


def test_missing_plugin_file(cli):
    assert "plugin file not found" in one_line_error(cli, "run", "--methods", "missing.py:Thing")


def test_plugin_without_the_class(cli, plugin):
    assert "has no 'Nothing'" in one_line_error(cli, "run", "--methods", f"{plugin}:Nothing")


def test_plugin_class_that_is_not_a_method(cli, plugin):
    assert "not an UnlearningMethod" in one_line_error(cli, "run", "--methods", f"{plugin}:NotAMethod")


def test_plugin_that_does_not_import(cli, tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import not_a_module_anywhere\n")
    assert "failed to import" in one_line_error(cli, "run", "--methods", f"{bad}:X")


@pytest.mark.parametrize("skew", ["1.5", "-0.2", "abc"])
def test_skew_outside_unit_interval(cli, skew):
    assert "skew must be" in one_line_error(cli, "run", "--tasks", f"shapes:skew={skew}")


def test_bad_config_values(cli, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("methods: [finetune]\nhparams: {finetune: {lrr: 1}}\n")
    assert "no hyper-parameter 'lrr'" in one_line_error(cli, "run", "--config", str(cfg))
    cfg.write_text("colour: red\n")
    assert "unknown setting colour" in one_line_error(cli, "run", "--config", str(cfg))
    cfg.write_text("seeds: [a]\n")
    assert "seeds must be" in one_line_error(cli, "run", "--config", str(cfg))
    cfg.write_text("tasks: [shapes]\n  bad: [\n")
    assert "not valid YAML" in one_line_error(cli, "run", "--config", str(cfg))
    cfg.write_text("metrics: {attacks: {epsilon: 0.1}}\n")
    assert "bad metrics settings" in one_line_error(cli, "run", "--config", str(cfg))
    assert "config file not found" in one_line_error(cli, "run", "--config", "nowhere.yaml")


def test_forget_set_larger_than_the_group(cli, tiny_config):
    line = one_line_error(cli, "run", "--config", str(tiny_config), "--tasks", "shapes:forget_size=100000")
    assert "forget size" in line or "only" in line


def test_leaderboard_without_results(cli):
    assert "no results" in one_line_error(cli, "leaderboard", "--runs", "empty")


def test_list(cli):
    code, out, _ = cli("list", "methods")
    assert code == 0 and all(m in out for m in ("original", "retrain", "finetune", "neggrad", "random_label"))
    code, out, _ = cli("list", "tasks")
    assert code == 0 and "shapes/g2-r0.9-skew1.0" in out


def test_console_script_and_help():
    script = str(Path(sys.executable).parent / "unlearn-bench")
    for args in (["--help"], ["run", "--help"], ["list", "--help"], ["leaderboard", "--help"]):
        done = subprocess.run([script, *args], capture_output=True, text=True)
        assert done.returncode == 0 and "usage: unlearn-bench" in done.stdout
    done = subprocess.run([script, "run", "--methods", "nope"], capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.startswith("error: unknown method") and "Traceback" not in done.stderr


def test_an_output_directory_that_cannot_be_written_is_named_before_any_work(cli, tiny_config):
    Path("a-file").write_text("")
    line = one_line_error(cli, "run", "--config", str(tiny_config), "--methods", "original", "--out", "a-file/runs")
    assert "cannot write to the output directory a-file/runs" in line
    line = one_line_error(cli, "run", "--config", str(tiny_config), "--methods", "original", "--leaderboard", "a-file/board")
    assert "cannot write to the leaderboard directory a-file/board" in line
    assert not Path("runs/cache/models").exists()


def test_a_full_disk_is_named_before_any_work(cli, tiny_config, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10 << 30, (10 << 30) - (5 << 20), 5 << 20))
    line = one_line_error(cli, "run", "--config", str(tiny_config), "--methods", "original")
    assert "only 5 MiB free on the disk of runs" in line


def test_a_failure_while_saving_is_the_cells_failure(tmp_path, monkeypatch):
    import errno

    from benchmark.run.store import Store
    from tests.helpers import cell, tiny_runner

    runner = tiny_runner(tmp_path, ["original"])
    real = Store.write

    def full(self, path, writer):
        if path.name.endswith(".preds.npz"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, path, writer)

    monkeypatch.setattr(Store, "write", full)
    outcome = runner.cells.execute(cell(runner, "original"))
    assert outcome.status == "failed" and outcome.error.startswith("disk full while saving")
    assert outcome.record is not None and outcome.record.stage == "saving"


def test_a_cells_key_follows_the_plugins_source_and_the_resolved_runtime(tmp_path, plugin):
    from tests.helpers import cell, tiny_runner

    def key(**config) -> str:
        runner = tiny_runner(tmp_path, [f"{plugin}:SmoothFinetune"], **config)
        return runner.index.key(cell(runner, "SmoothFinetune"))

    before = key()
    assert key(runtime={"precision": "32-true", "accelerator": "cpu"}) == before  # 'auto' on the CPU is this
    plugin.write_text(plugin.read_text().replace("label_smoothing=self", "label_smoothing=0.0 + self"))
    assert key() != before  # an edited loss is a new cell


def test_every_engine_subpackage_is_installed():
    """A non-editable install (README command 1) must carry benchmark/run, benchmark/data, ..."""
    import tomllib

    import setuptools

    root = Path(__file__).resolve().parents[2]
    include = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    installed = set(setuptools.find_packages(root, include=include))
    engine = {".".join(p.parent.relative_to(root).parts) for p in (root / "benchmark").rglob("__init__.py")}
    assert engine <= installed and {"methods", "tasks"} <= installed


def _interrupt_once_a_worker_runs(done: threading.Event, limit: float = 180) -> None:
    """SIGINT to this process as soon as it has a new child, the run's worker (polled, not on a
    timer: a loaded machine starts slower), unless the run ended first."""
    deadline, before = time.monotonic() + limit, set(workers_of(os.getpid()))
    while not done.is_set() and time.monotonic() < deadline:
        if set(workers_of(os.getpid())) - before:
            os.kill(os.getpid(), signal.SIGINT)
            return
        time.sleep(0.05)


@pytest.mark.slow
def test_ctrl_c_with_one_worker_stops_the_run_with_one_line(cli, tiny_config):
    """SIGINT to the main process mid-run: its worker is stopped, one line, exit 130 (it was exit 1, silent)."""
    done = threading.Event()
    interrupt = threading.Thread(target=_interrupt_once_a_worker_runs, args=(done,), daemon=True)
    interrupt.start()
    try:
        code, _, err = cli("run", "--config", str(tiny_config), "--methods", "finetune", "--tasks", "shapes/g2-r0.9-skew1.0", "--workers", "1")
    finally:
        done.set()
        interrupt.join()
    assert code == 130, err
    assert err.strip() == "stopped by SIGINT: finished cells are kept; run the same command again to resume"
    assert not multiprocessing.active_children()


def test_ctrl_c_while_the_pool_starts_its_workers_leaves_no_process_behind(cli, tiny_config, monkeypatch):
    """SIGINT just after the first worker has started, before the scorer: the started worker is
    stopped too (it was left running, unknown to the pool, when the signal landed mid-start)."""
    from benchmark.run import pool

    class InterruptedAfterStart(pool._Worker):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(pool, "_Worker", InterruptedAfterStart)
    code, _, err = cli("run", "--config", str(tiny_config), "--methods", "finetune", "--tasks", "shapes/g2-r0.9-skew1.0", "--workers", "1")
    assert code == 130, err
    assert err.strip() == "stopped by SIGINT: finished cells are kept; run the same command again to resume"
    assert not multiprocessing.active_children()


def _without_row_bootstrap(entries: list[dict]) -> list[dict]:
    """Entries less what rests on the per-sample predictions (the bootstrap over TEST rows)."""
    return [{**e, "metrics": {k: {**v, "boot": None} for k, v in e["metrics"].items()}, "vs_gold": None, "like_gold": None} for e in entries]


def test_the_summary_counts_a_failed_cell_that_ran_as_run():
    from types import SimpleNamespace

    from rich.console import Console

    from benchmark.cli import _summary

    console = Console(width=200, record=True)
    # a re-run: the gold reused from the store, the cell that failed before run again and failed again
    outcomes = [SimpleNamespace(status="cached"), SimpleNamespace(status="failed")]
    failed = _summary(outcomes, SimpleNamespace(out=Path("runs")), console)
    assert failed == [outcomes[1]]
    assert console.export_text().strip() == "1 cells run, 1 reused from runs; of those run, 1 failed"
    outcomes = [SimpleNamespace(status=s) for s in ("done", "failed", "cached", "cached")]
    _summary(outcomes, SimpleNamespace(out=Path("runs")), console)
    assert console.export_text().strip() == "2 cells run, 2 reused from runs; of those run, 1 failed"
