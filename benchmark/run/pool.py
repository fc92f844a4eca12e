"""Executing a plan on worker processes (a backend of ``scheduler.py``): one per GPU, or several
CPU workers sharing the cores (anomalib's parallel runner), each running one job at a time, and
a scorer process beside them.

A device worker runs a cell up to the device half of its scoring (predictions, features,
attacks: ``CellRunner.measure_cell``) and takes the next cell; the scorer process does the host
half (MIU's forest MIA, the balanced MIA, the MI probes: ``CellRunner.score_cell``) meanwhile,
so no device worker waits on scikit-learn; a device worker with no cell ready to train (the
last ones, say) takes host halves too. The forests' trees are fitted in threads on every core,
taking what the device workers leave free (all of them once the last cells are trained; the
trees are the same whatever the count). The parent process owns the schedule
(``scheduler.py``); here:

- a worker whose job outlives the timeout is killed and replaced; so is a worker that dies
  (killed for memory, a crash in native code), its job stored as failed, and a worker whose
  cell changed what cells share (``Artefacts.tainted``);
- on SIGTERM or SIGINT the parent stops every worker; workers also exit on their own when the
  parent is gone.

With CUDA, workers are spawned (CUDA does not survive a fork; nor does autograd once it has
started its device threads, so a process that has trained on a GPU spawns them too:
``worker_context``) and rebuild what they need from the picklable spec; each sees its GPU (``CUDA_VISIBLE_DEVICES``; a DDP job its block of N) and ``cores / workers`` CPU
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
from multiprocessing.connection import Connection, wait
from typing import Any, Callable, Iterator

from benchmark.run.failure import reason
from benchmark.run.grid import Cell, Outcome
from benchmark.run.runner import Runner
from benchmark.run.scheduler import DEVICE, ENDED, LOST, POLL, SCORER, Event, Job, Running, Scheduler, Usage
from benchmark.run.signals import deferred

Progress = Callable[[int, str, int, int], None]  # (worker, what, done, total)
CPU_THREADS = 1  # torch threads of a CPU worker (see above)
CPU_WORKERS = 8  # most CPU workers by default (one core each)
SCORERS = 1  # scorer processes (the host half of scoring)
#: what a worker's exit code most likely means
DEATHS = {
    -signal.SIGKILL: ", killed: out of memory?",
    -signal.SIGSEGV: ", a segmentation fault: a write to the dataset's inputs, which are read-only, or a crash in native code",
}


# -- the worker process ------------------------------------------------------------------


def watch_parent(parent: int) -> None:
    """Exit this process once its parent ``parent`` is gone (run in a daemon thread)."""
    while True:
        time.sleep(POLL)
        if os.getppid() != parent:
            os._exit(1)


def _worker_main(conn: Connection, spec: Any, devices: str | None, threads: int, parent: int, debug: bool, host_jobs: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides what a Ctrl-C stops
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a forked worker inherits the parent's handler
    if devices is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = devices
    threading.Thread(target=watch_parent, args=(parent,), daemon=True).start()
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
            conn.send(("cell", runner.cells.execute(cell, score=False), runner.artefacts.tainted))
            if runner.artefacts.tainted:
                return  # the parent starts a fresh worker: nothing the cell did reaches the next one
            continue
        if kind == "score":
            from joblib import parallel_config

            with parallel_config(backend="threading", n_jobs=host_jobs):
                conn.send(("score", runner.cells.score(cell)))
            continue
        try:
            runner.artefacts.original(cell.task, cell.seed)
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

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.terminate()
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)
        self.conn.close()


class Pool(Scheduler):
    """Worker processes and the schedule of one run."""

    def __init__(self, runner: Runner, workers: int, progress: Progress, timeout: float | None, debug: bool = False,
                 usage: Usage | None = None) -> None:
        super().__init__(runner, timeout, usage)
        self.progress, self.debug = progress, debug
        cuda = runner.spec.runtime.uses_cuda
        self.context = worker_context(cuda)
        self.threads = max(1, (os.cpu_count() or 1) // workers) if cuda else CPU_THREADS
        self.devices = _cuda_count() if cuda else 0
        self.per_job = runner.spec.runtime.processes if cuda else 1  # GPUs one job trains on (DDP: N)
        self.size, self.scorers = workers, SCORERS
        self.host_jobs = os.cpu_count() or 1  # threads for the forests' trees: every core, so that scoring takes what the workers leave
        self.workers: list[_Worker] = []  # started when there is work (not for a run that reuses every cell)
        self.usage.workers = {DEVICE: workers, SCORER: self.scorers}

    def _start(self, index: int) -> _Worker:
        """Start worker ``index`` in its slot: a device worker below ``size``, a scorer from there
        (one torch thread; it reads stored arrays only and never touches a device). A Ctrl-C
        waits until the worker is in its slot, so that stopping the run stops it too."""
        role, gpus, threads = (DEVICE, self._gpus(index), self.threads) if index < self.size else (SCORER, None, 1)
        with deferred():
            worker = _Worker(self.context, index, role, self.runner.spec, gpus, threads, self.debug, self.host_jobs)
            self.workers[index:index + 1] = [worker]  # its slot, or the next one while the pool opens
        return worker

    def _restart(self, worker: _Worker) -> _Worker:
        """Stop ``worker`` and start a fresh one in its place."""
        worker.stop()
        return self._start(worker.index)

    def _gpus(self, index: int) -> str | None:
        """The GPUs worker ``index`` sees: its own block of ``per_job`` (one, or a DDP job's N)."""
        if not self.devices:
            return None
        blocks = max(1, self.devices // self.per_job)
        first = (index % blocks) * self.per_job
        return ",".join(str(first + i) for i in range(self.per_job))

    # -- the backend ------------------------------------------------------------------
    def _open(self) -> None:
        self.workers = []
        for index in range(self.size + self.scorers):
            self._start(index)

    def _idle(self) -> list[tuple[str, _Worker]]:
        busy = {id(r.handle) for r in self.running}
        return [(w.role, w) for w in self.workers if id(w) not in busy]

    def _submit(self, job: Job, slot: _Worker) -> Running:
        worker = slot
        if not worker.process.is_alive():  # died while idle (killed from outside)
            worker = self._restart(worker)
        worker.conn.send((job.kind, job.cell))
        return Running(job, worker, started=time.monotonic())

    def _poll(self) -> Iterator[Event]:
        busy = [(r, r.handle) for r in self.running]
        ready = wait([w.conn for _, w in busy] + [w.process.sentinel for _, w in busy], timeout=POLL)
        for running, worker in busy:
            yield from self._messages(running, worker, ready)

    def _messages(self, running: Running, worker: _Worker, ready: list) -> Iterator[Event]:
        """``worker``'s progress, then its job's result, or the job lost with its worker."""
        while worker.conn in ready and _poll(worker.conn):
            try:
                kind, *payload = worker.conn.recv()
            except (EOFError, OSError):
                break
            if kind == "progress":
                self.progress(worker.index, *payload)
                continue
            yield Event(ENDED, running, payload[0])
            if kind == "cell" and payload[1]:  # its cell changed shared state: the worker exits
                self._restart(worker)
            return
        if not worker.process.is_alive():
            code = worker.process.exitcode
            yield Event(LOST, running, f"its worker process died (exit code {code}{DEATHS.get(code, '')})")
            self._restart(worker)

    def _cancel(self, running: Running) -> None:
        self._restart(running.handle)

    def _original_lost(self, why: str) -> str:
        return f"training it {why}"

    def _close(self) -> None:
        for _, worker in self._idle():
            if worker.process.is_alive():
                try:
                    worker.conn.send(None)
                except OSError:
                    pass
        for worker in self.workers:
            worker.stop()


def run_pool(runner: Runner, cells: list[Cell], workers: int, done: Callable[[Outcome], None], progress: Progress,
             timeout: float | None, debug: bool = False, usage: Usage | None = None) -> list[Outcome]:
    """Run ``cells`` on ``workers`` device processes and a scorer; ``done(outcome)`` is called as
    each finishes; ``usage``, if given, receives where the time went."""
    pool = Pool(runner, workers, progress, timeout, debug, usage)
    try:
        return pool.run(cells, done)
    finally:
        pool.close()


def worker_context(cuda: bool) -> Any:
    """How worker processes start: forked on the CPU (they need no imports), spawned with CUDA
    (CUDA does not survive a fork) and where a forked child cannot train. Once autograd has
    started its device threads in this process (a notebook that trained on a GPU, say), a forked
    child's backward pass raises "Unable to handle autograd's threading in combination with
    fork-based multiprocessing"; a throwaway child tries one first."""
    if cuda or "fork" not in mp.get_all_start_methods() or not fork_can_train():
        return mp.get_context("spawn")
    return mp.get_context("fork")


def fork_can_train() -> bool:
    """Whether a child forked now can run a backward pass (tried in a child that exits at once)."""
    import torch

    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            weight = torch.ones(1, requires_grad=True)
            weight.sum().backward()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


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
