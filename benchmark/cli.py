"""``unlearn-bench``: run the benchmark, list what is registered, rebuild or show the leaderboard,
validate and submit a method plugin."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any, Sequence

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from benchmark.errors import BenchmarkError
from benchmark.run.signals import Stopped, stop_on_signals

err_console = Console(stderr=True)


def _devices(text: str) -> int | str:
    """``--devices``: a count as a number; anything else ('auto', '0,1') as given."""
    return int(text) if text.isdigit() else text


#: the flags of ``run``, ``tune`` and ``submit``, each declared once (``add_argument``'s keyword
#: arguments); a flag whose dest is a config setting sets it, ``section.key`` a key of that section
SHARED_FLAGS: dict[str, dict[str, Any]] = {
    "--methods": {"nargs": "+", "metavar": "M", "help": "method names, NAME+rw, or FILE.py:CLASS (default: all registered)"},
    "--tasks": {"nargs": "+", "metavar": "T", "help": "task suites, task ids or suite files FILE.py:FUNCTION, each optionally followed by :key=value,... (default: the default tasks)"},
    "--seeds": {"nargs": "+", "type": int, "metavar": "S", "help": "seeds (default: 0 1 2)"},
    "--out": {"type": Path, "help": "results and model cache (default: ./runs)"},
    "--leaderboard": {"type": Path, "help": "where the leaderboard (and submitted entries/) go (default: ./leaderboard)"},
    "--config": {"type": Path, "help": "YAML config file; options given here override it"},
    "--accelerator": {"dest": "runtime.accelerator", "metavar": "ACCELERATOR", "help": "cpu, gpu or auto (default: auto)"},
    "--devices": {"dest": "runtime.devices", "type": _devices, "metavar": "DEVICES", "help": "devices per job, as Lightning takes them (default: 1)"},
    "--precision": {"dest": "runtime.precision", "metavar": "PRECISION", "help": "auto (bf16-mixed on a GPU with bf16, else 16-mixed; 32-true on the CPU), 32-true, bf16-mixed, or 16-mixed (GPU)"},
    "--strategy": {"dest": "runtime.strategy", "metavar": "STRATEGY", "help": "auto (one process per job), or ddp: one job on --devices N >= 2 GPUs (or N CPU processes) with Lightning's DDP, spawned; NCCL on GPUs, gloo on the CPU"},
    "--workers": {"help": "cells run at once in worker processes: a number, or auto (one per GPU; on the CPU one per core, up to 8, one thread each)"},
    "--data": {"action": "append", "metavar": "NAME=PATH", "help": "a dataset's local copy (repeatable)"},
    "--preset": {"choices": ["quick", "paper"], "help": "quick: a CPU budget; paper: the papers' models and recipes"},
    "--tuned": {"type": Path, "metavar": "DIR", "help": "where the tuned settings files are (default: ./configs/tuned)"},
    "--pretrained": {"dest": "model.pretrained", "metavar": "PATH", "help": "a local file of pretrained backbone weights (for --preset paper offline)"},
    "--compile": {"dest": "model.compile", "action": "store_true", "default": None, "help": "run the backbone through torch.compile (faster on a GPU; its own cache keys)"},
    "--timeout": {"type": float, "metavar": "SECONDS", "help": "per-cell time limit; a cell past it is stopped and stored as failed (default: the preset's)"},
    "--executor": {"choices": ["local", "ray"], "default": "local", "help": "where cells (tune: trials) run: local worker processes (default), or Ray tasks on an existing cluster (pip install 'unlearn-bench[ray]'; tune: --workers of them, on nodes that share --out)"},
    "--ray-address": {"metavar": "ADDRESS", "help": "the Ray cluster for --executor ray (default: RAY_ADDRESS, else this node's cluster; 'local' starts a local instance)"},
    "--shard": {"metavar": "I/N", "help": "run only slice I of N of the cells (e.g. a SLURM array task per slice, one shared --out; then `unlearn-bench leaderboard` merges them)"},
    "--hparams": {"dest": "hparams_from", "choices": ["tuned", "defaults"], "help": "tuned: each method's tuned settings where configs/tuned has them for the task (default); defaults: the hand-set ones"},
    "--trials": {"dest": "tune.trials", "type": int, "metavar": "N", "help": "trials per method x task, the same for every method (default: 16)"},
    "--tune-seeds": {"dest": "tune.seeds", "nargs": "+", "type": int, "metavar": "S", "help": "tuning seeds, each >= 1000 (default: 1000)"},
    "--debug": {"action": "store_true", "help": "keep and print the traceback of each failed cell (for a non-finite loss: with the lines of the method's own code that returned it; every step's loss is checked)"},
}
#: what each command takes of them
EVERY_COMMAND = ("--tasks", "--out", "--config", "--workers")
RUN_AND_TUNE = ("--methods", "--accelerator", "--devices", "--precision", "--data", "--preset", "--tuned", "--executor", "--ray-address")
RUN_FLAGS = (*EVERY_COMMAND, *RUN_AND_TUNE, "--seeds", "--leaderboard", "--strategy", "--pretrained", "--compile", "--timeout", "--shard", "--hparams", "--debug")
TUNE_FLAGS = (*EVERY_COMMAND, *RUN_AND_TUNE, "--trials", "--tune-seeds")
SUBMIT_FLAGS = (*EVERY_COMMAND, "--seeds", "--leaderboard", "--debug")


def _command(commands: Any, name: str, flags: Sequence[str], **described: str) -> argparse.ArgumentParser:
    """Subcommand ``name`` with the shared ``flags`` it takes."""
    parser = commands.add_parser(name, **described)
    for flag in flags:
        parser.add_argument(flag, **SHARED_FLAGS[flag])
    return parser


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="unlearn-bench", description="Benchmark suite for group-robust machine unlearning."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    _command(
        commands, "run", RUN_FLAGS,
        help="run methods x tasks x seeds and write results and the leaderboard",
        description="Run every method on every task for every seed, score each against the gold "
        "(retrain) model and write the leaderboard. With no options: the default benchmark.",
    )
    _command(
        commands, "tune", TUNE_FLAGS,
        help="tune every method's hyper-parameters with the same Optuna budget, on tuning seeds and VAL rows",
        description="For every method x task, an Optuna study (TPE, seeded) of --trials trials over the method's search "
        "space, each trial unlearning on the tuning seeds (1000 and up, never reported) and scored by Avg. Gap to that "
        "seed's gold with VAL in TEST's place. Studies are kept in <out>/tuning (a killed tune resumes; several tune "
        "commands on one --out share the studies); the best settings go to <tuned>/<suite>.yaml, which `run` uses.",
    )

    listing = commands.add_parser("list", help="list registered methods or tasks", description="List registered methods or tasks.")
    listing.add_argument("what", choices=["methods", "tasks"])

    board = commands.add_parser(
        "leaderboard",
        help="rebuild the leaderboard from result files and submitted entries (or --show it)",
        description="Rebuild leaderboard.json, leaderboard.md and index.html from the result files under --runs and "
        "the submitted entries under <leaderboard>/entries/; with --show, print the existing leaderboard.json instead.",
    )
    board.add_argument("--runs", type=Path, default=Path("runs"), help="results directory (default: ./runs)")
    board.add_argument("--leaderboard", type=Path, default=Path("leaderboard"), help="output directory (default: ./leaderboard)")
    board.add_argument("--show", action="store_true", help="print the existing leaderboard.json as tables, without rebuilding it")

    validate = commands.add_parser(
        "validate",
        help="check a method plugin against the contract and by a smoke run on a tiny task",
        description="Check a method plugin: it imports; it is an UnlearningMethod taking (model, original, data); every "
        "hyper-parameter has a JSON default; on a tiny task it runs with finite losses, changes the model, leaves the "
        "original untouched, leaves a float32 Classifier and gives identical weights for one seed twice. Stops at the "
        "first failing check: one line per problem (FILE:LINE: what), exit status 1.",
    )
    validate.add_argument("plugin", metavar="PLUGIN", help="FILE.py:CLASS or a registered method name")
    validate.add_argument("--out", type=Path, help="keep the tiny task's data and original model in this store (default: a temporary directory)")

    submit = _command(
        commands, "submit", SUBMIT_FLAGS,
        help="validate a method plugin, run it over the benchmark grid and add its entry to the leaderboard",
        description="Validate PLUGIN, run it on the official grid (the default benchmark's tasks and seeds, as "
        "`unlearn-bench run`; --config, --tasks or --seeds make a custom grid), write <leaderboard>/entries/<method>.json "
        "(its cells and their provenance) and rebuild the leaderboard with it.",
    )
    submit.add_argument("plugin", metavar="PLUGIN", help="FILE.py:CLASS or a registered method name")
    submit.add_argument("--no-tune", action="store_true", help="skip tuning: run the plugin's hand-set settings (the entry is marked untuned)")

    data = commands.add_parser("data", help="inspect a dataset's local copy", description="Inspect a dataset's local copy.")
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    check = data_commands.add_parser(
        "check",
        help="count rows per split and group and compare with the published counts",
        description="Read the labels of a local copy and print its rows per split and group beside the published counts, naming each mismatch (exit status 1 if any).",
    )
    check.add_argument("name", help="dataset (task suite) name, e.g. waterbirds")
    check.add_argument("--from", dest="path", required=True, type=Path, help="the local copy")

    again = commands.add_parser(
        "rescore",
        help="recompute every non-adversarial metric from the stored predictions (no model needed)",
        description="Recompute every metric that the per-sample predictions files determine, rewrite "
        "the result files, report any stored value that differed, and rebuild the leaderboard.",
    )
    again.add_argument("--runs", type=Path, default=Path("runs"), help="results directory (default: ./runs)")
    again.add_argument("--leaderboard", type=Path, default=Path("leaderboard"), help="output directory (default: ./leaderboard)")

    claims = commands.add_parser(
        "claims",
        help="check the seed papers' claims against the leaderboard, with intervals over seeds",
        description="Evaluate the seed papers' claims on leaderboard.json alone: per task, the numbers with 95% "
        "intervals, the test used and a verdict (supported, contradicted, inconclusive, not measured). Exit status 0 whatever the verdicts.",
    )
    claims.add_argument("--leaderboard", type=Path, default=Path("leaderboard"), metavar="DIR", help="directory with leaderboard.json, or the file (default: ./leaderboard)")
    claims.add_argument("--markdown", type=Path, metavar="FILE", help="also write the claims as a Markdown page (e.g. docs/claims.md)")
    claims.add_argument("--against", type=Path, metavar="DIR", help="a second leaderboard (e.g. of hand-set settings): the Markdown page shows each verdict there and whether it changed")
    return parser


def _settings(args: argparse.Namespace, config: dict[str, Any]) -> dict[str, Any]:
    """The config's settings with the flags given over them (a flag whose dest is ``section.key``
    sets that key of the section; the flags that are no setting are left out)."""
    from benchmark.run.spec import Config

    settings = dict(config)
    for dest, value in vars(args).items():
        section, _, key = dest.rpartition(".")
        if value is None or (section or key) not in Config.model_fields:
            continue
        if not section:
            settings[key] = value
        elif isinstance(settings.get(section) or {}, dict):  # a section that is no mapping is refused as it is
            settings[section] = {**(settings.get(section) or {}), key: value}
    return settings


def _spec(args: argparse.Namespace, config: dict[str, Any], methods: list[str] | None = None) -> Any:
    """The run's spec from the config and the flags (``methods`` instead of ``--methods``)."""
    from benchmark.run.spec import build_spec

    return build_spec(_settings(args, config), methods=methods)


