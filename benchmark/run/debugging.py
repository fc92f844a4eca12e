"""``--debug``'s view into a method's own code when its loss turns non-finite.

The engine finds a non-finite loss after the method's ``training_step`` has returned (in a
Lightning callback, ``fitting.FiniteLoss``), so the traceback of that failure holds only the
engine's frames. With ``--debug`` on, ``LossWatch`` records, during each training step, the
tensors that the method's own code returns (which function, which line: a ``sys.setprofile``
hook, on only between the step's start and end), the loss is checked after every step, and
the failure gets a note naming the method's lines that returned the non-finite loss, and the
first line of its code that returned a non-finite value in that step when that is another.
Runs without ``--debug`` install nothing.

"The method's own code": the folder of the method's module (a plugin file and the helpers
beside it) or its package, and any other code outside the ``benchmark`` package, torch,
Lightning, the standard library and installed packages.
"""

from __future__ import annotations

import os
import site
import sys
import sysconfig
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import CodeType, FrameType
from typing import Any, Iterator

import torch

#: set (to 1) by ``unlearn-bench run/submit --debug`` for the run, so that its worker processes see it
ENV = "UNLEARN_BENCH_DEBUG"


def enabled() -> bool:
    """Whether this process runs in debug mode (``--debug``)."""
    return os.environ.get(ENV, "") not in ("", "0")


@contextmanager
def debug_mode(on: bool) -> Iterator[None]:
    """Debug mode (``ENV``) for this process and the processes it starts, for the duration."""
    if not on:
        yield
        return
    before = os.environ.get(ENV)
    os.environ[ENV] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = before


def _real(path: str | os.PathLike) -> str:
    return os.path.realpath(path)


def _engine_folders() -> tuple[str, ...]:
    """Where code that is not a method's lives: this package, torch, Lightning, the standard
    library, installed packages."""
    folders = {_real(Path(__file__).parents[1]), _real(Path(torch.__file__).parent)}  # this package: benchmark/
    for name in ("lightning", "lightning_fabric", "pytorch_lightning"):
        module = sys.modules.get(name)
        if module is not None and getattr(module, "__file__", None):
            folders.add(_real(Path(module.__file__).parent))
    paths = sysconfig.get_paths()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        if paths.get(key):
            folders.add(_real(paths[key]))
    for folder in [*site.getsitepackages(), site.getusersitepackages()]:
        folders.add(_real(folder))
    return tuple(sorted(folders))


def _under(path: str, folders: tuple[str, ...]) -> bool:
    return any(path == f or path.startswith(f + os.sep) for f in folders)


class MethodCode:
    """Whether a code object is the method's own (decided once per code object)."""

    def __init__(self, cls: type) -> None:
        self.engine = _engine_folders()
        self.home = self._home(cls)
        self._known: dict[CodeType, bool] = {}

    def _home(self, cls: type) -> tuple[str, ...]:
        """The method's own folder: its package's (``methods/``), or its file's folder (a plugin
        file and the helpers beside it), or only its file when that folder holds other code too."""
        top = sys.modules.get(cls.__module__.split(".", 1)[0])
        if "." in cls.__module__ and getattr(top, "__path__", None):
            return tuple(_real(p) for p in top.__path__)
        file = getattr(sys.modules.get(cls.__module__), "__file__", None)
        if not file:
            return ()
        folder = _real(Path(file).parent)
        return (_real(file),) if _under(folder, self.engine) else (folder,)

    def __call__(self, code: CodeType) -> bool:
        known = self._known.get(code)
        if known is None:
            known = self._known[code] = self._decide(code.co_filename)
        return known

    def _decide(self, filename: str) -> bool:
        if not filename or filename.startswith("<"):  # <string>, <frozen ...>: no line to show
            return False
        path = _real(filename)
        return _under(path, self.home) or not _under(path, self.engine)


@dataclass
class Returned:
    """A tensor the method's code returned during the step."""

    where: traceback.FrameSummary
    value: torch.Tensor  # detached: it keeps no graph alive
    identity: int  # id() of the tensor returned (the same object along a chain of returns)
    outer: bool  # returned to the engine (training_step, a forward called by torch), not to the method's code


class LossWatch:
    """Records, between ``start`` and ``stop``, what the method's code returns, and explains a
    non-finite loss with it (``explain``)."""

    def __init__(self, cls: type) -> None:
        self.is_method = MethodCode(cls)
        self.returns: list[Returned] = []
        self._before: Any = None
        self._on = False

    def start(self) -> None:
        """Record the step about to run (the previous step's records are dropped)."""
        self.stop()
        self.returns = []
        self._before = sys.getprofile()
        sys.setprofile(self._profile)
        self._on = True

    def stop(self) -> None:
        if self._on:
            sys.setprofile(self._before)
            self._on, self._before = False, None

    def _profile(self, frame: FrameType, event: str, arg: Any) -> None:
        if event != "return" or not isinstance(arg, torch.Tensor) or not self.is_method(frame.f_code):
            return
        caller = frame.f_back
        code = frame.f_code
        self.returns.append(
            Returned(
                traceback.FrameSummary(code.co_filename, frame.f_lineno, code.co_name, lookup_line=False),
                arg.detach(),
                id(arg),
                caller is None or not self.is_method(caller.f_code),
            )
        )

    def loss_chain(self) -> list[Returned]:
        """The method's returns that handed the step's loss to the engine, outermost first:
        the last ``training_step`` of the method's code that returned a tensor (else its last
        return to the engine), then the calls of the method's code that returned that same
        tensor to it."""
        outer = [i for i, r in enumerate(self.returns) if r.outer]
        if not outer:
            return []
        steps = [i for i in outer if self.returns[i].where.name == "training_step"]
        last = (steps or outer)[-1]
        inner = [r for r in self.returns[:last] if r.identity == self.returns[last].identity and not r.outer]
        return [self.returns[last], *reversed(inner)]

    def first_non_finite(self) -> Returned | None:
        """The first tensor of floating point the method's code returned in the step that was
        not finite."""
        for r in self.returns:
            if r.value.is_floating_point() and not bool(torch.isfinite(r.value).all()):
                return r
        return None

    def explain(self, err: BaseException) -> None:
        """Add to ``err`` (a non-finite loss of the step just recorded) the method's lines that
        returned that loss, as a traceback's entries (a note, printed after the error line)."""
        chain = self.loss_chain()
        if not chain:
            err.add_note("debug: no tensor returned by the method's own code was recorded in that step")
            return
        lines = ["the method's code that returned the non-finite loss (outermost first):"]
        lines += _entries(r.where for r in chain)
        first = self.first_non_finite()
        if first is not None and all(first is not r for r in chain):
            lines += ["the first non-finite value the method's code returned in that step:", *_entries([first.where])]
        err.add_note("\n".join(line.rstrip("\n") for line in lines))


def _entries(frames: Any) -> list[str]:
    return traceback.format_list(list(frames))


def watch_for(module: Any) -> LossWatch | None:
    """A LossWatch for a method (None for the engine's own modules, the original's ERM)."""
    cls = type(module)
    return None if cls.__module__.split(".", 1)[0] == "benchmark" else LossWatch(cls)
