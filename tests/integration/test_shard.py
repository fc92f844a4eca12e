"""Shards: slices of one grid run apart (on several machines) into one shared store."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.errors import BenchmarkError
from benchmark.run.spec import Shard
from tests.helpers import board_numbers

TASK = "shapes/g2-r0.9-skew1.0"


def test_shards_are_disjoint_and_cover_the_plan():
    cells = list(range(10))
    slices = [Shard(i, 3).take(cells) for i in (1, 2, 3)]
    assert slices == [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]
    assert Shard(1, 1).take(cells) == cells and Shard(4, 12).take(cells) == [3]


@pytest.mark.parametrize("value", ["0/2", "3/2", "1/0", "a/b", "2", "1/2/3", "-1/2", ""])
def test_a_bad_shard_is_one_line(value):
    with pytest.raises(BenchmarkError, match=r"^shard must be I/N with 1 <= I <= N \(e\.g\. 2/8\), not "):
        Shard.parse(value)


def test_a_bad_shard_flag_stops_the_run_before_any_work(cli, tiny_config):
    code, _, err = cli("run", "--config", str(tiny_config), "--shard", "3/2")
    assert code == 2 and err.strip() == "error: shard must be I/N with 1 <= I <= N (e.g. 2/8), not '3/2'"
    assert not Path("runs").exists()


@pytest.mark.slow
def test_two_shards_merged_give_the_sequential_leaderboard(cli, tiny_config):
    run = ("run", "--config", str(tiny_config), "--tasks", TASK, "--methods", "original", "finetune", "--workers", "1")
    assert cli(*run, "--out", "sequential", "--leaderboard", "board-sequential")[0] == 0
    ran = []
    for shard in ("1/2", "2/2"):  # one after the other, as two array jobs on one shared directory
        code, out, err = cli(*run, "--out", "shared", "--leaderboard", f"board-{shard[0]}", "--shard", shard)
        assert code == 0, err
        ran.append(int(out.split(" cells run")[0].split()[-1]))
    assert ran == [2, 1]  # retrain, original, finetune: every cell run once, by one shard
    assert cli("leaderboard", "--runs", "shared", "--leaderboard", "merged")[0] == 0
    assert board_numbers(Path("merged")) == board_numbers(Path("board-sequential"))
