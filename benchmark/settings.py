"""The one checker of a group of settings (a dataclass's fields, or a method's
hyper-parameters with their types): unknown keys, types, then rules (a ``Range`` or
``OneOf``). Each fault is one ``BenchmarkError`` line naming the full key (``recipe.epochs``,
``metrics.attacks.pgd_steps``, ``hparams.finetune.lr``), the value and what is allowed.

pydantic validates, strictly as YAML and flags give values: an int where a float is expected,
a list where a tuple is, a bool never a number. A dataclass may declare a field's rule beside
its type, ``Annotated[int, Range(1)]``.

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
from typing import Annotated, Any, Literal, Mapping, Protocol, Union

from pydantic import AfterValidator, ConfigDict, Strict, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails, PydanticCustomError
from typing_extensions import TypedDict  # pydantic reads typing's TypedDict only from Python 3.12

from benchmark.errors import BenchmarkError

#: strict, as YAML gives values; any class a plugin annotates with is checked with isinstance
STRICT = ConfigDict(strict=True, arbitrary_types_allowed=True)


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


def as_given(hint: Any) -> Any:
    """``hint`` as YAML and flags give its values: a tuple (or list) also as the other; Literal
    choices compared with their types, as ``OneOf``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        return Union[tuple(as_given(a) for a in args)]
    if origin is Literal:
        return Annotated[Any, AfterValidator(_ruled(OneOf(args)))]
    if origin in (tuple, list) or hint in (tuple, list):
        item = as_given(args[0]) if args else Any
        return Annotated[tuple[item, ...], Strict(False)]
    return hint


@cache
def _adapter(hint: Any) -> TypeAdapter:
    return TypeAdapter(as_given(hint), config=STRICT)


def matches(value: Any, hint: Any) -> bool:
    """Whether ``value`` (as YAML or a flag gives it) fits the type ``hint``."""
    try:
        _adapter(hint).validate_python(value)
    except ValidationError:
        return False
    return True


def describe(hint: Any) -> str:
    """A type as the user reads it: 'int', 'float', 'int or None', 'list of float', 'mapping'."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        return " or ".join(describe(a) for a in args)
    if origin is Literal:
        return str(OneOf(args))
    if origin in (tuple, list) or hint in (tuple, list):
        return f"list of {describe(args[0])}" if args else "list"
    if origin is dict or hint is dict:
        return "mapping"
    return "None" if hint is type(None) else getattr(hint, "__name__", str(hint))


@cache
def field_types(cls: type) -> dict[str, Any]:
    """A dataclass's fields and their (resolved) annotations, without their rules."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(cls)}


@cache
def field_rules(cls: type) -> dict[str, Rule]:
    """The rules a dataclass declares beside its fields' types (``Annotated[int, Range(1)]``)."""
    hints = typing.get_type_hints(cls, include_extras=True)
    found = {f.name: [m for m in getattr(hints.get(f.name), "__metadata__", ()) if hasattr(m, "holds")] for f in dataclasses.fields(cls)}
    return {name: rules[0] for name, rules in found.items() if rules}


# -- the checker --------------------------------------------------------------------------


def _ruled(rule: Rule) -> typing.Callable[[Any], Any]:
    """A pydantic validator of ``rule`` (a None value passes: it is the type's to refuse)."""

    def check(value: Any) -> Any:
        if value is not None and not rule.holds(value):
            raise PydanticCustomError("rule", "{rule}", {"rule": str(rule)})
        return value

    return check


@cache
def _validator(hints: tuple[tuple[str, Any], ...], rules: tuple[tuple[str, Rule], ...]) -> TypeAdapter:
    """pydantic's validator of a mapping of settings ``hints``, each optional, each with its rule; no other key."""
    ruled = dict(rules)
    fields = {name: Annotated[as_given(hint), AfterValidator(_ruled(ruled[name]))] if name in ruled else as_given(hint) for name, hint in hints}
    settings = TypedDict("Settings", fields, total=False)  # type: ignore[misc]
    settings.__pydantic_config__ = ConfigDict(STRICT, extra="forbid")  # type: ignore[attr-defined]
    return TypeAdapter(settings)


def check_settings(
    schema: type | Mapping[str, Any], mapping: Mapping[str, Any], where: str, rules: Mapping[str, Rule] | None = None
) -> None:
    """Check ``mapping`` against ``schema`` (a dataclass, whose annotations give the types and
    may give rules, or a mapping of names to types) and ``rules``; raise on the first fault."""
    hints = field_types(schema) if isinstance(schema, type) else dict(schema)
    rules = {**(field_rules(schema) if isinstance(schema, type) else {}), **(rules or {})}
    try:
        _validator(tuple(hints.items()), tuple((k, r) for k, r in rules.items() if k in hints)).validate_python(dict(mapping))
    except ValidationError as err:
        raise _fault(err.errors(), hints, mapping, where) from None


def _fault(errors: list[ErrorDetails], hints: Mapping[str, Any], mapping: Mapping[str, Any], where: str) -> BenchmarkError:
    """The line of the first fault: every unknown key, else the first value of a wrong type or out of its rule."""
    unknown = [e["loc"][0] for e in errors if e["type"] in ("extra_forbidden", "invalid_key")]
    if unknown:
        return BenchmarkError(
            f"bad {where.split('.')[0]} settings: unknown key {', '.join(f'{where}.{k}' for k in sorted(unknown, key=str))}; "
            f"known: {', '.join(sorted(hints))}"
        )
    first = errors[0]
    key = first["loc"][0]
    expected = first["ctx"]["rule"] if first["type"] == "rule" else describe(hints[key])
    return fault(f"{where}.{key}", expected, mapping[key])


def check_fields(obj: Any, where: str, rules: Mapping[str, Rule] | None = None) -> None:
    """``check_settings`` on a dataclass instance's own fields (for its ``__post_init__``)."""
    check_settings(type(obj), {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}, where, rules)
