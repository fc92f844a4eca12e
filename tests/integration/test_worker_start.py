"""How pool workers start (benchmark/run/pool.py ``worker_context``): forked where a forked child
can train, spawned where it cannot, with the same numbers either way."""

from __future__ import annotations

import pytest

from benchmark import Benchmark
from benchmark.run import pool
from tests.conftest import TINY
from tests.helpers import board_numbers

TASK = "shapes/g2-r0.9-skew1.0"


def test_a_forked_child_of_this_process_can_train():
    assert pool.fork_can_train()
    assert pool.worker_context(cuda=False).get_start_method() == "fork"


@pytest.mark.slow
def test_workers_spawned_where_a_fork_cannot_train_give_the_forked_workers_numbers(tmp_path, monkeypatch):
    """A process whose forked children cannot train (autograd's device threads started, as after
    training on a GPU) spawns its CPU workers instead of failing every cell."""
    started: list[str] = []
    choose = pool.worker_context

    def recorded(cuda: bool):
        context = choose(cuda)
        started.append(context.get_start_method())
        return context

    monkeypatch.setattr(pool, "worker_context", recorded)

    def run(name: str):
        settings = {**TINY, "tasks": [TASK], "workers": 1}
        return Benchmark(settings, methods=["finetune"], out=str(tmp_path / name), leaderboard=str(tmp_path / f"board-{name}")).run()

    forked = run("forked")
    monkeypatch.setattr(pool, "fork_can_train", lambda: False)
    spawned = run("spawned")
    assert started == ["fork", "spawn"]
    assert not forked.failed and not spawned.failed
    assert board_numbers(tmp_path / "board-spawned") == board_numbers(tmp_path / "board-forked")