def cmd_run(args: argparse.Namespace, console: Console) -> int:
    from benchmark.run.spec import read_config
    from benchmark.run.store import Store

    spec = _spec(args, read_config(args.config))
    _, outcomes = _execute(spec, args, console)
    failed = _summary(outcomes, spec, console)
    _board(Store(spec.out), spec.leaderboard, console, tasks={t.id for t in spec.tasks})
    _failures(failed, args.debug)
    return 1 if failed else 0


def _execute(spec: Any, args: argparse.Namespace, console: Console) -> tuple[Any, list[Any]]:
    """Run the spec's plan (``Benchmark.execute``) with a progress display; a runner of the spec
    and the outcomes."""
    from benchmark.api import Benchmark

    benchmark = Benchmark.from_spec(spec)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        overall = progress.add_task("cells", total=None)
        rows: dict[int, Any] = {}

        def report(worker: int, what: str, done: int, total: int) -> None:
            if worker not in rows:
                rows[worker] = progress.add_task("", total=None)
            progress.update(rows[worker], description=f"  {what}", completed=done, total=total or None)

        result = benchmark.execute(
            getattr(args, "executor", "local"), ray_address=getattr(args, "ray_address", None), debug=args.debug, report=report,
            planned=lambda n: progress.update(overall, total=n), finished=lambda outcome: progress.advance(overall),
        )  # fmt: skip
        for row in rows.values():
            progress.update(row, visible=False)
    if result.usage is not None and result.usage.wall:
        console.print(time_split(result.usage, result.outcomes), markup=False, highlight=False)
    return benchmark.runner(), result.outcomes


