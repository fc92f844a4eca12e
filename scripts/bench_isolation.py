"""Benchmark: what the isolation checks (benchmark/run/isolation.py) cost a cell.

    python scripts/bench_isolation.py [--methods finetune neggrad ...] [--out DIR]

Part 1 runs cells of the default shapes task (seed 0) in this process through the runner,
which checks after each method that nothing shared changed, and prints each cell's check
time against the cell's own time (unlearning plus the device half of scoring) in the same
run. Part 2 times the same checks on what the largest built-in datasets share: CelebA's
labels at full size (202,599 rows) and a ResNet-18's weights, with inputs of Waterbirds'
size at 224 px memory-mapped (checked by identity, as the runner does).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from benchmark.model import ModelSpec, build_model
from benchmark.run.isolation import Baseline, Shared
from benchmark.run.runner import Runner
from benchmark.run.spec import build_spec

TASK = "shapes/g2-r0.9-skew1.0"


def cells(methods: list[str], out: Path) -> None:
    runner = Runner(build_spec({"out": str(out), "seeds": [0]}, methods=["retrain", *methods], tasks=[TASK]))
    print(f"{'method':14s} {'checks ms':>10s} {'cell s':>8s} {'ratio':>8s}")
    for cell in runner.plan():
        record = runner.cells.measure_cell(cell)
        checks, cell_seconds = record.timings["isolation_seconds"], record.timings["unlearn_seconds"] + record.timings["measure_seconds"]
        print(f"{cell.method.name:14s} {checks * 1e3:10.1f} {cell_seconds:8.2f} {checks / cell_seconds:8.2%}")


def large(repeats: int = 5) -> None:
    rows = 162_770 + 19_867 + 19_962  # CelebA's splits
    labels = {f"celeba {s}.{f}": torch.randint(0, 2, (rows // 3,)) for s in ("train", "val", "test") for f in ("y", "a")}
    groups = {f"celeba {s} group ids": torch.randint(0, 4, (rows // 3,)) for s in ("train", "val", "test")}
    weights = {f"original {k}": t for k, t in build_model(ModelSpec(backbone="resnet18", image_size=224), 2, 0).state_dict().items()}
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        path = Path(tmp) / "x.npy"
        np.save(path, np.zeros((4795, 3, 224, 224), dtype=np.uint8))
        x = torch.from_numpy(np.load(path, mmap_mode="r"))
        shared = Shared({**labels, **groups, **weights}, {"waterbirds train.x": x})
        megabytes = sum(t.numel() * t.element_size() for t in shared.content.values()) / 2**20
        baseline, times = Baseline.take(shared), []
        for _ in range(repeats):
            started = time.perf_counter()
            Baseline.take(shared, baseline.digests)
            assert not baseline.changes(shared)
            times.append(time.perf_counter() - started)
    print(f"large: {megabytes:.0f} MiB checked by content ({len(weights)} weight tensors of a ResNet-18, CelebA-sized labels), "
          f"{x.numel() / 2**20:.0f} MiB of inputs by identity: {statistics.median(times) * 1e3:.1f} ms per cell (median of {repeats})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=["finetune", "neggrad", "l1_sparse", "scrub", "ssd"])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        cells(args.methods, args.out or Path(tmp))
    large()


if __name__ == "__main__":
    main()
