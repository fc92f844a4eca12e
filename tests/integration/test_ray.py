"""``--executor ray``: the tiny grid as Ray tasks on a local Ray instance gives the leaderboard
of the sequential local pool; a hung cell is cancelled at its timeout; no Ray, one line."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from benchmark.cli import main
from benchmark.errors import BenchmarkError
from benchmark.run.pool import run_pool
from benchmark.run.ray_executor import run_ray
from benchmark.run.runner import Outcome, Runner
from benchmark.run.spec import build_spec
from tests.conftest import TINY
from tests.helpers import board_numbers
from tests.integration.test_faults import METHODS, PLUGINS, TASK

CPUS = 2  # Ray workers of the local instance


def _runner(directory: Path, methods: list[str] = METHODS) -> Runner:
    spec = build_spec({**TINY, "out": str(directory / "runs")}, methods=methods, tasks=[TASK])
    return Runner(spec)


def _board(directory: Path) -> None:
    assert main(["leaderboard", "--runs", str(directory / "runs"), "--leaderboard", str(directory / "leaderboard")]) == 0


@pytest.fixture(scope="module")
def ray():
    ray = pytest.importorskip("ray", reason="Ray is an optional extra (pip install 'unlearn-bench[ray]') and is not installed")
    ray.init(address="local", num_cpus=CPUS, include_dashboard=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def ray_run(ray, tmp_path_factory) -> tuple[Path, list[Outcome]]:
    """The tiny grid run as Ray tasks: its directory and the outcomes in the order ``done`` saw them."""
    directory = tmp_path_factory.mktemp("ray")
    seen: list[Outcome] = []
    runner = _runner(directory)
    outcomes = run_ray(runner, runner.plan(), seen.append, timeout=600)
    assert outcomes == seen
    return directory, outcomes


@pytest.mark.slow
def test_ray_tasks_give_the_leaderboard_of_the_sequential_pool(ray, ray_run, tmp_path):
    directory, outcomes = ray_run
    assert sorted(o.status for o in outcomes) == ["done"] * len(METHODS), [o.error for o in outcomes]
    assert ray.is_initialized()  # a Ray the caller connected is left alone
    # a Ray task and a CPU worker of the pool both compute on one thread: the same numbers
    runner = _runner(tmp_path)
    pooled = run_pool(runner, runner.plan(), 1, lambda outcome: None, lambda *progress: None, timeout=600)
    assert sorted(o.status for o in pooled) == ["done"] * len(METHODS), [o.error for o in pooled]
    _board(directory)
    _board(tmp_path)
    assert board_numbers(directory / "leaderboard") == board_numbers(tmp_path / "leaderboard")
    again = _runner(directory)
    assert [o.status for o in run_ray(again, again.plan(), lambda outcome: None)] == ["cached"] * len(METHODS)


@pytest.mark.slow
def test_a_cell_past_its_timeout_is_cancelled_and_stored_as_failed(ray_run):
    directory, _ = ray_run  # its original is in the store: the hung cell starts at once
    runner = _runner(directory, methods=["retrain", f"{PLUGINS}:Hangs"])
    hung = [c for c in runner.plan() if c.method.name == "Hangs"]
    started = time.monotonic()
    (outcome,) = run_ray(runner, hung, lambda outcome: None, timeout=3)
    assert time.monotonic() - started < 60
    assert outcome.status == "failed" and outcome.error == "timed out after 3 s (the timeout setting)"
    assert runner.stored(hung[0]).stage == "worker"


DIES_ONCE = """
import os
from pathlib import Path

from benchmark import UnlearningMethod


class DiesOnce(UnlearningMethod):
    \"\"\"Kills its worker process the first time it runs (a lost node, as Ray sees it).\"\"\"

    reads_retain = False

    def __init__(self, model, original, data, *, epochs: int = 0, **common):
        super().__init__(model, original, data, epochs=epochs, **common)

    def unlearn(self):
        mark = Path(__file__).with_suffix(".died")
        if not mark.exists():
            mark.touch()
            os._exit(1)
"""


@pytest.mark.slow
def test_a_cell_whose_worker_dies_is_retried_by_ray(ray_run, tmp_path):
    directory, _ = ray_run  # its original is in the store
    plugin = tmp_path / "dies_once.py"
    plugin.write_text(DIES_ONCE)
    runner = _runner(directory, methods=["retrain", f"{plugin}:DiesOnce"])
    cells = [c for c in runner.plan() if c.method.name == "DiesOnce"]
    (outcome,) = run_ray(runner, cells, lambda outcome: None, timeout=300)
    assert plugin.with_suffix(".died").exists()
    assert outcome.status == "done", outcome.error


def test_without_ray_the_error_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    runner = _runner(tmp_path)
    with pytest.raises(BenchmarkError) as error:
        run_ray(runner, runner.plan(), lambda outcome: None)
    assert str(error.value) == "--executor ray needs Ray: pip install 'unlearn-bench[ray]'"


RENDEZVOUS = """
import os
import time
from pathlib import Path

from methods.finetune import Finetune


class Rendezvous(Finetune):
    \"\"\"Finetune whose trials wait (a minute at most) until two processes have begun one, so
    that a Ray task that starts late still finds trials left (else the first may take them all).\"\"\"

    def unlearn(self):
        arrived = Path(__file__).with_suffix(".arrived")
        arrived.mkdir(exist_ok=True)
        (arrived / str(os.getpid())).touch()
        deadline = time.monotonic() + 60
        while len(list(arrived.iterdir())) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        super().unlearn()
"""


def test_ray_tasks_share_one_tuning_study_and_split_its_trials(ray, tmp_path):
    from benchmark.tune.study import open_study, plan_studies, settled
    from benchmark.tune.tuning import tune

    plugin = tmp_path / "rendezvous.py"
    plugin.write_text(RENDEZVOUS)
    config = {**TINY, "out": str(tmp_path / "runs"), "tuned": str(tmp_path / "tuned"), "tune": {"trials": 6}, "hparams": {}}
    spec = build_spec(config, methods=[f"{plugin}:Rendezvous"], tasks=[TASK])
    result = tune(spec, CPUS, lambda line: None, lambda n: None, ray=True)
    (plan,), _ = plan_studies(spec)
    slots = settled(open_study(plan))
    assert sorted(slots) == list(range(6)) and len(open_study(plan).get_trials()) == 6  # every slot once
    assert len({t.user_attrs["worker"] for t in slots.values()}) == CPUS  # both Ray tasks ran trials
    assert list(result.entries) == [("Rendezvous", TASK)] and (tmp_path / "tuned" / "shapes.yaml").is_file()