def time_split(usage: Any, outcomes: list[Any]) -> str:
    """One line: where the workers' time went (what the run's cells' records say they spent
    unlearning and on each half of scoring, the originals, and the rest of their jobs) and how
    long they waited for work."""
    records = [o.record for o in outcomes if o.status == "done" and o.record is not None]
    spent = {k: sum(r.timings.get(k, 0.0) for r in records) for k in ("unlearn_seconds", "measure_seconds", "score_seconds")}
    busy = sum(usage.busy.values())
    rest = busy - usage.busy["original"] - sum(spent.values())
    return (
        f"time: {usage.wall:.0f} s on {usage.workers['device']} worker(s) and {usage.workers['scorer']} scorer: "
        f"unlearning {spent['unlearn_seconds']:.0f} s, scoring {spent['measure_seconds']:.0f} s (device half) + "
        f"{spent['score_seconds']:.0f} s (host half), originals {usage.busy['original']:.0f} s, "
        f"the rest {max(rest, 0.0):.0f} s, waiting {usage.wall * sum(usage.workers.values()) - busy:.0f} s"
    )


def _summary(outcomes: list[Any], spec: Any, console: Console) -> list[Any]:
    """Print how many cells ran in this invocation and how many were reused from the store
    without running (the two add up to every cell), and how many of those run failed; the
    failed outcomes. A failed cell is never reused (a run retries it), so a failure is a cell
    this run ran; the one exception, a cell another process on the same store ran and
    failed meanwhile, is counted as run too."""
    failed = [o for o in outcomes if o.status == "failed"]
    reused = sum(o.status == "cached" for o in outcomes)
    ran = len(outcomes) - reused
    console.print(f"{ran} cells run, {reused} reused from {spec.out}; of those run, {len(failed)} failed")
    return failed


