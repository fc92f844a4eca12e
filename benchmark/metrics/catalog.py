"""The metric list: every name that a result cell's ``metrics`` and a leaderboard entry's
``metrics`` carry, with its family, how it is shown, which way is better and where it comes
from. The scorecard, scoring against gold, ``rescore``, the renderers and docs/metrics.md all
follow this one list (tests/integration/test_catalog.py checks each of them against it): a new metric is
added here first, under the same JSON name everywhere.

A name with ``<g>`` stands for one name per group id: ``group_acc/<g>`` is ``group_acc/0``,
``group_acc/1``, ...

Sources (what is needed to compute the number):

- ``predictions``: the cell's per-sample predictions file alone (``compute_metrics``; what
  ``rescore`` recomputes offline)
- ``original``: the original model's cached TEST features (the runner; ``rescore`` too)
- ``attack``: the model itself (the attacks of ``robustness.py``; never recomputed offline)
- ``gold``: the cell and its gold cell (``scoring.py``; a cell may store ``speedup_vs_gold`` too)
- ``run``: the run of the method (wall time)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

FAMILIES = ("utility", "fairness", "calibration", "membership", "representation", "robustness", "gold", "cost")
UNITS = ("percent", "nats", "number", "ratio", "seconds")
# "gold": the closer to the gold model's value the better; "none": a standard error or a reference
BETTER = ("higher", "lower", "gold", "none")
SOURCES = ("predictions", "original", "attack", "gold", "run")


@dataclass(frozen=True)
class Metric:
    """One JSON name. ``label``: its short title in tables; ``follows``: whose definition or
    code it follows ("ours" when no paper's); ``column``: its place in the leaderboard's
    tables (None: not shown), ``terminal``: also in the terminal's table; ``optional``: only
    some runs carry it (each AutoAttack budget has its own names), so its column is shown
    only when an entry has it."""

    name: str
    family: str
    label: str
    unit: str
    better: str
    source: str
    follows: str
    column: int | None = None
    terminal: bool = False
    optional: bool = False

    def __post_init__(self) -> None:
        for field, value, allowed in (("family", self.family, FAMILIES), ("unit", self.unit, UNITS),
                                      ("better", self.better, BETTER), ("source", self.source, SOURCES)):
            if value not in allowed:
                raise ValueError(f"metric {self.name!r}: {field} must be one of {allowed}, not {value!r}")

    def matches(self, key: str) -> bool:
        """Whether the JSON key ``key`` is this metric (``<g>`` matches a group id)."""
        return re.fullmatch(re.escape(self.name).replace(re.escape("<g>"), r"\d+"), key) is not None


METRICS: tuple[Metric, ...] = (
    # utility and forgetting (groups.py)
    Metric("retain_acc", "utility", "Retain acc", "percent", "gold", "predictions", "standard", column=9),
    Metric("forget_acc", "utility", "Forget acc", "percent", "gold", "predictions", "standard", column=5, terminal=True),
    Metric("test_acc", "utility", "Test acc", "percent", "gold", "predictions", "standard", column=2, terminal=True),
    Metric("group_acc/<g>", "utility", "Group acc", "percent", "higher", "predictions", "standard"),
    Metric("worst_group_acc", "utility", "Worst-group acc", "percent", "higher", "predictions", "standard", column=3, terminal=True),
    Metric("forget_group_test_acc", "utility", "g* test acc", "percent", "gold", "predictions", "MIU", column=4, terminal=True),
    Metric("group_acc_gap", "utility", "Group acc gap", "percent", "lower", "predictions", "standard"),
    # fairness (groups.py, fairness_gap.py)
    Metric("equalized_odds", "fairness", "Eq. odds", "percent", "gold", "predictions", "MIU", column=11),
    Metric("demographic_parity", "fairness", "Dem. parity", "percent", "lower", "predictions", "standard"),
    Metric("fairness_gap", "fairness", "Fairness gap", "number", "lower", "predictions", "seed 002", column=13),
    # calibration (groups.py)
    Metric("ece", "calibration", "ECE", "percent", "lower", "predictions", "torchmetrics"),
    # membership inference (mia.py)
    Metric("mia_forget_nonmember", "membership", "MIA non-member", "percent", "gold", "predictions", "MIU", column=6, terminal=True),
    Metric("mia_auc", "membership", "MIA AUC", "percent", "gold", "predictions", "MIU"),
    Metric("mia_balanced_forget_nonmember", "membership", "Balanced MIA non-member", "percent", "gold", "predictions", "ours"),
    Metric("mia_balanced_auc", "membership", "Balanced MIA AUC", "percent", "gold", "predictions", "ours"),
    # representation (mutual_info.py; the gold's and the calibration error from scoring.py)
    Metric("mi_feature_group", "representation", "MI(z; g) (nats)", "nats", "gold", "predictions", "ours"),
    Metric("mi_feature_group_se", "representation", "MI(z; g) s.e.", "nats", "none", "predictions", "ours"),
    Metric("mi_feature_group_original", "representation", "Original MI(z; g)", "nats", "none", "original", "ours"),
    Metric("mi_feature_group_original_se", "representation", "Original MI(z; g) s.e.", "nats", "none", "original", "ours"),
    Metric("mi_feature_group_gold", "representation", "Gold MI(z; g)", "nats", "none", "gold", "ours"),
    Metric("mi_calibration_error", "representation", "MI calib. err (nats)", "nats", "lower", "gold", "ours", column=12),
    Metric("mi_calibration_error_se", "representation", "MI calib. err s.e.", "nats", "none", "gold", "ours"),
    # robustness (robustness.py)
    Metric("pgd_acc", "robustness", "PGD acc", "percent", "higher", "attack", "torchattacks", column=7, terminal=True),
    Metric("pgd_worst_group_acc", "robustness", "PGD worst-group acc", "percent", "higher", "attack", "torchattacks"),
    Metric("autoattack_standard_acc", "robustness", "AutoAttack acc",
        "percent", "higher", "attack", "AutoAttack", column=14, optional=True),
    Metric("autoattack_standard_worst_group_acc", "robustness", "AutoAttack worst-group acc",
        "percent", "higher", "attack", "AutoAttack", optional=True),
    Metric("autoattack_reduced_acc", "robustness", "AutoAttack (reduced) acc",
        "percent", "higher", "attack", "AutoAttack (reduced: ours)", column=15, optional=True),
    Metric("autoattack_reduced_worst_group_acc", "robustness", "AutoAttack (reduced) worst-group acc",
        "percent", "higher", "attack", "AutoAttack (reduced: ours)", optional=True),
    # against gold (scoring.py)
    Metric("avg_gap", "gold", "Avg. gap ↓", "percent", "lower", "gold", "MIU", column=1, terminal=True),
    Metric("tow", "gold", "ToW ↑", "percent", "higher", "gold", "REFERENCE §5", column=10),
    # cost (cells.py; the speed-up also from scoring.py)
    Metric("unlearn_seconds", "cost", "Time (s)", "seconds", "lower", "run", "ours", column=16),
    Metric("speedup_vs_gold", "cost", "Speed-up", "ratio", "higher", "gold", "REFERENCE §5", column=8, terminal=True),
)


def find(key: str) -> Metric | None:
    """The catalog's record of the JSON key ``key`` (None if it has none)."""
    return next((m for m in METRICS if m.matches(key)), None)


def names(source: str | None = None, family: str | None = None) -> list[str]:
    """The catalog's names, in its order, of one ``source`` and/or ``family`` (all if None)."""
    return [m.name for m in METRICS if source in (None, m.source) and family in (None, m.family)]


def select(keys: Iterable[str], source: str) -> list[str]:
    """The keys among ``keys`` (e.g. ``group_acc/2``) whose metric comes from ``source``."""
    return [k for k in keys if (m := find(k)) is not None and m.source == source]


def missing(keys: Iterable[str], sources: Iterable[str] = SOURCES) -> list[str]:
    """The catalog names of ``sources`` that none of ``keys`` is, the optional ones aside."""
    keys, sources = list(keys), tuple(sources)
    return [m.name for m in METRICS if m.source in sources and not m.optional and not any(m.matches(k) for k in keys)]


def columns() -> list[Metric]:
    """The leaderboard tables' columns, in order."""
    return sorted((m for m in METRICS if m.column is not None), key=lambda m: m.column)
