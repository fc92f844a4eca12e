"""The pool's schedule: a cell starts as soon as its own original exists."""

from __future__ import annotations

from collections import deque
from pathlib import Path
from types import SimpleNamespace

from benchmark.run.locks import Claims
from benchmark.run.pool import Job, Pool


class _Store:
    def __init__(self, root: Path) -> None:
        self.root = root

    def original(self, key: str) -> Path:
        return self.root / f"original-{key}.pt"


def _pool(tmp_path: Path) -> Pool:
    """A pool without workers, over a runner that knows nothing is cached."""
    pool = Pool.__new__(Pool)
    pool.runner = SimpleNamespace(store=_Store(tmp_path), original_key=lambda task, seed: f"{task}-{seed}", settled=lambda cell, any_status=False: None)
    pool.claims, pool.failed_originals = Claims(), {}
    return pool


def _jobs(tmp_path: Path) -> list[Job]:
    store = _Store(tmp_path)
    cells = {key: SimpleNamespace(task=key[0], seed=int(key[2]), label=key) for key in ("a-0", "b-0")}
    originals = [Job("original", cells[k], store.original(k)) for k in cells]
    return originals + [Job("cell", cells[k], tmp_path / f"{k}.json", k) for k in cells]


def test_a_cell_starts_while_another_original_still_trains(tmp_path):
    pool, (original_a, original_b, cell_a, cell_b) = _pool(tmp_path), _jobs(tmp_path)
    queue, waiting = deque([original_a, original_b, cell_a, cell_b]), deque()
    assert pool._next(queue, waiting, print) is original_a
    assert pool._next(queue, waiting, print) is original_b
    assert pool._next(queue, waiting, print) is None  # no original exists yet: no cell may start
    original_a.path.write_bytes(b"weights")  # a's original is done, b's still trains
    assert pool._next(queue, waiting, print) is cell_a
    assert list(queue) == [cell_b]


def test_the_cells_of_a_failed_original_are_released_to_fail(tmp_path):
    pool, (_, _, cell_a, _) = _pool(tmp_path), _jobs(tmp_path)
    pool.failed_originals["a-0"] = "it diverged"
    assert pool._ready(deque([cell_a])) == [cell_a]


def test_each_worker_sees_its_own_gpus(tmp_path):
    pool = _pool(tmp_path)
    pool.devices, pool.per_job = 4, 1
    assert [pool._gpus(i) for i in range(4)] == ["0", "1", "2", "3"]
    pool.per_job = 2  # a DDP job on 2 GPUs: two workers, a block each
    assert [pool._gpus(i) for i in range(3)] == ["0,1", "2,3", "0,1"]
    pool.devices = 0
    assert pool._gpus(0) is None
