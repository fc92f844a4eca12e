"""Benchmark: what the scorecard costs per cell on the default task, and the attacks' share.

    python scripts/bench_metrics.py [--runs DIR] [--repeats N]

Trains (or loads from DIR's cache) the original model of the default task at skew 1.0,
seed 0, then times each stage of the evaluation a cell goes through, against a plain
baseline measured in the same run: one clean forward pass over the rows the cell
evaluates (RETAIN, FORGET, VAL, TEST). Prints seconds, ratio to the baseline, and share.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from benchmark.metrics import scorecard
from benchmark.metrics.inference import predict_probs
from benchmark.metrics.groups import accuracy_metrics, calibration_metrics, fairness_metrics, representation_metrics
from benchmark.metrics.mia import mia_metrics
from benchmark.run.runner import Runner
from benchmark.run.spec import build_spec
from benchmark.metrics.robustness import AttackSettings


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=Path("runs"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    spec = build_spec({"out": str(args.runs)}, methods=["original"], tasks=["shapes/g2-r0.9-skew1.0"], seeds=[0])
    runner = Runner(spec)
    cell = runner.plan()[-1]
    data = runner.task_data(cell.task, cell.seed)
    model = runner.original(cell.task, cell.seed).to(spec.runtime.device)
    settings, rt, ds = spec.metrics_for(cell.task), spec.runtime, data.dataset
    rows = torch.cat([ds.train.x, ds.val.x, ds.test.x])
    preds = scorecard.collect(model, data, settings, rt)
    pgd_only = scorecard.MetricSettings(settings.mi_rows, settings.attacks)

    def attack_with(**change):
        a = AttackSettings(**{**settings.attacks.__dict__, **change})
        return lambda: scorecard.attack(model, ds, scorecard.MetricSettings(settings.mi_rows, a), rt)

    stages = {
        "baseline: clean forward pass over every evaluated row": lambda: predict_probs(model, rows, device=rt.device),
        "predictions (+ features, channel spreads)": lambda: scorecard.collect(model, data, settings, rt),
        "accuracy, group and fairness metrics, ECE": lambda: (accuracy_metrics(preds), fairness_metrics(preds), calibration_metrics(preds)),
        "membership inference attack": lambda: mia_metrics(preds),
        "mutual information and fairness gap": lambda: representation_metrics(preds),
        "attacks: PGD + AutoAttack": lambda: scorecard.attack(model, ds, pgd_only, rt),
        "  of which AutoAttack alone (PGD with 0 steps)": attack_with(pgd_steps=0),
    }
    seconds = {name: timed(fn, args.repeats) for name, fn in stages.items()}
    base = seconds.pop("baseline: clean forward pass over every evaluated row")
    total = sum(v for k, v in seconds.items() if not k.startswith("  "))
    a = settings.attacks
    print(f"default task {cell.task.id}, {len(rows)} evaluated rows, attack subset {a.rows} rows "
          f"(PGD {a.pgd_steps} steps; AutoAttack {a.aa_steps} steps, Square {a.square_queries} queries), "
          f"{torch.get_num_threads()} threads, median of {args.repeats}")
    print(f"{'stage':52s} {'seconds':>8s} {'x baseline':>11s} {'share':>7s}")
    print(f"{'baseline: clean forward pass over all evaluated rows':52s} {base:8.3f} {1:11.1f} {'':>7s}")
    for name, s in seconds.items():
        print(f"{name:52s} {s:8.3f} {s / base:11.1f} {100 * s / total:6.1f}%")
    print(f"{'metric suite per cell':52s} {total:8.3f} {total / base:11.1f} {100:6.1f}%")


if __name__ == "__main__":
    main()