def _failures(failed: list[Any], debug: bool) -> None:
    for o in failed:
        err_console.print(f"error: {o.cell.label}: {o.error}", markup=False, highlight=False, soft_wrap=True)
        if debug and o.record is not None and o.record.traceback:
            err_console.print(o.record.traceback, markup=False, highlight=False)


def _board(store: Any, directory: Path, console: Console, records: list | None = None, tasks: set[str] | None = None) -> None:
    """Build the leaderboard from every compatible cell of ``store`` and write its views
    (``api.build_leaderboard``); print its tables (of ``tasks``, default all) and the cells it
    shows as failed or refused."""
    from benchmark.api import build_leaderboard
    from benchmark.report.render import rich_tables
    from benchmark.report.terminal import print_fitted

    built = build_leaderboard(store, directory, records)
    board = built.board
    shown = dataclasses.replace(board, tasks=[t for t in board.tasks if tasks is None or t["id"] in tasks])
    print_fitted(console, rich_tables(shown), keep=2)
    for row in board.refused:
        err_console.print(f"refused: {row['method']} · {row['task']} · seed {row['seed']}: {row['reason']}", markup=False, highlight=False, soft_wrap=True)
    console.print(
        f"leaderboard of {built.scored} cells in {store.root}{_from_entries(built.added, directory)} ({len(board.failed)} failed, {len(board.refused)} refused): "
        + ", ".join(str(p) for p in built.paths)
    )


