"""Where and how models run: accelerator, devices and precision, and the Trainer built from them."""

from __future__ import annotations

import logging
import warnings
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, ContextManager, get_args

import torch
from lightning.fabric.connector import _PRECISION_INPUT, _PRECISION_INPUT_STR_ALIAS_CONVERSION

from benchmark.errors import BenchmarkError
from benchmark.run.validate import OneOf, check_fields

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
#: Lightning's precisions (64, "32-true", "bf16-mixed", "transformer-engine", ...) and 'auto'
PRECISIONS = ("auto", *(value for literal in get_args(_PRECISION_INPUT) for value in get_args(literal)))


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


RULES = {"accelerator": OneOf(ACCELERATORS), "precision": OneOf(PRECISIONS), "devices": Devices()}


@dataclass(frozen=True)
class Runtime:
    """``accelerator``/``devices``/``precision`` as Lightning takes them; ``precision`` 'auto'
    means bf16 mixed precision on a GPU and full precision on the CPU. Naming the GPU
    (``gpu``/``cuda``) where torch sees none is an error, never a silent CPU run."""

    accelerator: str = "auto"
    devices: int | str | list[int] = 1
    precision: str | int = "auto"

    def __post_init__(self) -> None:
        check_fields(self, "runtime", RULES)
        if self.accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
            raise BenchmarkError(
                f"runtime.accelerator is {self.accelerator!r} but no CUDA GPU is visible "
                "(torch.cuda.is_available() is False); use --accelerator cpu or auto"
            )

    @property
    def uses_cuda(self) -> bool:
        return self.accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()

    @property
    def device(self) -> torch.device:
        return torch.device("cuda") if self.uses_cuda else torch.device("cpu")

    @property
    def resolved_precision(self) -> str:
        if self.precision != "auto":
            return _PRECISION_INPUT_STR_ALIAS_CONVERSION.get(str(self.precision), str(self.precision))
        return "bf16-mixed" if self.uses_cuda else "32-true"

    def autocast(self) -> ContextManager:
        """The autocast context our own inference loops use, matching the training precision."""
        p = self.resolved_precision
        if p.startswith("bf16") and "mixed" in p:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        if p.startswith("16") and "mixed" in p:
            return torch.autocast(self.device.type, dtype=torch.float16)
        return nullcontext()

    def trainer(self, **arguments: Any):
        """A quiet Lightning Trainer: no logger, no checkpoint files, no per-epoch bar
        (the runner draws its own progress), with the module's own ``arguments``."""
        import lightning as L

        settings: dict[str, Any] = dict(
            accelerator="gpu" if self.uses_cuda else "cpu",
            devices=self.devices,
            precision=self.resolved_precision,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            limit_val_batches=0,
        )
        settings.update(arguments)
        return L.Trainer(**settings)
