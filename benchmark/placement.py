"""Where a dataset's rows live while a model trains on a device, and how batches get there.

On a GPU a split that fits in its free memory (with ``reserve_bytes`` left for the model,
its activations and the attacks) is copied there once, as uint8, and batches are indexed on
the device: no worker processes, no per-sample Python, no host-device copy per step (an
epoch's order is drawn on the host, by the seeded generator the CPU path uses, and moved
once). A split that does not fit stays memory-mapped on the host: each batch is gathered
straight into pinned memory and a background thread copies it on a side stream while the
step before it trains (``prefetch``). On the CPU nothing moves.

``GroupDataset.placed`` marks a dataset with the device its loaders feed (and whether its
splits must, may or must not be copied there); the copies themselves are made when a loader is
first read (``GroupDataset.feed``), so a process that only builds loaders (the scheduler,
validation) touches no GPU memory.
"""

from __future__ import annotations

import queue
import threading
from typing import Any, Iterator, NamedTuple, TypeVar

import torch
from torch import Tensor

RESERVE_BYTES = 8 * 2**30  # GPU memory kept free for training, at least ...
RESERVE_SHARE = 0.25  # ... or this share of the GPU's memory, whichever is more
PREFETCH_DEPTH = 2  # batches the background thread may move ahead of the step
T = TypeVar("T", bound=tuple)


def indexed(device: torch.device) -> torch.device:
    """``device`` with its index: a bare 'cuda' is this thread's current GPU (a DDP process's
    own), named so that the reading thread copies to the same one."""
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", torch.cuda.current_device())
    return device


def reserve_bytes(device: torch.device) -> int:
    """GPU memory a resident dataset must leave free."""
    return max(RESERVE_BYTES, int(RESERVE_SHARE * torch.cuda.get_device_properties(device).total_memory))


def fits(nbytes: int, device: torch.device) -> bool:
    """Whether ``nbytes`` more fit on ``device`` with ``reserve_bytes`` left free."""
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes + reserve_bytes(device) <= free


def gather(t: Tensor, idx: Tensor, pin: bool = False) -> Tensor:
    """Rows ``idx`` of ``t`` in one indexing operation; with ``pin``, into pinned host memory
    (so that the copy to the GPU can overlap the step)."""
    if not pin:
        return t[idx]
    out = torch.empty((len(idx), *t.shape[1:]), dtype=t.dtype, pin_memory=True)
    return torch.index_select(t, 0, idx, out=out)


class _Moved(NamedTuple):
    batch: tuple
    ready: torch.cuda.Event | None  # recorded on the side stream after the copy


_END = object()


def prefetch(batches: Iterator[T], device: torch.device, depth: int = PREFETCH_DEPTH) -> Iterator[T]:
    """``batches`` (tuples of tensors) on ``device``, moved by a background thread up to
    ``depth`` batches ahead. On a GPU each copy runs without blocking on a side stream and
    the consumer's stream waits for it only when the batch is taken; on the CPU the thread
    only reads ahead."""
    handoff: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    worker = threading.Thread(target=_produce, args=(batches, device, handoff, stop), daemon=True)
    worker.start()
    try:
        while (item := handoff.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield _take(item, device)
    finally:
        stop.set()
        _drain(handoff, worker)


def _produce(batches: Iterator[tuple], device: torch.device, handoff: queue.Queue, stop: threading.Event) -> None:
    try:
        stream = torch.cuda.Stream(device) if device.type == "cuda" else None
        for batch in batches:
            if stop.is_set():
                return
            handoff.put(_move(batch, device, stream))
        handoff.put(_END)
    except BaseException as err:  # noqa: BLE001 -- raised again in the consumer's thread
        handoff.put(err)


def _move(batch: tuple, device: torch.device, stream: torch.cuda.Stream | None) -> _Moved:
    if stream is None:
        return _Moved(batch, None)
    with torch.cuda.device(device), torch.cuda.stream(stream):
        moved = type(batch)(*(t.to(device, non_blocking=True) for t in batch))
        ready = torch.cuda.Event()
        ready.record(stream)
    return _Moved(moved, ready)


def _take(item: _Moved, device: torch.device) -> Any:
    if item.ready is None:
        return item.batch
    current = torch.cuda.current_stream(device)
    current.wait_event(item.ready)
    for t in item.batch:
        t.record_stream(current)  # allocated on the side stream, used on this one
    return item.batch


def _drain(handoff: queue.Queue, worker: threading.Thread) -> None:
    """Empty the queue until the producer has seen the stop flag and ended."""
    while worker.is_alive():
        try:
            handoff.get(timeout=0.01)
        except queue.Empty:
            pass
    worker.join()

