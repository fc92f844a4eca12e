"""Executing a plan on worker processes: one per GPU, or several CPU workers sharing the cores
(anomalib's parallel runner), each running one job at a time, and a scorer process beside them.

The original models are queued first, then every cell (the gold cells first); a cell starts
as soon as its own original exists. A device worker runs a cell up to the device half of its
scoring (predictions, features, attacks: ``Runner.measure_cell``) and takes the next cell; the
scorer process does the host half (MIU's forest MIA, the balanced MIA, the MI probes:
``Runner.score_cell``) meanwhile, so no device worker waits on scikit-learn; a device worker
with no cell ready to train (the last ones, say) takes host halves too. The forests' trees are
fitted in threads on every core, taking what the device workers leave free (all of them once
the last cells are trained; the trees are the same whatever the count). The parent process
owns the schedule:

- it claims each job before handing it out (benchmark/run/locks.py), so that several runs on
  one output directory split the work, and waits for jobs another run holds;
- a worker whose job outlives the timeout is killed and replaced, the job stored as failed;
  so is the job of a worker that dies (killed for memory, a crash in native code);
- on SIGTERM or SIGINT it stops every worker and releases its claims (finished work is in
  the store already); workers also exit on their own when the parent is gone.

With CUDA, workers are spawned (CUDA does not survive a fork) and rebuild what they need from
the picklable spec; each sees its GPU (``CUDA_VISIBLE_DEVICES``; a DDP job its block of N) and ``cores / workers`` CPU
threads. On the CPU they are forked from the parent, which has imported torch and Lightning
already (a spawned worker spends ~10 s importing them again), and each computes on ONE
thread: torch's CPU results depend on the thread count, so one thread per worker keeps the
numbers independent of ``--workers`` and of the machine's core count (one thread also keeps
OpenMP safe after a fork). Messages travel on one pipe per worker, so a worker killed
mid-message corrupts nothing but its own pipe.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Callable

from benchmark.run.locks import Claims
from benchmark.run.failure import reason
from benchmark.run.runner import Cell, Outcome, Runner
from benchmark.run.signals import raise_if_stopped

Progress = Callable[[int, str, int, int], None]  # (worker, what, done, total)
POLL = 1.0  # seconds between looks at timeouts, heartbeats and jobs other runs hold
CPU_THREADS = 1  # torch threads of a CPU worker (see above)
CPU_WORKERS = 8  # most CPU workers by default (one core each)
SCORERS = 1  # scorer processes (the host half of scoring)
DEVICE, SCORER = "device", "scorer"  # the two roles of a worker
#: what a worker's exit code most likely means
DEATHS = {
    -signal.SIGKILL: ", killed: out of memory?",
    -signal.SIGSEGV: ", a segmentation fault: a write to the dataset's inputs, which are read-only, or a crash in native code",
}


@dataclass
class Job:
    kind: str  # "original", "cell" (up to the device half of its scoring) or "score" (the host half)
    cell: Cell  # for an original: a cell of its task and seed
    path: Path  # what it produces: its lock is the claim
    needs: str = ""  # the key of the original it starts after (a cell's), or nothing


@dataclass
class Usage:
    """Where a run's time went: its wall time, the workers of each role, and per kind of job
    ("original", "cell", "score") the seconds workers spent on such jobs."""

    wall: float = 0.0
    workers: dict[str, int] = field(default_factory=lambda: {DEVICE: 0, SCORER: 0})
    busy: dict[str, float] = field(default_factory=lambda: {"original": 0.0, "cell": 0.0, "score": 0.0})


# -- the worker process ------------------------------------------------------------------


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(POLL)
        if os.getppid() != parent:
            os._exit(1)


def _worker_main(conn: Connection, spec: Any, devices: str | None, threads: int, parent: int, debug: bool, host_jobs: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides what a Ctrl-C stops
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a forked worker inherits the parent's handler
    if devices is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = devices
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    import torch

    torch.set_num_threads(threads)
    runner = Runner(spec, lambda what, done, total: conn.send(("progress", what, done, total)), debug=debug)
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        kind, cell = job
        if kind == "cell":
            conn.send(("cell", runner.execute(cell, score=False), runner.tainted))
            if runner.tainted:
                return  # the parent starts a fresh worker: nothing the cell did reaches the next one
            continue
        if kind == "score":
            from joblib import parallel_config

            with parallel_config(backend="threading", n_jobs=host_jobs):
                conn.send(("score", runner.score(cell)))
            continue
        try:
            runner.original(cell.task, cell.seed)
            conn.send(("original", ""))
        except Exception as err:  # noqa: BLE001 -- reported for the cells that need it
            conn.send(("original", reason(err, "training the original")))


# -- the parent ----------------------------------------------------------------------------


class _Worker:
    def __init__(self, context: Any, index: int, role: str, spec: Any, devices: str | None, threads: int, debug: bool, host_jobs: int) -> None:
        self.index, self.role = index, role
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_worker_main, args=(child, spec, devices, threads, os.getpid(), debug, host_jobs))
        self.process.start()
        child.close()
        self.job: Job | None = None
        self.started = 0.0

    def send(self, job: Job) -> None:
        self.job, self.started = job, time.monotonic()
        self.conn.send((job.kind, job.cell))

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.terminate()
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)
        self.conn.close()


class Pool:
    """Worker processes and the schedule of one run."""

    def __init__(self, runner: Runner, workers: int, progress: Progress, timeout: float | None, debug: bool = False,
                 usage: Usage | None = None) -> None:
        self.runner, self.progress, self.timeout, self.debug = runner, progress, timeout, debug
        cuda = runner.spec.runtime.uses_cuda
        self.context = mp.get_context("fork" if not cuda and "fork" in mp.get_all_start_methods() else "spawn")
        self.claims = Claims()
        self.threads = max(1, (os.cpu_count() or 1) // workers) if cuda else CPU_THREADS
        self.devices = _cuda_count() if cuda else 0
        self.per_job = runner.spec.runtime.processes if cuda else 1  # GPUs one job trains on (DDP: N)
        self.size, self.scorers = workers, SCORERS
        self.host_jobs = os.cpu_count() or 1  # threads for the forests' trees: every core, so that scoring takes what the workers leave
        self.workers: list[_Worker] = []  # started when there is work (not for a run that reuses every cell)
        self.failed_originals: dict[str, str] = {}
        self.scoring: deque[Job] = deque()  # measured cells waiting for a scorer (their claims held)
        self.usage = usage or Usage()
        self.usage.workers = {DEVICE: workers, SCORER: self.scorers}

    def _start(self, index: int) -> _Worker:
        """Worker ``index``: a device worker below ``size``, a scorer from there (one torch thread;
        it reads stored arrays only and never touches a device)."""
        if index < self.size:
            return _Worker(self.context, index, DEVICE, self.runner.spec, self._gpus(index), self.threads, self.debug, self.host_jobs)
        return _Worker(self.context, index, SCORER, self.runner.spec, None, 1, self.debug, self.host_jobs)

    def _gpus(self, index: int) -> str | None:
        """The GPUs worker ``index`` sees: its own block of ``per_job`` (one, or a DDP job's N)."""
        if not self.devices:
            return None
        blocks = max(1, self.devices // self.per_job)
        first = (index % blocks) * self.per_job
        return ",".join(str(first + i) for i in range(self.per_job))

    def close(self) -> None:
        for worker in self.workers:
            if worker.job is None and worker.process.is_alive():
                try:
                    worker.conn.send(None)
                except OSError:
                    pass
        for worker in self.workers:
            worker.stop()
        self.claims.release_all()

    # -- the plan -------------------------------------------------------------------
    def run(self, cells: list[Cell], done: Callable[[Outcome], None]) -> list[Outcome]:
        runner, outcomes = self.runner, []

        def finish(outcome: Outcome) -> None:
            outcomes.append(outcome)
            done(outcome)

        todo = runner.pending(cells, finish)
        if todo:
            self.workers = [self._start(i) for i in range(self.size + self.scorers)]
        cells = [Job("cell", c, runner.path(c), runner.original_key(c.task, c.seed)) for c in todo]
        originals = {job.needs: Job("original", job.cell, runner.store.original(job.needs)) for job in cells}
        self._drain([*originals.values(), *cells], finish)
        return outcomes

    def _ready(self, queue: deque) -> list[Job]:
        """The queued jobs that may start: originals, and cells whose original exists or failed
        (each original's file looked at once per call)."""
        known: dict[str, bool] = {}

        def ready(key: str) -> bool:
            if key not in known:
                known[key] = key in self.failed_originals or self.runner.store.original(key).exists()
            return known[key]

        return [job for job in queue if not job.needs or ready(job.needs)]

    def _drain(self, jobs: list[Job], finish: Callable[[Outcome], None]) -> None:
        queue, waiting = deque(jobs), deque()
        started = time.monotonic()
        while queue or waiting or self.scoring or any(w.job for w in self.workers):
            raise_if_stopped()
            self.claims.heartbeat()
            device_work = True  # until a device worker finds nothing ready
            for index, worker in enumerate(self.workers):
                if worker.job is None:
                    job = None
                    if worker.role == DEVICE and device_work:
                        job = self._next(queue, waiting, finish)
                        device_work = job is not None
                    if job is None and self.scoring:  # a device worker with nothing to train scores too
                        job = self.scoring.popleft()
                    if job is None:
                        continue
                    if not worker.process.is_alive():  # died while idle (killed from outside)
                        worker.stop()
                        self.workers[index] = worker = self._start(index)
                    worker.send(job)
            self._collect(finish)
        self.usage.wall += time.monotonic() - started

    def _next(self, queue: deque, waiting: deque, finish: Callable[[Outcome], None]) -> Job | None:
        """The next job this run may do: the first ready and unclaimed in the queue (a cell is
        ready as soon as its own original is, whatever other originals still train), then the
        first whose claim another run gave up. Jobs another run finished meanwhile are finished here."""
        for job in self._ready(queue):
            queue.remove(job)
            if self._finished_elsewhere(job, finish):
                continue
            if self.claims.claim(job.path):
                if not self._finished_elsewhere(job, finish):
                    return job
                self.claims.release(job.path)
                continue
            waiting.append(job)
        for _ in range(len(waiting)):
            job = waiting.popleft()
            if self.claims.held_by_other(job.path):
                waiting.append(job)
            elif self._finished_elsewhere(job, finish, any_status=True):
                continue
            elif self.claims.claim(job.path):
                return job
            else:
                waiting.append(job)
        return None

    def _finished_elsewhere(self, job: Job, finish: Callable[[Outcome], None], any_status: bool = False) -> bool:
        if job.kind == "original":
            return job.path.exists()
        cell = job.cell
        key = self.runner.original_key(cell.task, cell.seed)
        if key in self.failed_originals:
            finish(self.runner.failure(cell, "building the original", f"its original model failed: {self.failed_originals[key]}"))
            return True
        outcome = self.runner.settled(cell, any_status)
        if outcome is not None:
            finish(outcome)
        return outcome is not None

    def _collect(self, finish: Callable[[Outcome], None]) -> None:
        busy = [w for w in self.workers if w.job is not None]
        ready = wait([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout=POLL)
        for worker in busy:
            while worker.job is not None and worker.conn in ready and _poll(worker.conn):
                try:
                    message = worker.conn.recv()
                except (EOFError, OSError):
                    break
                self._handle(worker, message, finish)
            if worker.job is None:
                continue
            if not worker.process.is_alive():
                code = worker.process.exitcode
                self._replace(worker, finish, f"its worker process died (exit code {code}{DEATHS.get(code, '')})")
            elif self.timeout and time.monotonic() - worker.started > self.timeout:
                self._replace(worker, finish, f"timed out after {self.timeout:g} s (the timeout setting)")

    def _handle(self, worker: _Worker, message: tuple, finish: Callable[[Outcome], None]) -> None:
        kind, *payload = message
        if kind == "progress":
            self.progress(worker.index, *payload)
            return
        job, worker.job = worker.job, None
        assert job is not None
        self.usage.busy[job.kind] += time.monotonic() - worker.started
        if kind == "cell" and payload[1]:  # its cell changed shared state: the worker exits
            worker.stop()
            self.workers[worker.index] = self._start(worker.index)
        if kind == "cell" and payload[0].status == "measured":
            self.scoring.append(Job("score", job.cell, job.path))  # its claim stays held until it is scored
            return
        self.claims.release(job.path)
        if kind in ("cell", "score"):
            finish(payload[0])
        elif payload[0]:
            self.failed_originals[self.runner.original_key(job.cell.task, job.cell.seed)] = payload[0]

    def _replace(self, worker: _Worker, finish: Callable[[Outcome], None], why: str) -> None:
        """Stop ``worker``, store its job as failed with ``why`` and start a fresh worker."""
        job, worker.job = worker.job, None
        assert job is not None
        self.usage.busy[job.kind] += time.monotonic() - worker.started
        worker.stop()
        self.workers[worker.index] = self._start(worker.index)
        if job.kind in ("cell", "score"):
            finish(self.runner.failure(job.cell, "worker" if job.kind == "cell" else "scoring", why))
        else:
            self.failed_originals[self.runner.original_key(job.cell.task, job.cell.seed)] = f"training it {why}"
        self.claims.release(job.path)


def run_pool(runner: Runner, cells: list[Cell], workers: int, done: Callable[[Outcome], None], progress: Progress,
             timeout: float | None, debug: bool = False, usage: Usage | None = None) -> list[Outcome]:
    """Run ``cells`` on ``workers`` device processes and a scorer; ``done(outcome)`` is called as
    each finishes; ``usage``, if given, receives where the time went."""
    pool = Pool(runner, workers, progress, timeout, debug, usage)
    try:
        return pool.run(cells, done)
    finally:
        pool.close()


def default_workers(runtime: Any) -> int:
    """One worker per GPU (per block of a DDP job's GPUs), or one per CPU core up to CPU_WORKERS."""
    if runtime.uses_cuda:
        return max(1, _cuda_count() // runtime.processes)
    return max(1, min(os.cpu_count() or 1, CPU_WORKERS))


def _poll(conn: Connection) -> bool:
    try:
        return conn.poll()
    except (EOFError, OSError):
        return False


def _cuda_count() -> int:
    import torch

    return torch.cuda.device_count()
