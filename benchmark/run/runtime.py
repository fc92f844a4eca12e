"""Where and how models run: accelerator, devices, strategy and precision; the Trainer built
from them, and the forward context our own inference loops share with it.

Precision: one Lightning precision plugin, built by ``Runtime.precision_plugin`` from the
resolved precision, is what the Trainer trains with (``plugins=``) and what evaluation enters
(``forward_context``), so training and evaluation autocast alike. The attacks stay in float32
(benchmark/metrics/robustness.py turns autocast off).

Strategy: ``ddp`` trains one job on N devices with Lightning's DDP, its processes *spawned*
(``ddp_spawn``): our cells run inside pool workers, where Lightning's default launcher (which
re-runs ``sys.argv`` as a script) would re-run the whole benchmark, and forking is impossible
once this process has touched CUDA. So the module, its data and the callbacks travel to the
processes by pickle, the weights of rank 0 come back into the caller's module when fitting
ends (best-on-val restored there first), and evaluation runs here, on one device. Each process
takes its share of every batch (``_SharedBatchDDP``), not a DistributedSampler's share of the
rows: the recipe's batch size stays the batch of one step, and N processes take the steps of
one, on the same rows; only per-batch statistics (BatchNorm) are over each process's share.
"""

from __future__ import annotations

import functools
import logging
import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ContextManager, Iterable, Iterator

import torch
from lightning.fabric.connector import _PRECISION_INPUT_STR_ALIAS_CONVERSION
from lightning.fabric.plugins.environments import LightningEnvironment
from lightning.pytorch import LightningModule
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.plugins.precision import MixedPrecision, Precision
from lightning.pytorch.strategies import DDPStrategy
from lightning_utilities.core.apply_func import apply_to_collection
from torch import Tensor

from benchmark.errors import BenchmarkError
from benchmark.inference import Forward
from benchmark.settings import OneOf, check_fields

for _name in ("lightning.pytorch", "lightning.fabric", "lightning"):
    logging.getLogger(_name).setLevel(logging.ERROR)
warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
warnings.filterwarnings("ignore", message=r".*is smaller than the logging interval.*")
warnings.filterwarnings("ignore", message=r".*`srun` command is available.*")
# A method's frozen copy of the original stays in eval mode on purpose.
warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode at the start of training.*")
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated.*")
warnings.filterwarnings("ignore", message=r".*torch.jit.script.*", category=FutureWarning)


#: what our runtime runs on (its inference loops know the CPU and CUDA only)
ACCELERATORS = ("auto", "cpu", "gpu", "cuda")
#: the precisions the benchmark trains with, and Lightning's short names of them (32, 16,
#: 'bf16'); 'true' precisions other than 32 would cast the float32 weights the benchmark scores
PRECISIONS = ("auto", "32-true", "bf16-mixed", "16-mixed", "32", "bf16", "16", 32, 16)
#: one process ('auto'), or Lightning's DDP with spawned processes ('ddp' is 'ddp_spawn' here)
STRATEGIES = ("auto", "ddp", "ddp_spawn")


class Devices:
    """``devices`` as Lightning takes them: a count >= 1, -1 or 'auto' (all), a list of device
    indices, or any of those as a string ('2', '-1', '0,1')."""

    def holds(self, value: Any) -> bool:
        if isinstance(value, str):
            return _device_string(value.strip())
        if isinstance(value, (list, tuple)):
            return _distinct_indices(value)
        return type(value) is int and (value >= 1 or value == -1)

    def __str__(self) -> str:
        return "a number of devices >= 1, -1 or 'auto', or a list of device indices ('0,1')"


def _device_string(text: str) -> bool:
    if "," in text:
        parts = [p.strip() for p in text.split(",") if p.strip()]
        return all(p.isdigit() for p in parts) and _distinct_indices([int(p) for p in parts])
    return text in ("auto", "-1") or (text.isdigit() and int(text) >= 1)


def _distinct_indices(values: list | tuple) -> bool:
    return bool(values) and all(type(i) is int and i >= 0 for i in values) and len(set(values)) == len(values)


def device_count(devices: int | str | list[int]) -> int | None:
    """How many devices a valid ``devices`` names: a count, or the length of a list of
    indices; None for 'auto' and -1 (all the process sees, which differs between processes)."""
    if isinstance(devices, (list, tuple)):
        return len(devices)
    text = str(devices).strip()
    if text in ("auto", "-1"):
        return None
    return len([p for p in text.split(",") if p.strip()]) if "," in text else int(text)


