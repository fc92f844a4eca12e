"""The Python API: what ``unlearn-bench run`` does, for a notebook or a script. The CLI is a
thin layer over it (flags in, progress display and tables out).

    from benchmark import Benchmark

    result = Benchmark(methods=["finetune", "neggrad"], tasks=["shapes/g2-r0.9-skew1.0"], seeds=[0]).run()
    result.board.entries    # the leaderboard (what leaderboard.json holds), also written to disk
    result.records          # every cell's record (metrics, settings, provenance)
    result.failed           # the cells that failed, with their reasons

``Benchmark(config=..., **settings)`` takes a config file (or mapping) and any of its keys as
keyword arguments, which win over the file's (``methods``, ``tasks``, ``seeds``, ``out``,
``leaderboard``, ``workers``, ``hparams``, ``runtime``, ...: see ``benchmark/run/spec.py``).
Bad settings raise ``BenchmarkError`` with one line, as the CLI prints them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from benchmark.errors import BenchmarkError
from benchmark.report.leaderboard import Leaderboard
from benchmark.run.pool import Progress
from benchmark.run.runner import Outcome, Runner
from benchmark.run.scheduler import Usage
from benchmark.run.spec import Spec, build_spec, read_config
from benchmark.run.store import Store

EXECUTORS = ("local", "ray")


@dataclass
class RunResult:
    """What a run did: each cell's outcome, the leaderboard built from the whole store (and the
    files it was written to), and where the local pool's time went."""

    outcomes: list[Outcome]
    board: Leaderboard | None = None
    paths: list[Path] = field(default_factory=list)
    usage: Usage | None = None

    @property
    def records(self) -> list[Any]:
        return [o.record for o in self.outcomes if o.record is not None]

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    @property
    def reused(self) -> int:
        """Cells taken from the store without running."""
        return sum(o.status == "cached" for o in self.outcomes)


@dataclass
class Built:
    """A leaderboard built from a store: the board (failed and refused cells among its rows),
    the files written, how many cells it scores, and the cells added from submitted entries."""

    board: Leaderboard
    paths: list[Path]
    scored: int
    added: list[Any]


class Benchmark:
    """A benchmark run: a spec from a config and settings, its cells, its leaderboard."""

    def __init__(self, config: str | Path | Mapping[str, Any] | None = None, **settings: Any) -> None:
        base = dict(config) if isinstance(config, Mapping) else read_config(config)
        self.spec = build_spec(base, **settings)

    @classmethod
    def from_spec(cls, spec: Spec) -> Benchmark:
        benchmark = cls.__new__(cls)
        benchmark.spec = spec
        return benchmark

    def run(self, executor: str = "local", *, ray_address: str | None = None, debug: bool = False) -> RunResult:
        """Run every cell not in the store yet, then build and write the leaderboard."""
        result = self.execute(executor, ray_address=ray_address, debug=debug)
        built = build_leaderboard(Store(self.spec.out), self.spec.leaderboard)
        result.board, result.paths = built.board, built.paths
        return result

    def execute(
        self,
        executor: str = "local",
        *,
        ray_address: str | None = None,
        debug: bool = False,
        report: Progress | None = None,
        planned: Callable[[int], None] | None = None,
        finished: Callable[[Outcome], None] | None = None,
    ) -> RunResult:
        """Check the output directories and every method, then run the plan on ``executor``
        ("local": the process pool; "ray"). ``report(worker, what, done, total)`` hears each
        worker's progress, ``planned(n)`` the number of cells, ``finished(outcome)`` each cell."""
        from benchmark.run.debugging import debug_mode
        from benchmark.run.store import check_writable

        if executor not in EXECUTORS:
            raise BenchmarkError(f"executor must be one of {', '.join(EXECUTORS)}, not {executor!r}")
        spec, report = self.spec, report or (lambda worker, what, done, total: None)
        check_writable(spec.out, "output directory")
        check_writable(spec.leaderboard, "leaderboard directory")
        if executor == "ray":
            from benchmark.run.ray_executor import import_ray

            import_ray()  # a missing Ray is one line before any work
        with debug_mode(debug):  # seen by the worker processes it starts too
            runner = Runner(spec, lambda what, done, total: report(-1, what, done, total), debug=debug)
            runner.validate()
            plan = runner.plan()
            (planned or (lambda n: None))(len(plan))
            done = finished or (lambda outcome: None)
            if executor == "ray":
                from benchmark.run.ray_executor import run_ray

                return RunResult(run_ray(runner, plan, done, address=ray_address, timeout=spec.timeout, debug=debug))
            from benchmark.run.pool import default_workers, run_pool

            usage = Usage()
            workers = min(len(plan), spec.workers or default_workers(spec.runtime))
            return RunResult(run_pool(runner, plan, workers, done, report, spec.timeout, debug, usage), usage=usage)

    def runner(self) -> Runner:
        """A runner of this spec (what ``build_entry`` and other tools that read the store need)."""
        return Runner(self.spec)


def build_leaderboard(store: Store, directory: Path, records: list | None = None) -> Built:
    """The leaderboard of every compatible cell of ``store`` (``records``, default all stored,
    plus the cells of submitted entries under ``directory``), written to ``directory``."""
    from benchmark.report.collect import collect, predictions_loader, problem_rows, stored_records
    from benchmark.report.render import write_views
    from benchmark.report.scoring import score
    from benchmark.run.keys import versions
    from benchmark.submit.entry import entry_cells

    records = stored_records(store) if records is None else records
    added = entry_cells(records, directory)
    collected = collect(store, records + added)
    if not collected.scored and not collected.failed:
        raise BenchmarkError(f"no readable result files under {store.results}")
    failed, refused = problem_rows(collected)
    scored = score(collected.cells(), versions(), predictions=predictions_loader(store))
    board = dataclasses.replace(scored, failed=failed, refused=refused)
    try:
        paths = write_views(board, directory)
    except OSError as err:
        raise BenchmarkError(f"cannot write the leaderboard to {directory}: {err.strerror or err}") from None
    return Built(board, paths, len(collected.scored), added)
