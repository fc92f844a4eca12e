"""What a cell may not change: the tensors the runner shares between cells (each dataset's
labels and inputs, each original model's weights) and torch's process-wide state (default
dtype, grad mode, deterministic and cuDNN flags, thread counts, anomaly detection, matmul
precision, default device).

A method runs in the same process as the cells after it and can reach all of it. Rather than
trust it, the runner takes a ``Baseline`` before the method is built and compares after it ran:
tensors by their xxh3-128 digest (about 50 ms for 700 MiB on one core), torch's state flag by
flag. Any difference fails the cell with what changed, torch's state is set back, and the
runner's worker is replaced (its cached data and models dropped) before the next cell, so the
next cell runs as if it had not happened. The inputs ``x`` (the bulk of a dataset: 30 GB for
CelebA at 224 px) are memory-mapped read-only, so their content cannot change (writing to them
in place kills the worker, and the pool fails the cell); only whether they were replaced is
checked, and a cell's checks stay in milliseconds whatever the dataset's size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, NamedTuple

import numpy as np
import torch
import xxhash
from torch import Tensor

from benchmark.errors import BenchmarkError


class SharedStateChanged(BenchmarkError):
    """A method changed what cells share; the message says what."""


class Flag(NamedTuple):
    """One piece of torch's process-wide state: how to read it, and how to set it back."""

    name: str
    get: Callable[[], Any]
    set: Callable[[Any], None]


def _set_deterministic(value: tuple[bool, bool]) -> None:
    torch.use_deterministic_algorithms(value[0], warn_only=value[1])


def _set_anomaly(value: tuple[bool, bool]) -> None:
    torch.set_anomaly_enabled(value[0], value[1])


def _set_interop_threads(value: int) -> None:
    torch.set_num_interop_threads(value)  # raises once parallel work ran: the worker is replaced anyway


def _attribute(owner: Any, name: str) -> Flag:
    return Flag(f"{owner.__name__.removeprefix('torch.')}.{name}", lambda: getattr(owner, name), lambda v: setattr(owner, name, v))


FLAGS: tuple[Flag, ...] = (
    Flag("default dtype", torch.get_default_dtype, torch.set_default_dtype),
    Flag("default device", lambda: str(torch.get_default_device()), torch.set_default_device),
    Flag("grad mode", torch.is_grad_enabled, torch.set_grad_enabled),
    Flag(
        "deterministic algorithms (on, warn only)",
        lambda: (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()),
        _set_deterministic,
    ),
    Flag("anomaly detection (on, check nan)", lambda: (torch.is_anomaly_enabled(), torch.is_anomaly_check_nan_enabled()), _set_anomaly),
    Flag("float32 matmul precision", torch.get_float32_matmul_precision, torch.set_float32_matmul_precision),
    Flag("threads", torch.get_num_threads, torch.set_num_threads),
    Flag("interop threads", torch.get_num_interop_threads, _set_interop_threads),
    _attribute(torch.backends.cudnn, "enabled"),
    _attribute(torch.backends.cudnn, "benchmark"),
    _attribute(torch.backends.cudnn, "deterministic"),
    _attribute(torch.backends.cudnn, "allow_tf32"),
    Flag("cuda.matmul.allow_tf32", lambda: torch.backends.cuda.matmul.allow_tf32, lambda v: setattr(torch.backends.cuda.matmul, "allow_tf32", v)),
)


def torch_state() -> dict[str, Any]:
    """torch's process-wide state, flag by flag."""
    return {flag.name: flag.get() for flag in FLAGS}


def restore_state(state: Mapping[str, Any]) -> None:
    """Set every flag that differs from ``state`` back (those that cannot be set are left)."""
    for flag in FLAGS:
        if flag.get() != state[flag.name]:
            try:
                flag.set(state[flag.name])
            except RuntimeError:
                pass


def digest(tensor: Tensor) -> str:
    """xxh3-128 of a tensor's dtype, shape, strides and bytes (on the host; a GPU tensor is copied there)."""
    array = _in_memory_order(tensor.detach().cpu())
    if array.dtype == torch.bfloat16:  # numpy has no bfloat16: its bytes as int16
        array = array.view(torch.int16)
    hasher = xxhash.xxh3_128(f"{tensor.dtype}{tuple(tensor.shape)}{tensor.stride()}".encode())
    hasher.update(memoryview(np.ascontiguousarray(array.numpy())).cast("B"))
    return hasher.hexdigest()


def _in_memory_order(tensor: Tensor) -> Tensor:
    """The tensor's elements as they lie in memory, without a copy where they are dense (a
    channels-last convolution weight is a permuted view of contiguous memory)."""
    if tensor.is_contiguous():
        return tensor
    order = sorted(range(tensor.dim()), key=lambda d: -tensor.stride(d))
    return tensor.permute(order).contiguous()  # a no-op when the permuted view is contiguous


def identity(tensor: Tensor) -> tuple[Any, ...]:
    """Which memory a tensor is, not what it holds: for inputs memory-mapped read-only, whose
    content cannot change in place (a write kills the process), only whether they were replaced."""
    return (id(tensor), tensor.data_ptr(), tuple(tensor.shape), tensor.dtype)


class Shared(NamedTuple):
    """What cells share, by name: tensors compared by content, and read-only mapped ones by identity."""

    content: dict[str, Tensor]
    mapped: dict[str, Tensor]


@dataclass
class Baseline:
    """The shared tensors' digests and identities and torch's state, taken before a cell;
    ``changes`` says what differs after it."""

    digests: dict[str, str]
    identities: dict[str, tuple[Any, ...]]
    state: dict[str, Any]

    @classmethod
    def take(cls, shared: Shared, digests: Mapping[str, str] | None = None) -> Baseline:
        """The baseline of ``shared``; ``digests`` holds those known already (taken when loaded)."""
        known = dict(digests or {})
        return cls(
            {name: known.get(name) or digest(t) for name, t in shared.content.items()},
            {name: identity(t) for name, t in shared.mapped.items()},
            torch_state(),
        )

    def changes(self, shared: Shared) -> list[str]:
        """What differs from the baseline, one phrase each (empty: nothing)."""
        found = [f"{name} (its content)" for name, t in shared.content.items() if name in self.digests and digest(t) != self.digests[name]]
        found += [f"{name} (replaced)" for name, t in shared.mapped.items() if name in self.identities and identity(t) != self.identities[name]]
        found += [f"{name} (removed)" for name in [*self.digests, *self.identities] if name not in shared.content and name not in shared.mapped]
        now = torch_state()
        found += [f"torch's {name} ({self.state[name]} -> {now[name]})" for name in self.state if now[name] != self.state[name]]
        return found
