"""Fitting a LightningModule on the spec's runtime (``fit``), with the engine's callbacks: a
non-finite loss stops training (``FiniteLoss``), epochs are reported to the progress display
(``EpochReport``, relayed from spawned DDP processes), and a spawned process's failure comes
back as one line."""

from __future__ import annotations

import multiprocessing as mp
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable, Iterator

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch.multiprocessing.spawn import ProcessRaisedException

from benchmark.run.failure import CellFailure, reason
from benchmark.run.runtime import Runtime

if TYPE_CHECKING:
    from benchmark.run.spec import Spec

Report = Callable[[str, int, int], None]  # (what, done, total) for progress displays


class EpochReport(Callback):
    """Forwards epoch progress of a Trainer to the runner's progress display (from rank 0 only
    when several processes train)."""

    def __init__(self, report: Report, what: str) -> None:
        self.report, self.what = report, what

    def on_train_epoch_end(self, trainer: L.Trainer, module: Any) -> None:
        if trainer.is_global_zero:
            self.report(self.what, trainer.current_epoch + 1, int(trainer.max_epochs or 0))


class FiniteLoss(Callback):
    """Stops training at a non-finite loss: a diverged model is never scored.

    Reading a GPU's loss back every step would stall its queue, so on an accelerator the losses
    are kept on the device and read back together every ``every`` batches (32 there, 1 on the
    CPU) and at each epoch's end; the message names the first bad batch either way.

    With a ``watch`` (``--debug``: benchmark/run/debugging.py) it records each step the method's
    code runs and checks every step, and a non-finite loss names the method's own lines that
    returned it (a note on the failure, printed with its traceback)."""

    def __init__(self, every: int | None = None, watch: Any = None) -> None:
        self.every = 1 if watch is not None else every
        self.watch = watch
        self._pending: list[tuple[int, int, torch.Tensor]] = []  # (epoch, batch, loss) not yet read

    def on_train_batch_start(self, trainer: L.Trainer, module: Any, batch: Any, batch_idx: int) -> None:
        if self.watch is not None:
            self.watch.start()

    def on_exception(self, trainer: L.Trainer, module: Any, exception: BaseException) -> None:
        if self.watch is not None:
            self.watch.stop()

    def on_train_batch_end(self, trainer: L.Trainer, module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.watch is not None:
            self.watch.stop()
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if not isinstance(loss, torch.Tensor):
            return
        self._pending.append((trainer.current_epoch, batch_idx, loss.detach().float().mean()))
        every = self.every or (1 if loss.device.type == "cpu" else 32)
        if len(self._pending) >= every:
            self._check()

    def on_train_epoch_end(self, trainer: L.Trainer, module: Any) -> None:
        self._check()

    def on_train_end(self, trainer: L.Trainer, module: Any) -> None:
        self._check()

    def _check(self) -> None:
        pending, self._pending = self._pending, []
        if not pending:
            return
        losses = torch.stack([loss for _, _, loss in pending]).cpu()  # one read-back
        bad = (~torch.isfinite(losses)).nonzero()
        if len(bad):
            first = int(bad[0])
            epoch, batch_idx, _ = pending[first]
            failure = CellFailure(f"non-finite loss ({losses[first].item()}) at epoch {epoch}, batch {batch_idx}")
            if self.watch is not None and len(pending) == 1:  # the step just recorded
                self.watch.explain(failure)
            raise failure


class _QueueReport:
    """A report that spawned training processes can take along: it puts (what, done, total)
    on a queue that a thread of the launching process reads (``_relayed``)."""

    def __init__(self, queue: Any) -> None:
        self.queue = queue

    def __call__(self, what: str, done: int, total: int) -> None:
        self.queue.put((what, done, total))


@contextmanager
def _relayed(report: Report, spawns: bool) -> Iterator[Report]:
    """``report`` itself, or, when the Trainer spawns its processes (``report`` may be a pipe's
    closure, which does not pickle), a ``_QueueReport`` whose reports this process forwards."""
    if not spawns:
        yield report
        return
    queue = mp.get_context("spawn").SimpleQueue()
    thread = threading.Thread(target=_forward, args=(queue, report), daemon=True)
    thread.start()
    try:
        yield _QueueReport(queue)
    finally:
        queue.put(None)
        thread.join()


def _forward(queue: Any, report: Report) -> None:
    for what, done, total in iter(queue.get, None):
        report(what, done, total)


@contextmanager
def _process_failures(runtime: Runtime) -> Iterator[None]:
    """A spawned process's failure as one line: a module that does not pickle, or the last
    line of the error that ended a process (a ``CellFailure``'s own message)."""
    try:
        yield
    except ProcessRaisedException as err:
        last = next((line for line in reversed(str(err).splitlines()) if line.strip()), "")
        name, _, message = last.partition(": ")
        name = name.rsplit(".", 1)[-1]
        raise CellFailure(message if name == "CellFailure" else f"{name}: {message} (training process {err.error_index})") from None
    except Exception as err:
        if runtime.spawns and "pickle" in str(err).lower():
            raise CellFailure(
                f"DDP copies the module into each of its {runtime.processes} processes by pickle, and it does not pickle: {reason(err, 'training')}"
            ) from None
        raise


def fit(spec: Spec, module: Any, report: Report, what: str, debug: bool | None = None) -> None:
    """Fit ``module`` with its ``trainer_arguments`` on the spec's runtime. Under DDP the
    processes train copies; rank 0's weights (best-on-val restored) come back into ``module``.
    In debug mode (``debug``, default: ``--debug``'s switch) a method's non-finite loss names
    the method's lines that returned it (not under DDP, whose processes report one line)."""
    from benchmark.run import debugging

    runtime, arguments = spec.runtime, dict(module.trainer_arguments())
    debug = debugging.enabled() if debug is None else debug
    watch = debugging.watch_for(module) if debug and not runtime.spawns else None
    with _relayed(report, runtime.spawns) as forward:
        callbacks = [FiniteLoss(1 if debug else None, watch), *arguments.pop("callbacks", []), EpochReport(forward, what)]
        trainer = runtime.trainer(callbacks=callbacks, **arguments)
        try:
            with _process_failures(runtime), runtime.launching(module):
                trainer.fit(module)
        finally:
            if watch is not None:
                watch.stop()

