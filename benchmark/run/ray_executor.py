"""Executing a plan as Ray tasks on an existing Ray cluster (``--executor ray``).

A backend of the schedule (benchmark/run/scheduler.py), as the local pool is: cells already
in the store finish without a task, every (task, seed) original trains once before its cells,
``done(outcome)`` is called as each cell finishes, and every failure ends as a stored failed
cell, never as an exception. What differs:

- A cell is two Ray tasks, as in the pool: the cell up to the device half of its scoring, then
  the host half (``CellRunner.score``: MIU's forest MIA, the balanced MIA, the MI probes) as a task
  of one CPU, so that no GPU is held while scikit-learn fits.
- Each job is one Ray task: ``num_gpus=1`` when the models run on CUDA, else ``num_cpus=1``;
  its torch threads are the CPUs Ray gives it (one), so its numbers are those of a local run
  with one thread per job. ``runtime.devices`` must be 1 (no DDP inside a Ray task). A cell's
  task is submitted when its original has finished, so no GPU is held by a cell that waits.
- Ray retries a task whose node or worker process dies up to ``RETRIES`` (3) times; errors
  raised by our code are not retried (the runner turns them into failed cells anyway).
- Each task first yields a "started" marker, so that the timeout counts from when it runs,
  not from when it was queued; past the timeout it is cancelled (``ray.cancel(force=True)``)
  and stored as failed, as is a task that Ray gave up on. A failed original fails its cells.
- Jobs are claimed in the store like the pool's (benchmark/run/locks.py), so Ray runs and
  local runs on one output directory split the work.

Where Ray runs: ``address`` (``--ray-address``), else ``RAY_ADDRESS``, else ``auto`` (the
cluster this node belongs to; ``ray start --head`` makes one). ``address="local"`` starts a
private local instance instead (tests, a single machine) and stops it at the end; a cluster
is only disconnected from, and a Ray the caller connected already is used and left alone.

What every node needs: this package with the same versions of torch and its CPU kernels
(models differ in their last digits between them; see keys.versions), the output directory
(``--out``) at the same path on a filesystem all nodes share (its writes are atomic), and any
plugin file (``FILE.py:Class``) at the path it was named by: the method travels by that name
and is imported again on the node, so name it by an absolute path on the shared filesystem.
The driver must see the device kind the workers run on (a cell's key names it); a task on a
node that differs fails with the reason.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import signal
import threading
import time
import uuid
from typing import Any, Callable, Iterator

from benchmark.errors import BenchmarkError
from benchmark.run.failure import reason
from benchmark.run.grid import Cell, Outcome
from benchmark.run.keys import runtime_identity
from benchmark.run.runner import Runner
from benchmark.run.scheduler import BEGAN, DEVICE, ENDED, LOST, POLL, Event, Job, Running, Scheduler
from benchmark.run.spec import Spec
from benchmark.task import Task

RETRIES = 3  # times Ray runs a task again after its node or worker process died
STARTED = "\0started"  # what a task yields first, when it begins to run (never an error text)
LOCAL = "local"  # the address that starts a private local Ray instance


def import_ray() -> Any:
    """The ``ray`` module, or a one-line error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise BenchmarkError("--executor ray needs Ray: pip install 'unlearn-bench[ray]'") from None
    return ray


def run_ray(
    runner: Runner, cells: list[Cell], done: Callable[[Outcome], None], *, address: str | None = None, timeout: float | None = None, debug: bool = False
) -> list[Outcome]:
    """Run ``cells`` as Ray tasks; ``done(outcome)`` is called as each finishes."""
    ray = import_ray()
    devices = runner.spec.runtime.devices
    if devices not in (1, "1"):
        raise BenchmarkError(f"--executor ray runs each job on one device, but runtime.devices is {devices!r}; leave it at 1")
    run = RayRun(ray, runner, address, timeout, debug)
    try:
        return run.run(cells, done)
    finally:
        run.close()


def connect(ray: Any, address: str | None) -> bool:
    """Connect to the Ray cluster at ``address`` (else RAY_ADDRESS, else this node's; 'local'
    starts a private instance) unless connected already; whether this call connected."""
    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or "auto"
    local = {"include_dashboard": False} if address == LOCAL else {}
    sigterm = signal.getsignal(signal.SIGTERM)
    try:
        ray.init(address=address, **local)
    except (ConnectionError, ValueError, RuntimeError) as err:
        raise BenchmarkError(
            f"cannot connect to Ray at {address!r} ({reason(err, 'connecting')}); start a cluster with "
            f"`ray start --head`, or use --ray-address {LOCAL} for a local instance"
        ) from None
    finally:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, sigterm)  # ray.init replaces it; ours stops the run cleanly
    return True


# -- on a Ray node -------------------------------------------------------------------------

_NODE_RUNNER: dict[str, Runner] = {}  # the runner of the latest run, kept between its tasks (datasets, originals)