def _from_entries(added: list, directory: Path) -> str:
    return f" and {len(added)} from {directory / 'entries'}" if added else ""


def cmd_validate(args: argparse.Namespace, console: Console) -> int:
    from benchmark.submit.check import validate_plugin

    verdict = validate_plugin(args.plugin, args.out)
    _print_verdict(verdict, console)
    return 0 if verdict.ok else 1


def _print_verdict(verdict: Any, console: Console) -> None:
    """The checks that passed (stdout), the one that failed and its problems (stderr)."""
    plain = {"markup": False, "highlight": False, "soft_wrap": True}
    console.print(f"validate {verdict.plugin}", **plain)
    for check in verdict.passed:
        console.print(f"  ✓ {check}", **plain)
    if verdict.ok:
        console.print(f"{verdict.plugin}: all {len(verdict.passed)} checks passed in {verdict.seconds:.1f} s", **plain)
        return
    console.print(f"  ✗ {verdict.failed}", **plain)
    for problem in verdict.problems:
        err_console.print(problem, **plain)


def cmd_submit(args: argparse.Namespace, console: Console) -> int:
    from benchmark.run.spec import read_config
    from benchmark.run.store import Store, check_writable
    from benchmark.submit.check import validate_plugin
    from benchmark.submit.entry import build_entry, write_entry

    config = read_config(args.config)
    out = args.out or Path(config.get("out") or "runs")
    check_writable(out, "output directory")
    verdict = validate_plugin(args.plugin, out)  # the tiny task's data and original stay in the store
    _print_verdict(verdict, console)
    if not verdict.ok:
        return 1
    spec = _spec(args, config, methods=[args.plugin])
    grid = "custom" if args.config or args.tasks or args.seeds else "official"
    if grid == "custom":
        console.print('a custom grid (--config, --tasks or --seeds): the entry is marked grid "custom"')
    if args.no_tune:
        console.print("--no-tune: the plugin runs its hand-set settings; the entry is marked untuned", markup=False)
        spec = dataclasses.replace(spec, hparams_from="defaults")
    else:
        console.print(f"tuning {args.plugin} with the official budget ({spec.tune.trials} trials per task) before the grid", markup=False)
        _tune(spec, args, console)
    runner, outcomes = _execute(spec, args, console)
    failed = _summary(outcomes, spec, console)
    if failed:
        _failures(failed, args.debug)
        err_console.print("error: no entry written: every cell must be done; fix the failures and submit again", markup=False)
        return 1
    entry = build_entry(runner, args.plugin, outcomes, grid, tuned=not args.no_tune)
    console.print(f"entry: {write_entry(entry, spec.leaderboard)} ({len(entry['cells'])} result cells, grid {grid})", markup=False)
    _board(Store(spec.out), spec.leaderboard, console, tasks={t.id for t in spec.tasks})
    return 0


