"""Inference over a split: class probabilities (and features) for every row.

``forward_context`` makes the context the forward passes run in: the runtime's
(``Runtime.forward_context``, its Lightning precision plugin's, so evaluation autocasts as
training did); none by default (float32). A factory, not a context: the plugin's context is
single-use, and one call enters it once around its loop."""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Callable, ContextManager, Iterator

import torch
from torch import Tensor, nn

from benchmark.augment import to_unit_float


@dataclass(frozen=True)
class Forward:
    """Where and how forward passes run: the device, and the factory of the context each loop
    of passes runs in (a runtime's ``Forward`` autocasts as its training did)."""

    device: torch.device = torch.device("cpu")
    context: Callable[[], ContextManager] = nullcontext

    def arguments(self) -> dict[str, Any]:
        """The keyword arguments ``predict_probs`` and ``predict_with_features`` take."""
        return {"device": self.device, "forward_context": self.context}


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Every submodule in eval mode inside the block, and each back in its own mode after
    (``model.train(was_training)`` would also wake frozen submodules kept in eval mode)."""
    modes = {module: module.training for module in model.modules()}
    model.eval()
    try:
        yield
    finally:
        for module, training in modes.items():
            module.training = training


@torch.no_grad()
def predict_probs(
    model: nn.Module,
    x: Tensor,
    *,
    device: torch.device | None = None,
    batch_size: int = 512,
    forward_context: Callable[[], ContextManager] = nullcontext,
) -> Tensor:
    """Softmax probabilities (float32, on the CPU) of ``model`` on every row of ``x``, in eval mode."""
    device = device or next(model.parameters()).device
    out = []
    with eval_mode(model), forward_context():
        for start in range(0, len(x), batch_size):
            xb = to_unit_float(x[start : start + batch_size].to(device, non_blocking=True))
            logits = model(xb)
            out.append(logits.float().softmax(dim=1).cpu())
    return torch.cat(out) if out else torch.empty(0)


@torch.no_grad()
def predict_with_features(
    model: nn.Module,
    x: Tensor,
    *,
    device: torch.device,
    batch_size: int = 512,
    forward_context: Callable[[], ContextManager] = nullcontext,
) -> tuple[Tensor, Tensor]:
    """(softmax probabilities, penultimate features), float32 on the CPU, in one eval pass of a
    Classifier (``features`` then ``head``)."""
    probs, feats = [], []
    with eval_mode(model), forward_context():
        for start in range(0, len(x), batch_size):
            xb = to_unit_float(x[start : start + batch_size].to(device, non_blocking=True))
            z = model.features(xb)
            logits = model.head(z)
            probs.append(logits.float().softmax(dim=1).cpu())
            feats.append(z.float().cpu())
    return torch.cat(probs), torch.cat(feats)


def accuracy(model: nn.Module, x: Tensor, y: Tensor, **kwargs) -> float:
    """Share of rows of ``x`` whose arg-max class is ``y``."""
    return (predict_probs(model, x, **kwargs).argmax(1) == y).float().mean().item()
