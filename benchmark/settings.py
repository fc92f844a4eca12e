"""The one checker of a group of settings (a dataclass's fields, or a method's
hyper-parameters with their types): unknown keys, types, then rules (a ``Range`` or
``OneOf``). Each fault is one ``BenchmarkError`` line naming the full key (``recipe.epochs``,
``metrics.attacks.pgd_steps``, ``hparams.finetune.lr``), the value and what is allowed.

It sits at the bottom of the engine, beside ``errors``: the contracts (model, training,
method, runtime) check their own fields with it, and it imports none of them.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal, Mapping, Protocol, Union

from benchmark.errors import BenchmarkError


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