def cmd_tune(args: argparse.Namespace, console: Console) -> int:
    from benchmark.run.spec import read_config

    spec = _spec(args, read_config(args.config))
    return 0 if _tune(spec, args, console) else 1


def _tune(spec: Any, args: argparse.Namespace, console: Console) -> bool:
    """Tune ``spec``'s methods with a progress display and print what was tuned; False when a
    study has no complete trial (a study another process is still finishing is not a failure)."""
    from benchmark.run.pool import default_workers
    from benchmark.run.runner import Runner
    from benchmark.run.store import check_writable
    from benchmark.tune.study import tuning_spec
    from benchmark.tune.tuning import tune

    check_writable(spec.out, "output directory")
    Runner(tuning_spec(spec)).validate()  # the tuned files readable, every method built on every task, before any trial
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        bar = progress.add_task("trials", total=None)

        def finished(line: str) -> None:
            progress.console.print(f"  {line}", markup=False, highlight=False)
            progress.advance(bar)

        workers = spec.workers or default_workers(spec.runtime)
        ray = getattr(args, "executor", "local") == "ray"
        result = tune(spec, workers, finished, lambda n: progress.update(bar, total=n), getattr(args, "ray_address", None), ray)
    for method, why in result.skipped:
        console.print(f"{method}: not tuned ({why}): it runs its hand-set settings", markup=False, highlight=False)
    for (method, task), entry in result.entries.items():
        console.print(
            f"{method} · {task}: {entry['trials']} trials, {entry['failures']} failed, {entry['seconds']:.0f} s; "
            f"objective {entry['start_objective']} (own settings) -> {entry['best_objective']}: {entry['hparams']}",
            markup=False, highlight=False, soft_wrap=True,
        )
    for line in result.all_failed:
        err_console.print(f"every trial failed, nothing tuned: {line}", markup=False, highlight=False, soft_wrap=True)
    for name in result.open:
        console.print(f"{name}: slots still held by another tune process; its entry is written when they finish", markup=False)
    files = ", ".join(str(f) for f in result.files) or "none"
    console.print(f"tuned {len(result.entries)} studies in {result.seconds:.0f} s; tuned settings: {files}", markup=False)
    return not result.all_failed


def cmd_list(args: argparse.Namespace, console: Console) -> int:
    from rich.table import Table

    from benchmark import registry
    from benchmark.report.terminal import Foldable, print_fitted

    # a plugin that cannot be loaded is a row saying why, not the end of the listing
    if args.what == "methods":
        table = Table("method", "description", "paper", "gold")
        for listed in registry.list_methods():
            cls = listed.loaded
            if cls is None:
                table.add_row(listed.name, Foldable(f"broken: {listed.broken}", "red"), "", "")
            else:
                table.add_row(listed.name, cls.description, cls.paper, "yes" if cls.is_gold else "")
    else:
        table = Table("task", "dataset", "g*", "forget size", "skew", "default")
        for listed in registry.list_suites():
            if listed.loaded is None:
                table.add_row(listed.name, Foldable(f"broken: {listed.broken}", "red"), "", "", "", "")
            for t in listed.loaded or []:
                size = str(t.forget_size) + ("" if isinstance(t.forget_size, int) else f" of {t.fraction_of}")
                table.add_row(t.id, t.source.name, str(t.forget_group), size, str(t.skew), "yes" if t.default else "")
    print_fitted(console, table)
    return 0


def cmd_leaderboard(args: argparse.Namespace, console: Console) -> int:
    from benchmark.run.store import Store

    if args.show:
        return _show(args.leaderboard, console)
    if not (args.runs / "results").is_dir() and not any((args.leaderboard / "entries").glob("*.json")):
        raise BenchmarkError(f"no results under {args.runs} (expected {args.runs / 'results'}/<task>/<method>/seed-<n>.json)")
    _board(Store(args.runs), args.leaderboard, console)
    return 0


