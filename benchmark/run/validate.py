"""Validation before any work: every method of a spec built once on every task, on a freshly
initialised model, so that a constructor's complaint stops the run before training, and the
Trainer each asks for built by Lightning. (Settings are checked where they are parsed, with
``benchmark.settings``.)
"""

from __future__ import annotations

import contextlib
import copy
from typing import TYPE_CHECKING, Any, Callable, ContextManager, Mapping

from benchmark.errors import BenchmarkError

if TYPE_CHECKING:
    from benchmark.registry import MethodRef
    from benchmark.run.runtime import Runtime
    from benchmark.run.spec import Spec
    from benchmark.task import Task, TaskData


# -- the runtime and the methods, built once --------------------------------------------------


def check_trainer(runtime: Runtime, arguments: Mapping[str, Any], what: str) -> None:
    """Build (and drop) the Trainer that ``arguments`` ask for: Lightning's own verdict on the
    devices and precision for the accelerator, and on a method's ``trainer_arguments``."""
    try:
        runtime.trainer(**arguments)
    except Exception as err:
        raise BenchmarkError(f"{what}: Lightning refuses the Trainer: {type(err).__name__}: {err}") from None


Guard = Callable[[str], ContextManager[None]]


def check_spec(spec: Spec, task_data: Callable[[Task], TaskData], guard: Guard | None = None) -> None:
    """For every task (its ``TaskData`` from ``task_data``), ``check_methods``."""
    for task in spec.tasks:
        check_methods(spec, task_data(task), guard)


def check_methods(spec: Spec, data: TaskData, guard: Guard | None = None) -> None:
    """Build every method of ``spec`` once on ``data``'s task, around a freshly initialised
    model, and the Trainer its ``trainer_arguments`` ask for; one line on the first failure.
    Each is built within ``guard(what)`` (the runner's check that it changes nothing shared)."""
    from benchmark.model import build_model

    model = build_model(spec.model_for(data.task), data.num_classes, data.seed)
    for ref in spec.methods:
        what = f"method {ref.name} on task {data.task.id}"
        try:
            with guard("building it") if guard else contextlib.nullcontext():
                method = build_method(ref, model, data, spec.method_arguments(ref, data.task))
            arguments = dict(method.trainer_arguments())
        except BenchmarkError as err:
            raise BenchmarkError(f"{what}: {err}") from None
        except Exception as err:
            raise BenchmarkError(f"{what} cannot be built: {type(err).__name__}: {err}") from None
        check_trainer(spec.runtime, arguments, what)


def build_method(ref: MethodRef, original: Any, data: TaskData, arguments: Mapping[str, Any]) -> Any:
    """``ref``'s method around a copy of ``original``, with a frozen copy beside it."""
    from benchmark.model import frozen_copy

    return ref.cls(copy.deepcopy(original), frozen_copy(original), data, **arguments)
