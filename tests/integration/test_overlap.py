"""The host half of scoring runs in the pool's scorer process while the device worker trains the
next cell: with one device worker and one scorer on cells of known cost, the cells take about
as long as the larger of the two sums, not their total. A cell measured before a run stopped
is only scored by the next one."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from benchmark.run.cells import CellRunner
from benchmark.run.pool import run_pool
from tests.helpers import tiny_runner

DEVICE_SECONDS = SCORE_SECONDS = 1.2  # the known cost added to each half of every cell


def _logged(method, kind: str, seconds: float, log: Path):
    """``method`` after sleeping ``seconds``, its (kind, start, end) appended to ``log``
    (from whichever process runs it: the workers are forked with the patch in place)."""

    def run(self, *args, **kwargs):
        start = time.time()
        time.sleep(seconds)
        try:
            return method(self, *args, **kwargs)
        finally:
            with log.open("a") as out:
                out.write(f"{kind} {start} {time.time()}\n")

    return run


@pytest.mark.slow
def test_scoring_overlaps_the_next_cells_training(tmp_path, monkeypatch):
    log = tmp_path / "intervals.txt"
    monkeypatch.setattr(CellRunner, "measure_cell", _logged(CellRunner.measure_cell, "device", DEVICE_SECONDS, log))
    monkeypatch.setattr(CellRunner, "score_cell", _logged(CellRunner.score_cell, "score", SCORE_SECONDS, log))
    runner = tiny_runner(tmp_path, ["original", "finetune"], seeds=[0, 1, 2])
    runner.validate()
    outcomes = run_pool(runner, runner.plan(), 1, lambda o: None, lambda *a: None, timeout=None)
    assert sorted(o.status for o in outcomes) == ["done"] * 9  # retrain, original, finetune x 3 seeds

    spans = [(kind, float(a), float(b)) for kind, a, b in (line.split() for line in log.read_text().splitlines())]
    device = sum(b - a for kind, a, b in spans if kind == "device")
    scoring = sum(b - a for kind, a, b in spans if kind == "score")
    wall = max(b for _, _, b in spans) - min(a for kind, a, _ in spans if kind == "device")  # the originals trained before
    longest_score = max(b - a for kind, a, b in spans if kind == "score")
    assert wall <= max(device, scoring) + longest_score + 2.0, (wall, device, scoring)
    assert wall < 0.8 * (device + scoring), (wall, device, scoring)
    overlapping = [
        (s, d) for s in spans if s[0] == "score" for d in spans if d[0] == "device" and d[1] < s[2] and s[1] < d[2]
    ]
    assert len(overlapping) >= 6  # the scorer worked while the device worker measured other cells


@pytest.mark.slow
def test_a_cell_measured_before_a_stop_is_only_scored_by_the_next_run(tmp_path):
    runner = tiny_runner(tmp_path, ["original"])
    cell = next(c for c in runner.plan() if c.method.name == "original")
    measured = runner.cells.execute(cell, score=False)  # the run stopped before its host half
    assert measured.status == "measured" and runner.index.settled(cell) is None and runner.index.settled(cell, any_status=True) is None
    outcomes = run_pool(runner, runner.plan(), 1, lambda o: None, lambda *a: None, timeout=None)
    (again,) = [o for o in outcomes if o.cell == cell]
    assert again.status == "done" and again.record.timings["unlearn_seconds"] == measured.record.timings["unlearn_seconds"]
    assert "mia_auc" in again.record.metrics and "pgd_acc" in again.record.metrics
