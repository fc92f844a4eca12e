"""Benchmark: training, evaluation and attack throughput on one device, on synthetic shapes.

    python scripts/bench_throughput.py [--size PX] [--batch N [N ...]] [--steps N] [--warmup N]
        [--backbone NAME] [--precision P] [--compile] [--rows N] [--attack-rows N] [--budget B]
        [--repeats N] [--grid auto|run|skip] [--grid-args "..."]

Training: images/s of unlearn-bench's step (the ERM module in the runner's Trainer with its
callbacks, fed by ``make_loader`` from a dataset placed on the device: resident there, and
streamed from the host through pinned memory) and of a plain PyTorch loop with the same model,
batch, precision and augmentation (uint8 rows resident on the device, indexed and augmented
there, SGD with the same schedule, autocast), as a ratio in one run; the best of ``--repeats``
runs of each. Then clean evaluation images/s (``predict_probs`` on host and on resident rows),
attacked images/s under PGD and the standard AutoAttack (on the model the plain loop trained;
AutoAttack's rate depends on how many rows survive each attack, so the share left robust is
shown), and the wall time of the paper grid on shapes, ``unlearn-bench run --preset paper
--tasks shapes`` in a subprocess (by default only where there is a GPU).

Defaults: on a GPU 224 px ResNet-18, bf16 mixed precision, channels_last, batches of 256 and 32
(the paper recipe's), the standard AutoAttack; on the CPU a tiny setting (32 px, timm's
test_resnet, fp32, the reduced AutoAttack: the standard one takes minutes per row there).
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterator

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch.nn import functional as F

from benchmark.augment import augment, to_unit_float
from benchmark.dataset import GroupDataset
from benchmark.inference import eval_mode, predict_probs
from benchmark.metrics.robustness import AttackSettings, build_attacks, preserved_rng
from benchmark.model import Classifier, ModelSpec, build_model
from benchmark.run.fitting import FiniteLoss
from benchmark.run.runtime import Runtime
from benchmark.training import ERM, Recipe, warmup_schedule
from tasks.shapes import ShapesSource

GPU_DEFAULTS = dict(
    size=224, backbone="resnet18", batch=[256, 32], steps=100, warmup=20, rows=4795, attack_rows=512, repeats=2, budget="standard"
)
CPU_DEFAULTS = dict(size=32, backbone="test_resnet", batch=[32], steps=20, warmup=5, rows=256, attack_rows=8, repeats=1, budget="reduced")
LR, MOMENTUM, WEIGHT_DECAY = 1e-2, 0.9, 1e-3  # the paper recipe's (REFERENCE §3, Waterbirds)
EPS = 2 / 255  # shapes' attack budget


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# -- training ------------------------------------------------------------------------------------


class StepTimer(Callback):
    """Images/s over the steps after ``warmup``, timed from the first one's start to the end of the
    last (the device synchronised at both ends)."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.images, self.started = warmup, 0, 0.0
        self.rate = 0.0

    def on_train_batch_start(self, trainer: L.Trainer, module: Any, batch: Any, batch_idx: int) -> None:
        if trainer.global_step == self.warmup:
            sync(module.device)
            self.started = time.perf_counter()

    def on_train_batch_end(self, trainer: L.Trainer, module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        if trainer.global_step > self.warmup:
            self.images += len(batch.x)
        if trainer.global_step == trainer.max_steps:
            sync(module.device)
            self.rate = self.images / (time.perf_counter() - self.started)


def ours(
    dataset: GroupDataset, spec: ModelSpec, runtime: Runtime, batch: int, args: argparse.Namespace, callbacks: bool = True
) -> float:
    """Images/s of unlearn-bench's training step: ERM fit by the runtime's Trainer."""
    L.seed_everything(0, verbose=False)
    recipe = Recipe(epochs=1, batch_size=batch, lr=LR, weight_decay=WEIGHT_DECAY, warmup_epochs=0, select_best_on_val=False)
    module = ERM(build_model(spec, dataset.num_classes, 0), dataset, torch.arange(len(dataset.train)), recipe, seed=0)
    timer = StepTimer(args.warmup)
    extra = [FiniteLoss()] if callbacks else []
    runtime.trainer(callbacks=[*extra, timer], max_steps=args.warmup + args.steps, max_epochs=-1).fit(module)
    return timer.rate


def autocast(runtime: Runtime) -> ContextManager:
    precision = runtime.resolved_precision
    if "mixed" not in precision:
        return nullcontext()
    return torch.autocast(runtime.device.type, dtype=torch.bfloat16 if precision.startswith("bf16") else torch.float16)


def plain(
    dataset: GroupDataset, spec: ModelSpec, runtime: Runtime, batch: int, args: argparse.Namespace
) -> tuple[float, Classifier]:
    """Images/s of a plain loop on the rows resident on the device, and the model it trained."""
    L.seed_everything(0, verbose=False)
    device, split = runtime.device, dataset.feed("train").split
    x, y = split.x.to(device), split.y.to(device)
    model = build_model(spec, dataset.num_classes, 0).to(device).train()
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    total = args.warmup + args.steps
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: warmup_schedule(step, total, 0, "cosine"))
    images, started = 0, 0.0
    for step, idx in enumerate(epochs_of(len(x), batch, device, total)):
        if step == args.warmup:
            sync(device)
            started = time.perf_counter()
        xb = augment(to_unit_float(x[idx]), dataset.augment)
        with autocast(runtime):
            loss = F.cross_entropy(model(xb), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        schedule.step()
        images += len(idx) if step >= args.warmup else 0
    sync(device)
    return images / (time.perf_counter() - started), model


def epochs_of(n: int, batch: int, device: torch.device, steps: int) -> Iterator[torch.Tensor]:
    """``steps`` batches of positions, epoch after epoch of a fresh permutation (the last batch of
    an epoch partial, as the loader's)."""
    step = 0
    while True:
        for idx in torch.randperm(n, device=device).split(batch):
            if step == steps:
                return
            yield idx
            step += 1


# -- evaluation and attacks ----------------------------------------------------------------------


def timed(device: torch.device, work: Callable[[], Any]) -> float:
    sync(device)
    started = time.perf_counter()
    work()
    sync(device)
    return time.perf_counter() - started


def clean_rate(model: Classifier, x: torch.Tensor, runtime: Runtime) -> float:
    """Images/s of ``predict_probs`` (the scorecard's pass) on ``x``, after one warm-up pass."""
    run = lambda: predict_probs(model, x, device=runtime.device, forward_context=lambda: autocast(runtime))  # noqa: E731
    run()
    return len(x) / timed(runtime.device, run)


def attacked_rate(
    model: Classifier, x: torch.Tensor, y: torch.Tensor, attack: Any, device: torch.device, batch: int
) -> tuple[float, float]:
    """(images/s, share of rows still classified correctly) under ``attack``, as the robustness
    metric runs it: float32, gradients on, the global RNG restored."""
    robust = []

    def run() -> None:
        for start in range(0, len(x), batch):
            xb, yb = to_unit_float(x[start : start + batch].to(device)), y[start : start + batch].to(device)
            adv = attack(xb, yb)
            with torch.no_grad():
                robust.append((model(adv).argmax(1) == yb).float())

    with preserved_rng(), eval_mode(model), torch.enable_grad(), torch.autocast(device.type, enabled=False):
        seconds = timed(device, run)
    return len(x) / seconds, torch.cat(robust).mean().item()


# -- the report ----------------------------------------------------------------------------------


def row(what: str, batch: Any, rate: float, base: float | None = None, note: str = "") -> None:
    ratio = f"{rate / base:9.2f}" if base else f"{'':9s}"
    shown = f"{rate:11.1f}" if rate >= 10 else f"{rate:11.3f}"
    print(f"{what:46s} {str(batch):>6s} {shown} {ratio}  {note}".rstrip(), flush=True)


def training_rows(
    dataset: GroupDataset, streamed: GroupDataset, spec: ModelSpec, runtime: Runtime, args: argparse.Namespace
) -> Classifier:
    """The training rows of the table; returns the model the last plain loop trained."""
    best = lambda f: max(f() for _ in range(args.repeats))  # noqa: E731
    model = None
    for batch in args.batch:
        base = 0.0
        for _ in range(args.repeats):
            rate, model = plain(dataset, spec, runtime, batch, args)
            base = max(base, rate)
        row("plain PyTorch loop (resident rows)", batch, base, base)
        run = lambda data, callbacks=True: ours(data, spec, runtime, batch, args, callbacks)  # noqa: E731
        row("unlearn-bench step (resident rows)", batch, best(lambda: run(dataset)), base)
        row("  same, without the runner's FiniteLoss", batch, best(lambda: run(dataset, False)), base)
        row("unlearn-bench step (streamed from the host)", batch, best(lambda: run(streamed)), base)
    return model


def attack_rows(model: Classifier, dataset: GroupDataset, args: argparse.Namespace, device: torch.device) -> None:
    test = dataset.feed("test").split
    x, y = test.x[: args.attack_rows], test.y[: args.attack_rows]
    settings = AttackSettings(budget=args.budget, eps=EPS)
    attacks = build_attacks(model.to(device), dataset.num_classes, settings, args.budget)
    for name, label in (("pgd", f"PGD-{settings.pgd_steps} (eps 2/255)"), ("autoattack", f"AutoAttack, {args.budget} budget")):
        rate, robust = attacked_rate(model, x, y, attacks[name], device, settings.batch_size)
        row(label, settings.batch_size, rate, note=f"{robust:.0%} of {len(x)} rows left robust")


def grid(args: argparse.Namespace) -> None:
    """Wall time of ``unlearn-bench run --preset paper --tasks shapes`` in a fresh store."""
    out = Path(args.grid_out or tempfile.mkdtemp(prefix="bench-grid-"))
    script = shutil.which("unlearn-bench", path=str(Path(sys.executable).parent)) or "unlearn-bench"
    command = [script, "run", "--preset", "paper", "--tasks", "shapes", "--out", str(out / "runs")]
    command += ["--leaderboard", str(out / "leaderboard"), *shlex.split(args.grid_args)]
    with open(out / "grid.log", "w") as log:
        started = time.perf_counter()
        code = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT).returncode
    seconds = time.perf_counter() - started
    print(f"paper grid: {seconds:.0f} s wall, exit status {code}: unlearn-bench {shlex.join(command[1:])} (log: {out / 'grid.log'})")


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, help="image size in px")
    parser.add_argument("--batch", type=int, nargs="+", help="batch sizes")
    parser.add_argument("--steps", type=int, help="timed training steps")
    parser.add_argument("--warmup", type=int, help="untimed steps first")
    parser.add_argument("--rows", type=int, help="TRAIN rows")
    parser.add_argument("--attack-rows", type=int, help="TEST rows attacked")
    parser.add_argument("--repeats", type=int, help="runs of each training measurement (the best counts)")
    parser.add_argument("--backbone", help="timm model name")
    parser.add_argument("--budget", choices=["standard", "reduced"], help="AutoAttack's budget (default: standard on a GPU, else reduced)")
    parser.add_argument("--precision", default="auto", help="auto (bf16-mixed on a GPU, else 32-true), bf16-mixed or 32-true")
    parser.add_argument("--compile", action="store_true", help="torch.compile the backbone (both loops)")
    parser.add_argument("--grid", choices=["auto", "run", "skip"], default="auto", help="time the paper grid (auto: on a GPU)")
    parser.add_argument("--grid-args", default="", help="more arguments for the grid's unlearn-bench run")
    parser.add_argument("--grid-out", help="where the grid's store goes (default: a temporary folder)")
    args = parser.parse_args()
    if args.precision.startswith("16"):
        parser.error("the plain loop has no gradient scaler: use bf16-mixed or 32-true")
    defaults = GPU_DEFAULTS if torch.cuda.is_available() else CPU_DEFAULTS
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def main() -> None:
    args = arguments()
    runtime = Runtime(accelerator="auto", precision=args.precision)
    device = runtime.device
    spec = ModelSpec(backbone=args.backbone, image_size=args.size, compile=args.compile)
    started = time.perf_counter()
    test_rows = max(args.attack_rows, 4 * max(args.batch))
    built = ShapesSource(preset="paper", n_train=args.rows, n_val=4, n_test=test_rows, size=args.size).build()
    made = time.perf_counter() - started
    dataset, streamed = built.placed(device, resident=True), built.placed(device, resident=False)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"{name}, torch {torch.__version__}, {runtime.resolved_precision}, {args.backbone} at {args.size} px, channels_last, "
          f"compile {'on' if args.compile else 'off'}; shapes (paper preset) with {args.rows} TRAIN rows, "
          f"generated in {made:.1f} s ({built.train.x.nbytes / 2**20:.0f} MiB)")
    print(f"{'what':46s} {'batch':>6s} {'images/s':>11s} {'x plain':>9s}")
    model = training_rows(dataset, streamed, spec, runtime, args)
    row("clean evaluation, predict_probs (host rows)", 512, clean_rate(model, built.test.x, runtime))
    row("clean evaluation, predict_probs (resident rows)", 512, clean_rate(model, dataset.feed("test").split.x, runtime))
    attack_rows(model, dataset, args, device)
    if args.grid == "run" or (args.grid == "auto" and device.type == "cuda"):
        grid(args)


if __name__ == "__main__":
    main()