def _node_runner(spec: Spec, run_id: str, identity: dict[str, Any], debug: bool) -> Runner:
    """This worker process's Runner for run ``run_id``, after checking that its models would run
    where the driver's keys say they do."""
    import ray
    import torch

    torch.set_num_threads(max(1, int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1))))
    if run_id not in _NODE_RUNNER:
        _NODE_RUNNER.clear()
        _NODE_RUNNER[run_id] = Runner(spec, debug=debug)
    runner = _NODE_RUNNER[run_id]
    here = runtime_identity(runner.spec.runtime)
    if here != identity:
        raise BenchmarkError(
            f"this Ray node runs models as {here} but the driver as {identity}: their cell keys would differ "
            "(run the driver on a node like the workers)"
        )
    return runner


def _original_job(spec: Spec, run_id: str, identity: dict[str, Any], task: Task, seed: int, debug: bool) -> Iterator[str]:
    """Train (or find) the original of ``task`` and ``seed``; yields STARTED, then '' or why it failed."""
    yield STARTED
    runner = _node_runner(spec, run_id, identity, debug)
    try:
        runner.artefacts.original(task, seed)
    except Exception as err:  # noqa: BLE001 -- reported for the cells that need it
        yield reason(err, "training the original")
        return
    yield ""


def _cell_job(spec: Spec, run_id: str, identity: dict[str, Any], cell: Cell, debug: bool) -> Iterator[Any]:
    """Run one cell up to the device half of its scoring; yields STARTED, then its Outcome
    (stored already: measured, done or failed)."""
    yield STARTED
    runner = _node_runner(spec, run_id, identity, debug)
    outcome = runner.cells.execute(cell, score=False)
    if runner.artefacts.tainted:  # its cell changed shared state (undone): the next cell here gets a fresh runner
        _NODE_RUNNER.pop(run_id, None)
    yield outcome


def _score_job(spec: Spec, run_id: str, identity: dict[str, Any], cell: Cell, debug: bool) -> Iterator[Any]:
    """The host half of a measured cell's scoring (stored arrays only: any node will do);
    yields STARTED, then its Outcome (stored already, done or failed)."""
    yield STARTED
    yield Runner(spec, debug=debug).cells.score(cell)


# -- the driver ----------------------------------------------------------------------------


class RayRun(Scheduler):
    """The Ray tasks and the schedule of one run."""

    def __init__(self, ray: Any, runner: Runner, address: str | None, timeout: float | None, debug: bool) -> None:
        super().__init__(runner, timeout)
        self.ray, self.address, self.debug = ray, address, debug
        self.connected = False  # whether this run called ray.init (and so ray.shutdown)

    def _open(self) -> None:
        """Connect, put the spec in Ray's object store once and declare the kinds of task."""
        self.connected = connect(self.ray, self.address)
        spec = dataclasses.replace(self.runner.spec, out=self.runner.spec.out.resolve())
        try:
            self.spec_ref = self.ray.put(spec)
        except Exception as err:  # noqa: BLE001 -- what cannot pickle, named
            raise BenchmarkError(f"the run's settings cannot be sent to Ray tasks: {reason(err, 'pickling')}") from None
        self.run_id = uuid.uuid4().hex
        self.identity = runtime_identity(self.runner.spec.runtime)
        resources = {"num_gpus": 1} if self.runner.spec.runtime.uses_cuda else {"num_cpus": 1}
        options = {"num_returns": "streaming", "max_retries": RETRIES, "retry_exceptions": False}
        self.remote = {
            "original": self.ray.remote(_original_job).options(**options, **resources),
            "cell": self.ray.remote(_cell_job).options(**options, **resources),
            "score": self.ray.remote(_score_job).options(**options, num_cpus=1),
        }

    def _idle(self) -> Iterator[tuple[str, None]]:
        """Ray queues every task it is given until its resources are free: a slot is always idle."""
        return itertools.repeat((DEVICE, None))

    def _submit(self, job: Job, slot: None) -> Running:
        cell = job.cell
        arguments = (cell.task, cell.seed) if job.kind == "original" else (cell,)
        return Running(job, self.remote[job.kind].remote(self.spec_ref, self.run_id, self.identity, *arguments, self.debug))

    def _poll(self) -> Iterator[Event]:
        """Every message that arrives within POLL seconds: a start, a result, a lost task."""
        if not self.running:
            time.sleep(POLL)
            return
        ready, _ = self.ray.wait([r.handle for r in self.running], num_returns=len(self.running), timeout=POLL)
        arrived = {id(task) for task in ready}
        for running in [r for r in self.running if id(r.handle) in arrived]:
            try:
                message = self.ray.get(next(running.handle))
            except StopIteration:
                yield Event(LOST, running, "its Ray task ended without a result")
                continue
            except Exception as err:  # noqa: BLE001 -- a task Ray gave up on (retries spent, cancelled, node check)
                yield Event(LOST, running, f"its Ray task failed: {reason(getattr(err, 'cause', None) or err, 'running')}")
                continue
            yield Event(BEGAN, running) if message == STARTED else Event(ENDED, running, message)

    def _cancel(self, running: Running) -> None:
        self.ray.cancel(running.handle, force=True)

    def _close(self) -> None:
        """Cancel the tasks in flight, and disconnect if this run connected."""
        for running in self.running:
            try:
                self.ray.cancel(running.handle, force=True)
            except Exception:  # noqa: BLE001 -- finished or gone already
                pass
        self.running.clear()
        if self.connected:
            self.ray.shutdown()
