"""Benchmark: how the cell throughput of the local pool scales with its worker count.

    python scripts/bench_workers.py [--workers 1 2] [--seeds 4] [--n-train 3000]

Runs the same jobs of equal cost (for each seed, the original and its gold retrain on the
default shapes task) through the pool once per worker count, each into a fresh store (nothing
cached), and prints wall time, jobs/s and the speed-up over the first count, with the ideal
N x beside it. Worker start-up (one Python + torch import per worker, in parallel) is
included: it is what a user pays. On a GPU machine each worker takes one GPU.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from benchmark.run.pool import run_pool
from benchmark.run.runner import Runner
from benchmark.run.spec import build_spec


def timed_run(workers: int, seeds: list[int], n_train: int) -> tuple[float, int]:
    """Seconds to run the grid with ``workers`` workers, and the number of jobs it ran."""
    with tempfile.TemporaryDirectory() as out:
        config = {"datasets": {"shapes": {"n_train": n_train}}, "out": out, "seeds": seeds}
        spec = build_spec(config, methods=["retrain"], tasks=["shapes/g2-r0.9-uniform"])
        runner = Runner(spec)
        cells = runner.plan()
        runner.artefacts.dataset(cells[0].task)  # the dataset cache is built once, outside the timing
        started = time.perf_counter()
        outcomes = run_pool(runner, cells, workers, lambda outcome: None, lambda *a: None, timeout=None)
        seconds = time.perf_counter() - started
    failed = [o for o in outcomes if o.status != "done"]
    if failed:
        raise SystemExit(f"{len(failed)} cells failed: {failed[0].error}")
    return seconds, 2 * len(cells)  # each cell's original, then the cell


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seeds", type=int, default=4, help="seeds; each brings two jobs of equal cost")
    parser.add_argument("--n-train", type=int, default=3000)
    args = parser.parse_args()
    seeds = list(range(args.seeds))
    print(f"{os.cpu_count()} CPUs; jobs: original + retrain for seeds {seeds} (shapes, n_train {args.n_train})")
    print(f"{'workers':>7s} {'seconds':>8s} {'jobs/s':>7s} {'speed-up':>9s} {'ideal':>6s} {'efficiency':>11s}")
    first: tuple[int, float] | None = None
    for workers in args.workers:
        seconds, jobs = timed_run(workers, seeds, args.n_train)
        rate = jobs / seconds
        first = first or (workers, rate)
        speedup, ideal = rate / first[1], workers / first[0]
        print(f"{workers:7d} {seconds:8.1f} {rate:7.3f} {speedup:8.2f}x {ideal:5.1f}x {speedup / ideal:10.0%}")

if __name__ == "__main__":
    main()
