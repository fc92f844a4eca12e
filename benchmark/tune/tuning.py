"""``unlearn-bench tune``: every study of a spec run by worker processes, then the tuned
settings of each finished study written to the committed tuned files (benchmark/run/tuned.py).

Workers are processes like the run's (benchmark/run/pool.py): forked on the CPU with one torch
thread each, so that a trial's numbers do not depend on how many run at once; spawned, one per
GPU, with CUDA. With ``--executor ray`` they are Ray tasks on a cluster instead. Several
``tune`` commands on one output directory (on one machine, or on several that share it) and
Ray tasks alike split the same studies through the slot claims (``study.py``).
"""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from benchmark.run import tuned
from benchmark.run.pool import CPU_THREADS, default_workers, watch_parent, worker_context
from benchmark.run.signals import deferred
from benchmark.run.spec import Spec
from benchmark.tune.objective import describe_protocol
from benchmark.tune.study import StudyPlan, plan_studies, startup_trials, summary, work

POLL = 1.0


@dataclass
class Tuned:
    """What a ``tune`` command did: the studies it finished (method x task -> entry), those still
    open (another process holds slots of them), methods with nothing to search, tuned files written, wall time."""

    entries: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    open: list[str] = field(default_factory=list)
    all_failed: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    seconds: float = 0.0


def _worker_main(spec: Spec, plans: list[StudyPlan], lines: Any, parent: int, threads: int, devices: str | None) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if devices is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = devices
    threading.Thread(target=watch_parent, args=(parent,), daemon=True).start()
    import torch

    torch.set_num_threads(threads)
    work(spec, plans, lines.put)


def tune(
    spec: Spec, workers: int | None, progress: Callable[[str], None], total: Callable[[int], None], ray_address: str | None = None, ray: bool = False
) -> Tuned:
    """Run ``spec``'s studies on ``workers`` processes (default: as many as a run would use), or
    with ``ray`` on as many Ray tasks, calling ``progress`` with one line per finished trial;
    write the finished studies' entries."""
    plans, skipped = plan_studies(spec)
    out = Tuned(skipped=skipped)
    started = time.perf_counter()
    total(len(plans) * spec.tune.trials)
    if plans and ray:
        _run_ray(spec, plans, workers or default_workers(spec.runtime), ray_address, progress)
    elif plans:
        _run_workers(spec, plans, workers or default_workers(spec.runtime), progress)
    out.seconds = time.perf_counter() - started
    protocol = describe_protocol(spec.tune.trials, spec.tune.seeds, startup_trials(spec.tune.trials))
    for plan in plans:
        entry = summary(plan, spec.tune.trials, spec.tune.seeds)
        if entry is None:
            out.open.append(plan.name)
        elif not entry["hparams"]:
            out.all_failed.append(f"{plan.name}: {'; '.join(entry['errors'])}")
        else:
            out.entries[(plan.method.name, plan.task.id)] = entry
            path = tuned.write(spec.tuned, plan.task, spec.tuning_context(plan.task), protocol, plan.method.name, entry)
            if path not in out.files:
                out.files.append(path)
    return out


def _run_workers(spec: Spec, plans: list[StudyPlan], workers: int, progress: Callable[[str], None]) -> None:
    cuda = spec.runtime.uses_cuda
    context = worker_context(cuda)
    threads = max(1, (os.cpu_count() or 1) // workers) if cuda else CPU_THREADS
    lines = context.SimpleQueue()
    procs = []
    try:
        for i in range(min(workers, len(plans) * spec.tune.trials)):
            devices = str(i) if cuda else None
            with deferred():  # a Ctrl-C waits until the process is in ``procs``, where it is stopped
                proc = context.Process(target=_worker_main, args=(spec, plans, lines, os.getpid(), threads, devices), daemon=True)
                proc.start()
                procs.append(proc)
        while any(p.is_alive() for p in procs) or not lines.empty():
            while not lines.empty():
                progress(lines.get())
            time.sleep(0.2)
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
            p.join()


def _ray_work(spec: Spec, plans: list[StudyPlan]) -> list[str]:
    """One Ray task's share of the studies (as a worker process's), its trial lines at the end."""
    import ray
    import torch

    torch.set_num_threads(max(1, int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1))))
    lines: list[str] = []
    work(spec, plans, lines.append)
    return lines


def _run_ray(spec: Spec, plans: list[StudyPlan], workers: int, address: str | None, progress: Callable[[str], None]) -> None:
    """``workers`` Ray tasks (one GPU, or one CPU, each) share the studies through the journal
    files and slot claims, as processes do: ``--out`` must be on a filesystem every node sees."""
    from benchmark.run.ray_executor import RETRIES, connect, import_ray

    ray = import_ray()
    connected = connect(ray, address)
    try:
        spec = dataclasses.replace(spec, out=spec.out.resolve(), tuned=spec.tuned.resolve())
        resources = {"num_gpus": 1} if spec.runtime.uses_cuda else {"num_cpus": 1}
        remote = ray.remote(_ray_work).options(max_retries=RETRIES, **resources)
        pending = [remote.remote(spec, plans) for _ in range(min(workers, len(plans) * spec.tune.trials))]
        while pending:
            ready, pending = ray.wait(pending, timeout=POLL)
            for ref in ready:
                for line in ray.get(ref):
                    progress(line)
    finally:
        if connected:
            ray.shutdown()
