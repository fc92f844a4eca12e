"""The Python API (benchmark/api.py): a run from a notebook gives the outcomes, the records and
the leaderboard the CLI would have written."""

from __future__ import annotations

import json

import pytest

from benchmark import Benchmark, BenchmarkError
from tests.conftest import TINY

TASK = "shapes/g2-r0.9-skew1.0"


@pytest.mark.slow
def test_a_run_from_python_returns_its_records_and_writes_the_leaderboard(tmp_path):
    settings = {**TINY, "tasks": [TASK], "workers": 1}
    benchmark = Benchmark(settings, methods=["original"], out=str(tmp_path / "runs"), leaderboard=str(tmp_path / "board"))
    result = benchmark.run()
    assert not result.failed and result.reused == 0
    assert sorted(r.method for r in result.records) == ["original", "retrain"]  # the gold comes with it
    assert {(e.method, e.task) for e in result.board.entries} == {("original", TASK), ("retrain", TASK)}
    written = json.loads((tmp_path / "board" / "leaderboard.json").read_text())
    assert sorted(e["method"] for e in written["entries"]) == ["original", "retrain"]
    again = Benchmark(settings, methods=["original"], out=str(tmp_path / "runs"), leaderboard=str(tmp_path / "board")).run()
    assert again.reused == 2
    assert [e.metrics for e in again.board.entries] == [e.metrics for e in result.board.entries]


def test_bad_settings_are_one_error_line():
    with pytest.raises(BenchmarkError, match="unknown method 'nosuch'"):
        Benchmark(methods=["nosuch"], tasks=[TASK])
    with pytest.raises(BenchmarkError, match="executor must be one of local, ray"):
        Benchmark(TINY, methods=["original"], tasks=[TASK]).execute("dask")
