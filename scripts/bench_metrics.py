"""Benchmark: what scoring one cell costs, the old single-process path against the split one.

    python scripts/bench_metrics.py [--runs DIR] [--methods M ...] [--tasks T ...] [--repeats N]

For each (method, task) cell (seed 0; by default three approximate methods on the default shapes
task at skew 1.0, and one on the default Adult task at skew 1.0) it unlearns once (not timed),
then scores the same model both ways in one run:

- old: every metric in the worker, one after the other, as the runner did before the split
  (predictions, attacks with APGD running all its iterations, MIU's forest MIA with a forest
  predicted per setting and an AUC per setting, its trees on one thread, the balanced MIA, the
  MI probes);
- new: the device half in the worker (predictions, attacks whose APGD runs end once every row
  is fooled: ``scorecard.measure``), and the
  host half (``rescore.score_record``, in the run's scorer process) with the forests' trees
  fitted on one thread and on every core (the scorer uses every core; what it gets depends on
  what the device workers leave free).

Prints seconds per metric family (median of ``--repeats``), the worker's path (what a device
worker waits for) and the total, as ratios new/old, and counts the metric values that differ
between the two paths (every metric but the cost ones; 0 expected). The original model's MI
probe runs once per original and process in either path and is left out of the timings.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
from joblib import parallel_config
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import roc_auc_score

from benchmark.metrics import robustness, scorecard
from benchmark.metrics.groups import accuracy_metrics, calibration_metrics, fairness_metrics, representation_metrics
from benchmark.metrics.mia import CRITERIA, ESTIMATORS, SEED, _labels, balanced_attack, losses
from benchmark.metrics.mutual_info import original_mi_from, original_mi_metrics
from benchmark.metrics.predictions import Predictions
from benchmark.run.rescore import score_record
from benchmark.run.record import MEASURED, CellRecord
from benchmark.run.runner import Cell, Runner
from benchmark.run.spec import build_spec

COST = ("unlearn_seconds",)


def old_miu_attack(p: Predictions) -> dict[str, float]:
    """MIU's forest attack as the runner computed it before: warm-started forests, each setting
    predicted on F and on F ∪ TEST, an AUC per setting."""
    retain, val, forget, test = (losses(p, part) for part in ("retain", "val", "forget", "test"))
    x_fit, y_fit = np.concatenate([retain, val]), _labels(len(retain), len(val))
    x_eval, y_eval = np.concatenate([forget, test]), _labels(len(forget), len(test))
    found: dict[tuple[int, str], dict[str, float]] = {}
    for criterion in CRITERIA:
        forest = RandomForestClassifier(criterion=criterion, random_state=SEED, n_jobs=1, warm_start=True)
        for n in ESTIMATORS:
            forest.set_params(n_estimators=n).fit(x_fit, y_fit)
            found[n, criterion] = {
                "mia_forget_nonmember": 100.0 * float(1.0 - forest.predict(forget).mean()),
                "mia_auc": 100.0 * float(roc_auc_score(y_eval, forest.predict_proba(x_eval)[:, 1])),
            }
    in_order = [(n, criterion) for n in ESTIMATORS for criterion in CRITERIA]
    return found[max(in_order, key=lambda setting: found[setting]["mia_forget_nonmember"])]


@contextmanager
def runs_to_the_end() -> Iterator[None]:
    """The attacks as before: APGD and APGD-T run every iteration, even once all rows are fooled."""
    stopping = robustness._stops_when_all_fooled
    robustness._stops_when_all_fooled = lambda attack: attack
    try:
        yield
    finally:
        robustness._stops_when_all_fooled = stopping


def timed(fn: Callable[[], Any], times: dict[str, list[float]], name: str) -> Any:
    start = time.perf_counter()
    out = fn()
    times.setdefault(name, []).append(time.perf_counter() - start)
    return out


def old_path(runner: Runner, cell: Cell, model: torch.nn.Module, times: dict[str, list[float]]) -> dict[str, float]:
    """Every metric in one process, one after the other, as before the split."""
    data, settings, rt = runner.artefacts.task_data(cell.task, cell.seed), runner.spec.metrics_for(cell.task), runner.spec.runtime
    p = timed(lambda: scorecard.collect(model, data, settings, rt.forward), times, "device: predictions, features, spreads")
    metrics = timed(lambda: {**accuracy_metrics(p), **fairness_metrics(p), **calibration_metrics(p)}, times, "host: accuracy, fairness, ECE")
    metrics |= timed(lambda: old_miu_attack(p), times, "host: MIU's forest MIA")
    metrics |= timed(lambda: balanced_attack(p), times, "host: balanced MIA")
    metrics |= timed(lambda: representation_metrics(p)[0], times, "host: MI probe, fairness gap")
    with runs_to_the_end():
        metrics |= timed(lambda: scorecard.attack(model, data.dataset, settings, rt.forward)[0], times, "device: attacks")
    # the original's MI: once per original and process in either path (warmed before timing)
    return metrics | original_mi_metrics(original_mi_from(runner.artefacts.original_features(cell.task, cell.seed), p.num_groups))


def new_path(runner: Runner, cell: Cell, model: torch.nn.Module, times: dict[str, list[float]], threads: int) -> dict[str, float]:
    """The device half as the worker runs it, then the host half as the scorer runs it."""
    data, settings, rt = runner.artefacts.task_data(cell.task, cell.seed), runner.spec.metrics_for(cell.task), runner.spec.runtime
    p, metrics, _ = timed(lambda: scorecard.measure(model, data, settings, rt.forward), times, "device half (worker)")
    runner.artefacts.original_features(cell.task, cell.seed)
    record = CellRecord(key="bench", status=MEASURED, method=cell.method.name, task={"id": cell.task.id}, seed=cell.seed,
                        metrics=dict(metrics), original_key=runner.artefacts.original_key(cell.task, cell.seed))
    with parallel_config(backend="threading", n_jobs=threads):
        timed(lambda: score_record(record, p, runner.store), times, f"host half (scorer, {threads} thread{'s' * (threads > 1)})")
    return record.metrics


def differing(old: dict[str, float], new: dict[str, float]) -> list[str]:
    same = lambda a, b: a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))  # noqa: E731
    keys = sorted((set(old) | set(new)) - set(COST))
    return [k for k in keys if not same(old.get(k), new.get(k))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, help="a store to reuse datasets and originals from (default: a temporary one)")
    parser.add_argument("--methods", nargs="+", default=["finetune", "neggrad", "scrub"])
    parser.add_argument("--tasks", nargs="+", default=["shapes/g2-r0.9-skew1.0", "adult/g2-r0.9-skew1.0"])
    parser.add_argument("--adult-methods", nargs="+", default=["finetune"], help="the methods scored on adult tasks")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(1)  # a CPU worker's one thread
    cores = os.cpu_count() or 1
    out = args.runs or Path(tempfile.mkdtemp(prefix="bench-metrics-"))
    print(f"{cores} cores, torch {torch.__version__}, one torch thread; store {out}; median of {args.repeats}")
    changed_total = 0
    for task in args.tasks:
        methods = args.adult_methods if task.startswith("adult") else args.methods
        spec = build_spec({"out": str(out)}, methods=methods, tasks=[task], seeds=[0])
        runner = Runner(spec)
        for cell in [c for c in runner.plan() if not c.method.cls.is_gold]:
            model = runner.cells.unlearn(cell)[0].model.to(spec.runtime.device)
            original_mi_from(runner.artefacts.original_features(cell.task, cell.seed), runner.artefacts.dataset(cell.task).num_groups)
            old_t: dict[str, list[float]] = {}
            new_t: dict[str, list[float]] = {}
            for _ in range(args.repeats):
                old = old_path(runner, cell, model, old_t)
                new = {threads: new_path(runner, cell, model, new_t, threads) for threads in sorted({1, cores})}
            changed = sorted({k for m in new.values() for k in differing(old, m)})
            changed_total += len(changed)
            report(cell, {k: statistics.median(v) for k, v in old_t.items()}, {k: statistics.median(v) for k, v in new_t.items()}, changed, cores)
    print(f"values that differ between the paths, over every cell: {changed_total}")


def report(cell: Cell, old: dict[str, float], new: dict[str, float], changed: list[str], cores: int) -> None:
    old_device = sum(v for k, v in old.items() if k.startswith("device"))
    old_total = sum(old.values())
    device = new["device half (worker)"]
    print(f"\n{cell.method.name} · {cell.task.id} · seed {cell.seed}")
    print(f"  {'old path (one process)':44s} {'seconds':>8s}")
    for name, seconds in old.items():
        print(f"  {name:44s} {seconds:8.3f}")
    print(f"  {'total (the worker waits for all of it)':44s} {old_total:8.3f}")
    print(f"  {'new path':44s} {'seconds':>8s} {'x old':>7s}")
    print(f"  {'device half (worker): predictions, attacks':44s} {device:8.3f} {device / old_device:7.2f}  (of the old device work)")
    for threads in sorted({1, cores}):
        host = new[f"host half (scorer, {threads} thread{'s' * (threads > 1)})"]
        print(f"  {f'host half (scorer, {threads} thread(s))':44s} {host:8.3f} {host / (old_total - old_device):7.2f}  (of the old host work)")
    host1 = new["host half (scorer, 1 thread)"]
    print(f"  worker's path: {device:.3f} s = {device / old_total:.2f}x old; total work (1 thread): {device + host1:.3f} s = {(device + host1) / old_total:.2f}x old")
    print(f"  values that differ: {len(changed)}{': ' + ', '.join(changed) if changed else ''}")


if __name__ == "__main__":
    main()