def _show(directory: Path, console: Console) -> int:
    """Print the leaderboard in ``directory`` (or that file) as tables, as it is."""
    from benchmark.report.leaderboard import Leaderboard
    from benchmark.report.render import rich_tables
    from benchmark.report.terminal import print_fitted

    path = directory if directory.suffix == ".json" else directory / "leaderboard.json"
    if not path.is_file():
        raise BenchmarkError(f"no leaderboard at {path}: build one with `unlearn-bench run` or `unlearn-bench leaderboard`")
    print_fitted(console, rich_tables(Leaderboard.load(path)), keep=2)
    return 0


def cmd_rescore(args: argparse.Namespace, console: Console) -> int:
    import os

    from joblib import parallel_config

    from benchmark.run.rescore import rescore
    from benchmark.run.store import Store

    if not (args.runs / "results").is_dir():
        raise BenchmarkError(f"no results under {args.runs} (expected {args.runs / 'results'})")
    store = Store(args.runs)
    with parallel_config(backend="threading", n_jobs=os.cpu_count() or 1):  # alone on the machine: every core
        result = rescore(store)
    if not result.records:
        raise BenchmarkError(f"no readable result files under {args.runs / 'results'}")
    rescored = sum(r.done for r in result.records) - len(result.not_rescored)
    console.print(f"{rescored} result files rescored from their predictions; {len(result.changes)} had a different stored value")
    for path, names in result.changes.items():
        console.print(f"  {path}: {', '.join(names)}", markup=False, highlight=False)
    for path, why in result.not_rescored.items():
        err_console.print(f"not rescored: {path}: {why}", markup=False, highlight=False, soft_wrap=True)
    _board(store, args.leaderboard, console, result.records)
    return 1 if result.not_rescored else 0


def cmd_data(args: argparse.Namespace, console: Console) -> int:
    from benchmark.data.check import check_counts

    lines, mismatches = check_counts(args.name, args.path)
    for line in lines:
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    return 1 if mismatches else 0


def cmd_claims(args: argparse.Namespace, console: Console) -> int:
    from benchmark.report.claims import evaluate, rich_table, to_markdown
    from benchmark.report.leaderboard import Leaderboard
    from benchmark.report.terminal import print_fitted

    path = args.leaderboard if args.leaderboard.suffix == ".json" else args.leaderboard / "leaderboard.json"
    board = Leaderboard.load(path)
    findings = evaluate(board)
    against = None
    if args.against:
        other = args.against if args.against.suffix == ".json" else args.against / "leaderboard.json"
        against = evaluate(Leaderboard.load(other))
    print_fitted(console, rich_table(findings), keep=2, pack="words")  # claim and task beside each part
    if args.markdown:
        try:
            args.markdown.parent.mkdir(parents=True, exist_ok=True)
            args.markdown.write_text(to_markdown(findings, board, against))
        except OSError as err:
            raise BenchmarkError(f"cannot write {args.markdown}: {err}") from None
        console.print(f"claims: {args.markdown}")
    return 0


COMMANDS = {
    "run": cmd_run, "list": cmd_list, "leaderboard": cmd_leaderboard, "rescore": cmd_rescore, "data": cmd_data,
    "claims": cmd_claims, "validate": cmd_validate, "submit": cmd_submit, "tune": cmd_tune,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    console = Console()
    try:
        with stop_on_signals():
            return COMMANDS[args.command](args, console)
    except BenchmarkError as err:
        err_console.print(f"error: {err}", markup=False, highlight=False, soft_wrap=True)
        return 2
    except Stopped as stop:
        err_console.print(f"stopped by {stop}: finished cells are kept; run the same command again to resume", markup=False)
        return stop.code
    except KeyboardInterrupt:
        err_console.print("stopped by SIGINT: finished cells are kept; run the same command again to resume", markup=False)
        return 130


if __name__ == "__main__":
    sys.exit(main())