RULES = {"accelerator": OneOf(ACCELERATORS), "precision": OneOf(PRECISIONS), "strategy": OneOf(STRATEGIES), "devices": Devices()}


@dataclass(frozen=True)
class Runtime:
    """``accelerator``/``devices``/``strategy``/``precision`` as Lightning takes them.

    ``precision`` 'auto' is bf16 mixed precision on a GPU that supports bfloat16 (fp16 mixed on
    one that does not) and 32-true on the CPU; fp16 on the CPU and bf16 on a GPU without it are
    refused. ``strategy`` 'ddp' (or 'ddp_spawn') needs 2 or more devices named, a count or GPU
    indices (on the CPU: processes), and is refused on one device, where it would only add its
    costs (spawning, pickling); 'auto' with 2 or more named is DDP too, as in Lightning. Naming
    the GPU (``gpu``/``cuda``) where torch sees none is an error, never a silent CPU run.
    """

    accelerator: str = "auto"
    devices: int | str | list[int] = 1
    precision: str | int = "auto"
    strategy: str = "auto"

    def __post_init__(self) -> None:
        check_fields(self, "runtime", RULES)
        if self.accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
            raise BenchmarkError(
                f"runtime.accelerator is {self.accelerator!r} but no CUDA GPU is visible "
                "(torch.cuda.is_available() is False); use --accelerator cpu or auto"
            )
        self._check_precision()
        self._check_strategy()

    def _check_precision(self) -> None:
        """What the accelerator cannot run: fp16 autocast on the CPU, bf16 on a GPU without it."""
        if self.precision == "auto":
            return  # resolved to what the device runs
        if self.resolved_precision == "16-mixed" and not self.uses_cuda:
            raise BenchmarkError(
                f"runtime.precision {self.precision!r} (fp16 mixed) needs a CUDA GPU; on the CPU use 32-true or bf16-mixed"
            )
        if self.resolved_precision == "bf16-mixed" and self.uses_cuda and not _cuda_bf16():
            raise BenchmarkError(
                f"runtime.precision {self.precision!r} needs a GPU with bfloat16 support, and "
                f"{torch.cuda.get_device_name()} has none; use 16-mixed or 32-true"
            )

    def _check_strategy(self) -> None:
        count = device_count(self.devices)
        if self.strategy != "auto" and (count is None or count < 2):
            raise BenchmarkError(
                f"runtime.strategy {self.strategy!r} runs one process per device: runtime.devices must "
                f"name 2 or more (a count or device indices), not {self.devices!r}; one device is strategy 'auto'"
            )

    @property
    def uses_cuda(self) -> bool:
        return self.accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()

    @property
    def device(self) -> torch.device:
        """Where this process evaluates (and trains, without DDP): the first visible GPU, or the CPU."""
        return torch.device("cuda") if self.uses_cuda else torch.device("cpu")

    @property
    def resolved_precision(self) -> str:
        """Lightning's full name of the precision ('16' is '16-mixed'); 'auto' resolved."""
        if self.precision != "auto":
            return _PRECISION_INPUT_STR_ALIAS_CONVERSION.get(str(self.precision), str(self.precision))
        if not self.uses_cuda:
            return "32-true"
        return "bf16-mixed" if _cuda_bf16() else "16-mixed"

    @property
    def resolved_strategy(self) -> str:
        """'ddp_spawn' (either name, or 'auto' with 2 or more devices named), else 'auto'.
        From the settings alone, so that every process resolves it alike."""
        count = device_count(self.devices)
        return "ddp_spawn" if self.strategy != "auto" or (count or 1) > 1 else "auto"

    @property
    def spawns(self) -> bool:
        """Whether the Trainer trains in processes it spawns (what it is given must pickle)."""
        return self.resolved_strategy == "ddp_spawn"

    @property
    def processes(self) -> int:
        """How many processes train one job."""
        return (device_count(self.devices) or 1) if self.spawns else 1

    def precision_plugin(self) -> Precision:
        """A fresh Lightning precision plugin for the resolved precision (fresh: a 16-mixed
        plugin holds a GradScaler, whose scale must not carry over between fits)."""
        precision = self.resolved_precision
        if precision in ("bf16-mixed", "16-mixed"):
            return MixedPrecision(precision, self.device.type)
        return Precision()  # 32-true

    @property
    def forward(self) -> Forward:
        """The device and autocast context of this runtime's forward passes (what scoring is given)."""
        return Forward(self.device, self.forward_context)

    def forward_context(self) -> ContextManager:
        """The precision plugin's forward context (autocast to bf16/fp16 under mixed
        precision, nothing under 32-true): the Trainer's, for our own inference loops."""
        return self.precision_plugin().forward_context()

    def strategy_plugin(self) -> str | DDPStrategy:
        """'auto', or DDP with spawned processes sharing each batch: gloo on the CPU, NCCL on
        GPUs, and parameters allowed to go unused in a step (methods swap heads, alternate losses)."""
        if not self.spawns:
            return "auto"
        return _SharedBatchDDP(
            start_method="spawn",
            process_group_backend="nccl" if self.uses_cuda else "gloo",
            cluster_environment=LightningEnvironment(),  # our own processes, whatever the cluster
            find_unused_parameters=True,
        )

    def trainer(self, **arguments: Any):
        """A quiet Lightning Trainer: no logger, no checkpoint files, no per-epoch bar
        (the runner draws its own progress), with the module's own ``arguments``."""
        import lightning as L

        callbacks = list(arguments.pop("callbacks", [])) + ([_SpawnedProcess()] if self.spawns else [])
        settings: dict[str, Any] = dict(
            accelerator="gpu" if self.uses_cuda else "cpu",
            devices=self.devices,
            strategy=self.strategy_plugin(),
            plugins=[self.precision_plugin()],
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            limit_val_batches=0,
            use_distributed_sampler=False,  # DDP shares batches, not rows (``_SharedBatchDDP``)
        )
        settings.update(arguments, callbacks=callbacks)
        return L.Trainer(**settings)

    @contextmanager
    def launching(self, module: LightningModule) -> Iterator[None]:
        """Around ``fit`` under DDP: the processes start from a CPU copy of ``module`` (not CUDA
        handles to this process's tensors, which would open a context on its GPU in each), and
        with this process's CPU threads shared among them (Lightning would give each all cores
        / N, ignoring the pool worker's share) and torch's C++ warnings off (DDP's note on
        unused parameters would cut through the progress display; errors still raise). The
        module goes back to its device after; the user's own environment settings win."""
        if not self.spawns:
            yield
            return
        device, threads = module.device, str(max(1, torch.get_num_threads() // self.processes))
        added = {k: v for k, v in {"OMP_NUM_THREADS": threads, "TORCH_CPP_LOG_LEVEL": "ERROR"}.items() if k not in os.environ}
        os.environ.update(added)
        module.cpu()
        try:
            yield
        finally:
            module.to(device)
            for key in added:
                os.environ.pop(key, None)


@functools.cache
def _cuda_bf16() -> bool:
    """Whether the current GPU computes in bfloat16 natively (Ampere and later), not emulated."""
    return torch.cuda.is_bf16_supported(including_emulation=False)


class _SpawnedProcess(Callback):
    """Housekeeping in each spawned training process: it ends when its launching process is
    gone (a pool worker stopped for its timeout; it would otherwise train on, on the device the
    next worker gets), and it leaves its process group once fitting is done (its last hook),
    as torch asks of a process before it exits."""

    def __init__(self) -> None:
        self.parent = os.getpid()  # set where the Trainer is built: the launching process

    def on_train_batch_start(self, trainer: Any, module: Any, batch: Any, batch_idx: int) -> None:
        if os.getppid() != self.parent:
            os._exit(1)

    def teardown(self, trainer: Any, module: Any, stage: str) -> None:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


class _SharedBatchDDP(DDPStrategy):
    """Lightning's DDP, each process reading every batch of a loader and keeping its share
    (``_Shares``) instead of a DistributedSampler's share of the rows, for any loader (batch
    samplers, combined loaders, passes). The loaders must give every process the same batches:
    ours are seeded, and every process unpickles the same state."""

    def process_dataloader(self, dataloader: object) -> object:
        return _Shares(super().process_dataloader(dataloader), self.global_rank, self.world_size)


class _Shares:
    """Process ``rank``'s contiguous share of every batch of ``loader``: 1/``world`` of the rows
    of each tensor (shares differ by one row at most); a batch with fewer rows than processes
    is skipped by all of them alike."""

    def __init__(self, loader: Iterable, rank: int, world: int) -> None:
        self.loader, self.rank, self.world = loader, rank, world

    def __len__(self) -> int:
        return len(self.loader)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[Any]:
        for batch in self.loader:
            rows: list[int] = []
            apply_to_collection(batch, Tensor, lambda t: rows.append(len(t)) if t.dim() else None)
            if rows and min(rows) < self.world:
                continue
            yield apply_to_collection(batch, Tensor, self._share)

    def _share(self, tensor: Tensor) -> Tensor:
        return tensor.tensor_split(self.world)[self.rank] if tensor.dim() else tensor
