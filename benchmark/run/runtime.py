"""Where and how models run: accelerator, devices and precision, and the Trainer built from them."""

from __future__ import annotations

import logging
import warnings
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, ContextManager

import torch

for _name in ("lightning.pytorch", "lightning.fabric", "lightning"):
    logging.getLogger(_name).setLevel(logging.ERROR)
warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
warnings.filterwarnings("ignore", message=r".*is smaller than the logging interval.*")
warnings.filterwarnings("ignore", message=r".*`srun` command is available.*")
# A method's frozen copy of the original stays in eval mode on purpose.
warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode at the start of training.*")
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated.*")
warnings.filterwarnings("ignore", message=r".*torch.jit.script.*", category=FutureWarning)


@dataclass(frozen=True)
class Runtime:
    """``accelerator``/``devices`` as Lightning takes them; ``precision`` 'auto' means
    bf16 mixed precision on a GPU and full precision on the CPU."""

    accelerator: str = "auto"
    devices: int | str = 1
    precision: str = "auto"

    @property
    def uses_cuda(self) -> bool:
        return self.accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()

    @property
    def device(self) -> torch.device:
        return torch.device("cuda") if self.uses_cuda else torch.device("cpu")

    @property
    def resolved_precision(self) -> str:
        if self.precision != "auto":
            return self.precision
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
