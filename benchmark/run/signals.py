"""Stopping a run cleanly: SIGTERM (what schedulers send on preemption) and SIGINT (Ctrl-C)
become ``Stopped`` in the main process, so that it stops its workers, keeps what is
finished and exits with 128 + the signal's number (143, 130)."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Any, Iterator

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Stopped(Exception):
    """The run was stopped by a signal; ``code`` is the exit status it asks for."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.code = 128 + signum


_pending: list[int] = []  # signals received in this process and not yet acted on
_deferring = False  # inside ``deferred()``: a signal is noted, and raised when the block ends


def _raise_stopped(signum: int, frame: Any) -> None:
    _pending.append(signum)
    if not _deferring:
        raise Stopped(signum)


def raise_if_stopped() -> None:
    """Raise ``Stopped`` for a signal whose exception was swallowed where it landed (Python
    ignores exceptions raised in ``__del__`` and other finalisers); long loops call this."""
    if _pending:
        raise Stopped(_pending[0])


@contextmanager
def deferred() -> Iterator[None]:
    """Within the block, a SIGTERM or SIGINT is held back and raised as ``Stopped`` when it ends.
    Starting a worker process and recording it is one step: a signal between the two would
    leave a process that stopping the run does not know of."""
    global _deferring
    outer, _deferring = _deferring, True
    try:
        yield
    finally:
        _deferring = outer
    if not outer:
        raise_if_stopped()


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block, SIGTERM and SIGINT raise ``Stopped`` (the handlers before are restored after)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {s: signal.signal(s, _raise_stopped) for s in SIGNALS}
    _pending.clear()
    try:
        yield
        raise_if_stopped()
    finally:
        _pending.clear()
        for s, handler in before.items():
            signal.signal(s, handler)
