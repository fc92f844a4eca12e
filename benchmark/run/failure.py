"""Why a cell fails: ``CellFailure`` (a reason the engine states), ``reason`` (any error as
one line) and ``check_model`` (what the model a method leaves must be)."""

from __future__ import annotations

import errno
from typing import Any

import torch

from benchmark.errors import BenchmarkError
from benchmark.model import Classifier


class CellFailure(Exception):
    """A cell that cannot be scored, with the reason as its message."""



def reason(err: BaseException, stage: str) -> str:
    """One line saying why a cell failed."""
    if isinstance(err, OSError) and err.errno == errno.ENOSPC:
        return f"disk full while {stage}: {err}"
    if isinstance(err, (BenchmarkError, CellFailure)):
        return str(err)
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".strip()



def check_model(model: Any) -> None:
    """What a scored model must be: the Classifier the method was given, in float32, finite."""
    if not isinstance(model, Classifier):
        raise CellFailure(
            f"the method replaced self.model with a {type(model).__name__}; the benchmark scores the Classifier it was given "
            "(change its weights, not its type)"
        )
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        if tensor.is_floating_point() and tensor.dtype != torch.float32:
            raise CellFailure(
                f"the method left self.model in {tensor.dtype} ({name}); the benchmark scores float32 models "
                "(mixed precision is the runtime's precision setting)"
            )
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CellFailure(f"the unlearned weights are not finite (NaN or inf in {name})")

