"""A method's search space, from the ranges its hyper-parameters declare.

The space is the common one (``benchmark.method.COMMON_SEARCH``: lr, epochs, weight decay,
batch size) with the method's ``Search`` declaration applied: ranges of its own added, common
ones narrowed or dropped (with a reason). Each range becomes one dimension: an integer where
the hyper-parameter's default is an int, on a log scale where the range spans a decade or more
(high / low >= 10, low > 0), else uniform.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from benchmark.errors import BenchmarkError
from benchmark.hashing import stable_hash
from benchmark.method import COMMON_SEARCH, UnlearningMethod, default_hparams
from benchmark.settings import Range

LOG_SPAN = 10.0  # a range this wide (high / low) or wider is searched on a log scale


@dataclass(frozen=True)
class Dimension:
    name: str
    low: float
    high: float
    integer: bool
    log: bool

    def suggest(self, trial: Any) -> int | float:
        """This dimension's value for an Optuna trial."""
        if self.integer:
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, log=self.log)

    def clip(self, value: Any) -> int | float:
        """``value`` moved into the range (a default outside it starts the search at the edge)."""
        clipped = min(max(value, self.low), self.high)
        return int(round(clipped)) if self.integer else float(clipped)

    def __str__(self) -> str:
        kind = "int" if self.integer else "float"
        return f"{self.name} {kind} in [{self.low:g}, {self.high:g}]{' log' if self.log else ''}"


def search_space(cls: type[UnlearningMethod], name: str) -> list[Dimension]:
    """The dimensions ``unlearn-bench tune`` searches for method ``name`` (its class ``cls``);
    a declaration that widens a common range, names an unknown hyper-parameter, or narrows
    without a reason is one error line."""
    declared = cls.search
    defaults = default_hparams(cls)
    for key, rule in declared.ranges.items():
        where = f"method {name}: search range of {key!r}"
        if key not in defaults:
            raise BenchmarkError(f"{where}: it has no such hyper-parameter; it takes: {', '.join(sorted(defaults))}")
        if key in COMMON_SEARCH and not declared.reason:
            raise BenchmarkError(f"{where}: narrowing a common range needs a reason (Search(..., reason=...))")
        if rule is not None:
            _check_range(rule, COMMON_SEARCH.get(key), where)
    ranges = {**COMMON_SEARCH, **declared.ranges}
    return [_dimension(key, rule, defaults[key]) for key, rule in ranges.items() if rule is not None and key in defaults]


def _check_range(rule: Range, common: Range | None, where: str) -> None:
    if not (math.isfinite(rule.low) and math.isfinite(rule.high) and rule.low <= rule.high):
        raise BenchmarkError(f"{where}: a search range needs finite bounds low <= high, not {rule}")
    if common is not None and not (common.low <= rule.low and rule.high <= common.high):
        raise BenchmarkError(f"{where}: {rule} widens the common range {common}; a method may only narrow it")


def _dimension(name: str, rule: Range, default: Any) -> Dimension:
    integer = isinstance(default, int) and not isinstance(default, bool)
    log = rule.low > 0 and rule.high / rule.low >= LOG_SPAN
    return Dimension(name, rule.low, rule.high, integer, log)


def space_hash(dimensions: list[Dimension]) -> str:
    return stable_hash([asdict(d) for d in dimensions])


def start(dimensions: list[Dimension], hparams: dict[str, Any]) -> dict[str, Any]:
    """The first trial's values: the method's own settings ``hparams`` on each dimension, clipped into its range."""
    return {d.name: d.clip(hparams[d.name]) for d in dimensions if isinstance(hparams.get(d.name), (int, float))}
