"""The schedule of a run, whatever executes its jobs (the local pool: ``pool.py``; Ray tasks:
``ray_executor.py``, the backends). Cells already in the store finish without a job, and
every failure ends as a stored failed cell, never as an exception. The schedule:

- the original models are queued first, then every cell (the gold cells first); a cell
  starts as soon as its own original exists, whatever other originals still train, and fails
  without running when its original failed;
- each job is claimed before it is handed out (benchmark/run/locks.py), so that several runs
  on one output directory split the work; a job another run finished meanwhile is finished
  from the store, and one another run holds waits until that run finishes it or gives it up;
- a cell is two jobs: the cell up to the device half of its scoring ("cell"), then the host
  half ("score") once the first is measured; its claim is held over both;
- a job that outlives the timeout is cancelled and stored as failed, as is a job the backend
  lost (its worker died, Ray gave up on its task);
- on SIGTERM or SIGINT (benchmark/run/signals.py) the backend stops every job and the claims
  are released (finished work is in the store already).

A backend implements where jobs run: its idle slots (``_idle``), ``_submit``, ``_poll`` (what
happened to running jobs) and ``_cancel``, and opening and closing itself.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, NamedTuple

from benchmark.run.grid import Cell, Outcome
from benchmark.run.locks import Claims
from benchmark.run.runner import Runner
from benchmark.run.signals import raise_if_stopped

POLL = 1.0  # seconds between looks at finished jobs, timeouts, heartbeats and jobs other runs hold
DEVICE, SCORER = "device", "scorer"  # the roles of a slot: a device slot takes any job, a scorer slot host halves only
BEGAN, ENDED, LOST = "began", "ended", "lost"  # what a backend reports of a running job


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


@dataclass(eq=False)
class Running:
    """A job handed to a backend: its handle there (a worker, a Ray task) and when it was seen
    to start running (None until then)."""

    job: Job
    handle: Any
    started: float | None = None


class Event(NamedTuple):
    """What a backend saw of a running job: it BEGAN to run, ENDED with ``value`` (a cell's Outcome;
    for an original '' or why it failed), or was LOST (``value``: why)."""

    kind: str
    running: Running
    value: Any = None


class Scheduler(ABC):
    """The schedule of one run over a backend (a subclass)."""

    def __init__(self, runner: Runner, timeout: float | None, usage: Usage | None = None) -> None:
        self.runner, self.timeout = runner, timeout
        self.claims = Claims()
        self.running: list[Running] = []
        self.failed_originals: dict[str, str] = {}  # why, by the original's key
        self.scoring: deque[Job] = deque()  # measured cells waiting for their host half (their claims held)
        self.usage = usage or Usage()

    # -- the backend ------------------------------------------------------------------
    @abstractmethod
    def _open(self) -> None:
        """Get ready to run jobs (called only when there is work)."""

    @abstractmethod
    def _idle(self) -> Iterable[tuple[str, Any]]:
        """The idle slots, as (role, slot), in the order they take jobs."""

    @abstractmethod
    def _submit(self, job: Job, slot: Any) -> Running:
        """Start ``job`` on ``slot``."""

    @abstractmethod
    def _poll(self) -> Iterator[Event]:
        """What happens to the running jobs within about POLL seconds."""

    @abstractmethod
    def _cancel(self, running: Running) -> None:
        """Stop a running job (it has outlived the timeout)."""

    @abstractmethod
    def _close(self) -> None:
        """Stop every job and whatever the backend started."""

    def _original_lost(self, why: str) -> str:
        """Why an original failed, given why its job was lost."""
        return why

    # -- the plan -------------------------------------------------------------------
    def run(self, cells: list[Cell], done: Callable[[Outcome], None]) -> list[Outcome]:
        """Run ``cells``; ``done(outcome)`` is called as each finishes; the outcomes in that order."""
        outcomes: list[Outcome] = []

        def finish(outcome: Outcome) -> None:
            outcomes.append(outcome)
            done(outcome)

        todo = self.runner.pending(cells, finish)
        if todo:
            self._open()
            self._drain(self._jobs(todo), finish)
        return outcomes

    def close(self) -> None:
        """Stop what still runs and release the claims (finished work is in the store already)."""
        self._close()
        self.claims.release_all()

    def _jobs(self, cells: list[Cell]) -> list[Job]:
        """The originals ``cells`` need, then the cells."""
        runner = self.runner
        jobs = [Job("cell", c, runner.path(c), runner.original_key(c.task, c.seed)) for c in cells]
        originals = {job.needs: Job("original", job.cell, runner.store.original(job.needs)) for job in jobs}
        return [*originals.values(), *jobs]

    def _drain(self, jobs: list[Job], finish: Callable[[Outcome], None]) -> None:
        queue, waiting = deque(jobs), deque()
        started = time.monotonic()
        while queue or waiting or self.scoring or self.running:
            raise_if_stopped()
            self.claims.heartbeat()
            self._dispatch(queue, waiting, finish)
            for event in self._poll():
                self._handle(event, finish)
            self._stop_overdue(finish)
        self.usage.wall += time.monotonic() - started

    def _dispatch(self, queue: deque, waiting: deque, finish: Callable[[Outcome], None]) -> None:
        """Hand jobs to the idle slots: a device slot takes the next job that may start, else a
        host half (a device worker with nothing to train scores too); a scorer slot host halves."""
        device_work = True  # until a device slot finds nothing ready
        for role, slot in self._idle():
            job = None
            if role == DEVICE and device_work:
                job = self._next(queue, waiting, finish)
                device_work = job is not None
            if job is None and self.scoring:
                job = self.scoring.popleft()
            if job is not None:
                self.running.append(self._submit(job, slot))
            elif not device_work:
                return  # nothing left for any slot

    def _ready(self, queue: deque) -> list[Job]:
        """The queued jobs that may start: originals, and cells whose original exists or failed
        (each original's file looked at once per call)."""
        known: dict[str, bool] = {}

        def ready(key: str) -> bool:
            if key not in known:
                known[key] = key in self.failed_originals or self.runner.store.original(key).exists()
            return known[key]

        return [job for job in queue if not job.needs or ready(job.needs)]

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
        """Whether the store has ``job``'s product (from another run, or from before), or its
        cell's original failed; a cell's outcome is finished here."""
        if job.kind == "original":
            return job.path.exists()
        cell, key = job.cell, job.needs  # a cell job holds its original's key
        if key in self.failed_originals:
            finish(self.runner.failure(cell, "building the original", f"its original model failed: {self.failed_originals[key]}"))
            return True
        outcome = self.runner.settled(cell, any_status)
        if outcome is not None:
            finish(outcome)
        return outcome is not None

    # -- results --------------------------------------------------------------------
    def _handle(self, event: Event, finish: Callable[[Outcome], None]) -> None:
        running = event.running
        if event.kind == BEGAN:
            running.started = running.started or time.monotonic()
        elif event.kind == ENDED:
            self._settle(running)
            self._ended(running.job, event.value, finish)
        else:
            self._settle(running)
            self._lost(running.job, event.value, finish)

    def _stop_overdue(self, finish: Callable[[Outcome], None]) -> None:
        """Cancel the jobs that have run longer than the timeout; they fail."""
        if not self.timeout:
            return
        now = time.monotonic()
        for running in [r for r in self.running if r.started is not None and now - r.started > self.timeout]:
            self._settle(running)
            self._cancel(running)
            self._lost(running.job, f"timed out after {self.timeout:g} s (the timeout setting)", finish)

    def _settle(self, running: Running) -> None:
        """``running`` is no longer: its time goes to the usage."""
        self.running.remove(running)
        if running.started is not None:
            self.usage.busy[running.job.kind] += time.monotonic() - running.started

    def _ended(self, job: Job, result: Outcome | str, finish: Callable[[Outcome], None]) -> None:
        """Finish ``job`` with its result: a cell's outcome (a measured cell goes on to its
        host half), or an original's '' or why it failed."""
        if job.kind == "cell" and isinstance(result, Outcome) and result.status == "measured":
            self.scoring.append(Job("score", job.cell, job.path))  # its claim stays held until it is scored
            return
        self.claims.release(job.path)
        if isinstance(result, Outcome):
            finish(result)
        elif result:
            self.failed_originals[self.runner.original_key(job.cell.task, job.cell.seed)] = result

    def _lost(self, job: Job, why: str, finish: Callable[[Outcome], None]) -> None:
        """Store ``job`` as failed with ``why`` (an original: its cells fail after it)."""
        if job.kind == "original":
            self.failed_originals[self.runner.original_key(job.cell.task, job.cell.seed)] = self._original_lost(why)
        else:
            finish(self.runner.failure(job.cell, "worker" if job.kind == "cell" else "scoring", why))
        self.claims.release(job.path)
