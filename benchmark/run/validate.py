"""Validation before any work: every setting's type and range, and every method built once.

``check_settings`` is the one checker of a group of settings (a dataclass's fields, or a
method's hyper-parameters with their types): unknown keys, types, then rules (a ``Range`` or
``OneOf``). Each fault is one ``BenchmarkError`` line naming the full key
(``recipe.epochs``, ``metrics.attacks.pgd_steps``, ``hparams.finetune.lr``), the value and
what is allowed. ``check_spec`` then builds every method of a spec on every task once, on a
freshly initialised model, so that a constructor's complaint stops the run before training.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import types
import typing
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, Callable, ContextManager, Literal, Mapping, Protocol, Union

from benchmark.errors import BenchmarkError

if TYPE_CHECKING:
    from benchmark.registry import MethodRef
    from benchmark.run.runtime import Runtime
    from benchmark.run.spec import Spec
    from benchmark.task import Task, TaskData


class Rule(Protocol):
    def holds(self, value: Any) -> bool: ...


@dataclass(frozen=True)
class Range:
    """Numbers from ``low`` (excluded when ``above``) up to ``high``; printed as '>= 1', '> 0', 'in [0, 1]'."""

    low: float = -math.inf
    high: float = math.inf
    above: bool = False

    def holds(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        return (value > self.low if self.above else value >= self.low) and value <= self.high

    def __str__(self) -> str:
        if self.high == math.inf:
            return f"{'>' if self.above else '>='} {self.low:g}"
        return f"in {'(' if self.above else '['}{self.low:g}, {self.high:g}]"


@dataclass(frozen=True)
class OneOf:
    """One of ``choices`` (compared with their types: 1 is not True)."""

    choices: tuple[Any, ...]

    def holds(self, value: Any) -> bool:
        return any(type(value) is type(c) and value == c for c in self.choices)

    def __str__(self) -> str:
        return "one of " + ", ".join(dict.fromkeys(str(c) for c in self.choices))


def fault(key: str, expected: Any, value: Any) -> BenchmarkError:
    """The one line of a bad setting: its full key, what it must be, and what it was."""
    return BenchmarkError(f"{key} must be {expected}, not {value!r}")


# -- types ----------------------------------------------------------------------------


def matches(value: Any, hint: Any) -> bool:
    """Whether ``value`` (as YAML or a flag gives it) fits the type ``hint``: an int where a
    float is expected, a list where a tuple is; a bool is never a number."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if origin in (Union, types.UnionType):
        return any(matches(value, a) for a in args)
    if origin is Literal:
        return OneOf(args).holds(value)
    if origin in (tuple, list) or hint in (tuple, list):
        item = args[0] if args else Any
        return isinstance(value, (tuple, list)) and all(matches(v, item) for v in value)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def describe(hint: Any) -> str:
    """A type as the user reads it: 'int', 'float', 'int or None', 'list of float'."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        return " or ".join(describe(a) for a in args)
    if origin is Literal:
        return str(OneOf(args))
    if origin in (tuple, list) or hint in (tuple, list):
        return f"list of {describe(args[0])}" if args else "list"
    return "None" if hint is type(None) else getattr(hint, "__name__", str(hint))


@cache
def field_types(cls: type) -> dict[str, Any]:
    """A dataclass's fields and their (resolved) annotations."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(cls)}


# -- the checker --------------------------------------------------------------------------


def check_known(names: typing.Iterable[str], mapping: Mapping[str, Any], where: str) -> None:
    unknown = sorted(set(mapping) - set(names))
    if unknown:
        section = where.split(".")[0]
        raise BenchmarkError(
            f"bad {section} settings: unknown key {', '.join(f'{where}.{k}' for k in unknown)}; "
            f"known: {', '.join(sorted(names))}"
        )


def check_settings(
    schema: type | Mapping[str, Any], mapping: Mapping[str, Any], where: str, rules: Mapping[str, Rule] | None = None
) -> None:
    """Check ``mapping`` against ``schema`` (a dataclass, whose annotations give the types, or
    a mapping of names to types) and ``rules``; raise on the first fault."""
    hints = field_types(schema) if isinstance(schema, type) else schema
    check_known(hints, mapping, where)
    for key, value in mapping.items():
        if not matches(value, hints[key]):
            raise fault(f"{where}.{key}", describe(hints[key]), value)
    for key, rule in (rules or {}).items():
        value = mapping.get(key)
        if value is not None and not rule.holds(value):
            raise fault(f"{where}.{key}", rule, value)


def check_fields(obj: Any, where: str, rules: Mapping[str, Rule] | None = None) -> None:
    """``check_settings`` on a dataclass instance's own fields (for its ``__post_init__``)."""
    check_settings(type(obj), {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}, where, rules)


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
