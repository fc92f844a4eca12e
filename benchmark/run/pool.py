"""Executing a plan on a pool of worker processes: one per GPU, or several CPU workers
sharing the cores (anomalib's parallel runner). The original models train first (every cell
starts from one); then every cell is queued at once, the gold cells first, so that no worker
idles at the end of the gold cells (a method's cell does not need its gold to run: scoring
pairs them afterwards).

Workers are spawned (not forked) and rebuild what they need from the picklable spec; each
sees one GPU (``CUDA_VISIBLE_DEVICES``) or ``cores / workers`` CPU threads.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, Callable

_runner: Any = None  # the Runner of this worker process, built on its first job


def _init_worker(devices: Any, threads: int) -> None:
    if devices is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(devices.get())
    import torch

    torch.set_num_threads(threads)


def _worker_runner(spec: Any) -> Any:
    global _runner
    if _runner is None or _runner.spec != spec:
        from benchmark.run.runner import Runner

        _runner = Runner(spec)
    return _runner


def _train_original(spec: Any, task: Any, seed: int) -> None:
    _worker_runner(spec).original(task, seed)


def _execute(spec: Any, cell: Any) -> Any:
    return _worker_runner(spec).execute(cell)


def default_workers(uses_cuda: bool) -> int:
    if uses_cuda:
        import torch

        return max(1, torch.cuda.device_count())
    return max(1, min(os.cpu_count() or 1, 4))


def run_pool(runner: Any, cells: list, workers: int, done: Callable[[Any], None]) -> list:
    """Run ``cells`` on ``workers`` processes; ``done(outcome)`` is called as each finishes."""
    spec = runner.spec
    context = mp.get_context("spawn")
    devices = None
    if spec.runtime.uses_cuda:
        devices = context.Queue()
        for index in range(workers):
            devices.put(index % max(1, _cuda_count()))
    threads = max(1, (os.cpu_count() or 1) // workers)
    outcomes = []
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(devices, threads)) as pool:
        originals = {runner.original_key(c.task, c.seed): (c.task, c.seed) for c in cells}
        for future in as_completed([pool.submit(_train_original, spec, t, s) for t, s in originals.values()]):
            future.result()
        ordered = sorted(cells, key=lambda c: not c.method.cls.is_gold)
        for future in as_completed([pool.submit(_execute, spec, c) for c in ordered]):
            outcome = future.result()
            outcomes.append(outcome)
            done(outcome)
    return outcomes


def _cuda_count() -> int:
    import torch

    return torch.cuda.device_count()
