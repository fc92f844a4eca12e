"""The run specification: what to run, where, and with which settings.

It comes from an optional YAML config file (``--config``) with CLI flags taking precedence::

    methods: [original, retrain, finetune, finetune+rw, my_method.py:MyMethod]
    tasks: [shapes, "shapes:skew=0.7"]
    seeds: [0, 1, 2]
    out: runs                 # result files and the model cache
    leaderboard: leaderboard  # leaderboard.json, leaderboard.md, index.html
    hparams: {finetune: {epochs: 2, lr: 0.005}}
    datasets: {shapes: {n_train: 400}}     # settings for a task suite's dataset
    data: {waterbirds: /data/waterbirds}   # where a dataset's local copy is (--data NAME=PATH)
    preset: quick                          # quick (CPU budget) or paper (REFERENCE §3 recipes)
    recipe: {epochs: 6}                    # overrides every dataset's training recipe
    model: {backbone: test_vit}            # overrides every dataset's model
    runtime: {accelerator: auto, devices: 1, precision: auto, strategy: auto}
    workers: auto             # cells run at once: one per GPU, or one per CPU core (up to 8), one thread each
    timeout: 1800             # seconds a cell (or an original) may run before it is stopped and stored as failed
    metrics: {mi_rows: 1000, attacks: {budget: auto, pgd_steps: 10}}  # auto: standard with --preset paper or a GPU
    shard: 2/8                # run only the 2nd of 8 deterministic slices of the cells (one per machine)
    hparams_from: tuned       # tuned (configs/tuned/<suite>.yaml where it has the method and task) or defaults
    tuned: configs/tuned      # where the tuned settings files are
    tune: {trials: 16, seeds: [1000]}  # `unlearn-bench tune`: trials per method x task, the tuning seeds

Hyper-parameters, lowest precedence first: the method's defaults, its ``dataset_overrides``, the
dataset's ``method_settings`` (its task suite's), the tuned settings (unless ``hparams_from:
defaults``), the ``hparams`` given here.
"""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError, ValidationInfo
from pydantic_core import ErrorDetails, PydanticUseDefault

from benchmark.errors import BenchmarkError
from benchmark.model import ModelSpec
from benchmark.method import UnlearningMethod, check_hparams, resolve_hparams, reweights
from benchmark.metrics.robustness import AttackSettings
from benchmark.registry import (
    REWEIGHT_SUFFIX, MethodRef, default_methods, default_tasks, file_suite_name, gold_method, load_method, load_tasks,
    method_names, suite_names,
)
from benchmark.run import tuned as tuned_files
from benchmark.run.runtime import Runtime
from benchmark.run.validate import check_trainer
from benchmark.settings import Range, check_settings
from benchmark.metrics.scorecard import MetricSettings
from benchmark.task import Task
from benchmark.training import Recipe

DEFAULT_SEEDS = (0, 1, 2)
METRIC_RULES = {"mi_rows": Range(1)}
ATTACK_RULES = {
    "rows": Range(1),
    "eps": Range(0),
    "pgd_alpha": Range(0, above=True),
    "pgd_steps": Range(1),
    "aa_steps": Range(1),
    "square_queries": Range(1),
    "seed": Range(0),
    "batch_size": Range(1),
}


@dataclass(frozen=True)
class Shard:
    """Slice ``index`` of ``count`` (1-based): every ``count``-th cell of the plan, from the
    ``index``-th. Runs that share one output directory and differ only in their shard split
    the grid between them; the same spec gives every machine the same plan, so the slices
    are disjoint and together cover it."""

    index: int
    count: int

    @classmethod
    def parse(cls, value: Any) -> Shard:
        text = str(value).strip()
        index, sep, count = text.partition("/")
        if not (sep and _whole(index) and _whole(count) and 1 <= int(index) <= int(count)):
            raise BenchmarkError(f"shard must be I/N with 1 <= I <= N (e.g. 2/8), not {value!r}")
        return cls(int(index), int(count))

    def take(self, cells: list) -> list:
        return cells[self.index - 1 :: self.count]

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


@dataclass
class Spec:
    methods: list[MethodRef]
    tasks: list[Task]
    seeds: list[int]
    out: Path = Path("runs")
    leaderboard: Path = Path("leaderboard")
    hparams: dict[str, dict[str, Any]] = field(default_factory=dict)
    recipe: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    runtime: Runtime = Runtime()
    workers: int | None = None  # processes running cells at once; None: one per GPU, or one per CPU core (up to 8)
    timeout: float = 1800.0  # seconds a job may run; the default is its preset's (PRESET_TIMEOUTS)
    metrics: MetricSettings = MetricSettings()
    shard: Shard | None = None  # this run's slice of the cells; None: all of them
    hparams_from: str = tuned_files.TUNED  # "tuned": the tuned settings where they exist; "defaults": never
    tuned: Path = tuned_files.DEFAULT_DIRECTORY
    tune: tuned_files.TuneSettings = tuned_files.TuneSettings()

    def recipe_for(self, task: Task) -> Recipe:
        return _replace(task.source.recipe, self.recipe, "recipe")

    def model_for(self, task: Task) -> ModelSpec:
        return _replace(task.source.model, self.model, "model")

    def metrics_for(self, task: Task) -> MetricSettings:
        """The metric settings with the attacks resolved: the settings' eps, else the dataset's,
        and the numbers the settings leave unset from their budget (``auto_budget`` for 'auto')."""
        attacks = self.metrics.attacks.resolved(task.source.attack_eps, auto=self.auto_budget(task))
        return dataclasses.replace(self.metrics, attacks=attacks)

    def auto_budget(self, task: Task) -> str:
        """The attack budget 'auto' stands for: 'standard' when the task runs its paper preset
        or the models run on a CUDA GPU, else 'reduced' (the CPU budget)."""
        paper = getattr(task.source, "preset", None) == "paper"
        return "standard" if paper or self.runtime.uses_cuda else "reduced"

    def hparams_for(self, method: MethodRef) -> dict[str, Any]:
        return method_overrides(self.hparams, method)

    def method_arguments(self, method: MethodRef, task: Task) -> dict[str, Any]:
        """The keyword arguments ``method`` is built with on ``task``, each level overriding the
        one before: its ``dataset_overrides``, the dataset's ``method_settings`` for it, its tuned
        settings, the user's hyper-parameters, and REWEIGHT for a ``+rw`` variant."""
        entry = self.tuned_entry(method, task)
        given = {**(entry["hparams"] if entry else {}), **self.hparams_for(method)}
        chosen = resolve_hparams(method.cls, task, given, method.name, dataset=dataset_method_settings(task, method))
        return {**chosen, **({"reweight": True} if method.reweight else {})}

    def tuned_entry(self, method: MethodRef, task: Task) -> dict[str, Any] | None:
        """``method``'s tuned entry for ``task`` (None: run its hand-set defaults)."""
        if self.hparams_from != tuned_files.TUNED or method.cls.is_gold:
            return None
        return tuned_files.lookup(self.tuned, task, self.tuning_context(task), method.name)

    def check_tuned(self) -> None:
        """The tuned settings files this spec reads (and ``tune`` writes) are readable: one error line each."""
        for task in self.tasks:
            tuned_files.read(tuned_files.path_for(self.tuned, task))

    def tuning_context(self, task: Task) -> str:
        return tuned_files.context(task, self.model_for(task), self.recipe_for(task))

    def tuning_of(self, method: MethodRef, task: Task) -> dict[str, Any]:
        """Where ``method``'s hyper-parameters on ``task`` come from, for its records."""
        entry = self.tuned_entry(method, task)
        overridden = sorted(set(self.hparams_for(method)) & set(entry["hparams"])) if entry else []
        return tuned_files.label(entry, overridden)


def method_overrides(hparams: dict[str, dict[str, Any]], method: MethodRef) -> dict[str, Any]:
    """User overrides for a method: those given for its base name, then for the exact name."""
    return {**hparams.get(method.base_name, {}), **hparams.get(method.name, {})}


def dataset_method_settings(task: Task, method: MethodRef) -> dict[str, Any]:
    """What ``task``'s dataset sets for ``method`` (its source's ``method_settings``): the entry
    of its base name, then of its exact name (``NAME+rw``)."""
    return method_overrides(getattr(task.source, "method_settings", {}), method)


def _replace(obj: Any, changes: dict[str, Any], what: str) -> Any:
    """``obj`` with ``changes`` (the config's ``what`` section), checked against its fields."""
    check_settings(type(obj), changes, what)
    return dataclasses.replace(obj, **changes)


# -- the config and the flags, parsed -------------------------------------------------------


def _whole(value: Any) -> bool:
    """An int (not a bool), or a string of digits (from the command line)."""
    return type(value) is int or (isinstance(value, str) and value.strip().isdigit())


def _split(text: str) -> list[str]:
    """The items of a comma-separated string."""
    return [v for v in (p.strip() for p in text.split(",")) if v]


def _names(value: Any, info: ValidationInfo) -> list[str]:
    """A list of names, or one string of them separated by commas."""
    if isinstance(value, str):
        return _split(value)
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    raise BenchmarkError(f"{info.field_name} must be a list, not {value!r}")


def _seeds(value: Any) -> list[int]:
    seeds = _split(value) if isinstance(value, str) else value
    if not isinstance(seeds, (list, tuple)) or not all(_whole(s) for s in seeds):
        raise BenchmarkError(f"seeds must be whole numbers, not {seeds!r}")
    out = [int(s) for s in seeds]
    if not out or any(s < 0 for s in out) or len(set(out)) != len(out):
        raise BenchmarkError(f"seeds must be distinct whole numbers >= 0, not {seeds!r}")
    if max(out) >= tuned_files.FIRST_TUNING_SEED:
        raise BenchmarkError(f"seeds from {tuned_files.FIRST_TUNING_SEED} up are tuning seeds, never reported; not {seeds!r}")
    return out


def _paths(value: Any) -> Any:
    """``data``: {suite: path}, or NAME=PATH strings (``--data``, repeatable)."""
    if isinstance(value, (list, tuple)):
        return dict(_name_path(item) for item in value)
    return value


def _name_path(item: str) -> tuple[str, str]:
    name, sep, path = str(item).partition("=")
    if not sep or not name or not path:
        raise BenchmarkError(f"--data takes NAME=PATH, not {item!r}")
    return name, path


def _workers(value: Any) -> int | None:
    if value == "auto":
        return None
    if not _whole(value) or int(value) < 1:
        raise BenchmarkError(f"workers must be a whole number >= 1 or 'auto', not {value!r}")
    return int(value)


def _timeout(value: Any) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = 0.0
    if not seconds > 0 or isinstance(value, bool):
        raise BenchmarkError(f"timeout must be a number of seconds > 0, not {value!r}")
    return seconds


def _hparams_from(value: Any) -> str:
    if value not in (tuned_files.TUNED, tuned_files.DEFAULTS):
        raise BenchmarkError(f"hparams_from (--hparams) must be {tuned_files.TUNED} or {tuned_files.DEFAULTS}, not {value!r}")
    return str(value)


def _or_default(value: Any) -> Any:
    """An empty value ('') stands for the setting's default."""
    if not value:
        raise PydanticUseDefault
    return value


Names = Annotated[list[str], BeforeValidator(_names)]
Directory = Annotated[Path, BeforeValidator(_or_default)]
Section = dict[str, Any]  # a dataclass's fields (checked against it), or a method's hyper-parameters
PRESET_TIMEOUTS = {"quick": 1800.0, "paper": 48 * 3600.0}  # seconds per job: a CPU-sized cell, a paper-scale original


class MetricsConfig(BaseModel):
    """``metrics``: ``MetricSettings``' numbers, and ``attacks``: ``AttackSettings``'."""

    model_config = ConfigDict(extra="allow")
    attacks: Section = {}


class Config(BaseModel):
    """A run's settings as the config file and the flags give them (a missing or null setting:
    its default), parsed and checked; the sections of a dataclass's fields are checked against it
    as the spec is built."""

    model_config = ConfigDict(extra="forbid")

    methods: Names = []  # none: the registry's default methods
    tasks: Names = []  # none: the registry's default tasks
    seeds: Annotated[list[int], BeforeValidator(_seeds)] = list(DEFAULT_SEEDS)
    out: Directory = Path("runs")
    leaderboard: Directory = Path("leaderboard")
    hparams: dict[str, Section] = {}
    datasets: dict[str, Section] = {}
    data: Annotated[dict[str, Any], BeforeValidator(_paths)] = {}
    preset: str | None = None
    recipe: Section = {}
    model: Section = {}
    runtime: Section = {}
    workers: Annotated[int | None, BeforeValidator(_workers)] = None  # None: auto
    metrics: MetricsConfig = MetricsConfig()
    timeout: Annotated[float | None, BeforeValidator(_timeout)] = None  # None: the preset's
    shard: Annotated[Shard | None, BeforeValidator(Shard.parse)] = None
    hparams_from: Annotated[str, BeforeValidator(_hparams_from)] = tuned_files.TUNED
    tuned: Directory = tuned_files.DEFAULT_DIRECTORY
    tune: Section = {}

    @classmethod
    def parse(cls, settings: dict[str, Any]) -> Config:
        """The settings parsed; the first fault is one line."""
        try:
            return cls.model_validate({k: v for k, v in settings.items() if v is not None})
        except ValidationError as err:
            raise _fault(err.errors()) from None

    @property
    def seconds_per_job(self) -> float:
        return self.timeout or PRESET_TIMEOUTS.get(self.preset or "quick", PRESET_TIMEOUTS["quick"])


#: what a value of the wrong shape must be, by pydantic's error type
SHAPES = {"dict_type": "a mapping", "model_type": "a mapping", "list_type": "a list", "string_type": "a string", "path_type": "a path"}


def _fault(errors: list[ErrorDetails]) -> BenchmarkError:
    """The line of the first fault: every unknown setting, else the first value of a wrong shape."""
    unknown = [str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden"]
    if unknown:
        return BenchmarkError(unknown_settings(unknown))
    first = errors[0]
    key = ".".join(map(str, first["loc"]))
    return BenchmarkError(f"{key} must be {SHAPES.get(first['type'], first['msg'].lower())}, not {first['input']!r}")


def unknown_settings(names: list[str]) -> str:
    return f"unknown setting {', '.join(sorted(names))}; known: {', '.join(Config.model_fields)}"


def read_config(path: str | Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    file = Path(path)
    if not file.is_file():
        raise BenchmarkError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as err:
        raise BenchmarkError(f"config file {path} is not valid YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise BenchmarkError(f"config file {path} must hold a mapping of settings")
    unknown = [str(k) for k in data if k not in Config.model_fields]
    if unknown:
        raise BenchmarkError(f"config file {path}: {unknown_settings(unknown)}")
    return data


def with_golds(methods: list[MethodRef], tasks: list[Task], hparams: dict[str, dict[str, Any]]) -> list[MethodRef]:
    """The methods, gold references first: every scored method needs its gold in the run
    (retrain, or retrain+rw for methods that run with REWEIGHT)."""
    needed = {
        m.reweight or reweights(m.cls, t, method_overrides(hparams, m))
        for m in methods
        if not m.cls.is_gold
        for t in tasks
    }
    golds = [gold_method(rw) for rw in sorted(needed)]
    seen: dict[str, MethodRef] = {}
    for m in [*golds, *[m for m in methods if m.cls.is_gold], *methods]:
        _check_unique(seen.setdefault(m.name, m), m)
    return sorted(seen.values(), key=lambda m: not m.cls.is_gold)


def _check_unique(kept: MethodRef, other: MethodRef) -> None:
    """Two methods of one name are one method (one class of one file, however its path is
    written), or a fault."""
    if kept.source != other.source and _defined_in(kept.cls) != _defined_in(other.cls):
        raise BenchmarkError(
            f"two methods are named {kept.name!r}: {kept.given} ({kept.source}) and {other.given} ({other.source}); "
            "give one a distinct `name` class attribute"
        )


def _defined_in(cls: type) -> tuple[str, str]:
    """(the resolved file the class is defined in, its qualified name)."""
    try:
        return str(Path(inspect.getfile(cls)).resolve()), cls.__qualname__
    except (TypeError, OSError):
        return cls.__module__, cls.__qualname__


def build_spec(config: dict[str, Any], **flags: Any) -> Spec:
    """Merge a config mapping with CLI flags (flags that are not None win)."""
    given = Config.parse({**config, **{k: v for k, v in flags.items() if v is not None}})
    datasets = dataset_settings(given)
    methods = [load_method(m) for m in given.methods or default_methods()]
    tasks = [t for spec in given.tasks for t in load_tasks(spec, datasets)] if given.tasks else default_tasks(datasets)
    if not tasks:
        raise BenchmarkError("no tasks selected")
    tasks = list({t.id: t for t in tasks}.values())
    methods = with_golds(methods, tasks, given.hparams)
    _check_hparams(given.hparams, methods)
    _check_method_settings(tasks, methods)
    spec = Spec(
        methods=methods,
        tasks=tasks,
        seeds=given.seeds,
        out=given.out,
        leaderboard=given.leaderboard,
        hparams=given.hparams,
        recipe=given.recipe,
        model=given.model,
        runtime=_runtime(given.runtime),
        workers=given.workers,
        timeout=given.seconds_per_job,
        metrics=_metric_settings(given.metrics),
        shard=given.shard,
        hparams_from=given.hparams_from,
        tuned=given.tuned,
        tune=tuned_files.TuneSettings.parse(given.tune),
    )
    for task in tasks:  # every task's recipe and model with the overrides: their __post_init__ checks them
        spec.recipe_for(task), spec.model_for(task)
    return spec


def _check_hparams(hparams: dict[str, dict[str, Any]], methods: list[MethodRef]) -> None:
    """Each entry of ``hparams`` names a method of the run or a registered one, and its values
    fit that method's hyper-parameters."""
    for name, values in hparams.items():
        check_hparams(_hparams_class(name, methods), values, name)


def _check_method_settings(tasks: list[Task], methods: list[MethodRef]) -> None:
    """Each dataset's ``method_settings`` are a mapping of method names to hyper-parameters,
    and those for a method of the run, or a registered one, fit its hyper-parameters; one error
    line names the dataset. Settings for a method neither in the run nor registered (a plugin
    not installed here) are not used, and not checked. ``reweight`` is the ``+rw`` variant's."""
    for source in {id(t.source): t.source for t in tasks}.values():
        settings = getattr(source, "method_settings", {})
        where = f"dataset {source.name}: method_settings"
        if not isinstance(settings, dict) or not all(isinstance(v, dict) for v in settings.values()):
            raise BenchmarkError(f"{where} must map method names to mappings of hyper-parameters, not {settings!r}")
        for name, values in settings.items():
            if "reweight" in values:
                raise BenchmarkError(f"{where}.{name}.reweight: REWEIGHT is chosen by running the method's +rw variant")
            cls = _settings_class(str(name), methods)
            if cls is not None:
                check_hparams(cls, values, str(name), where)


def _settings_class(name: str, methods: list[MethodRef]) -> type[UnlearningMethod] | None:
    """The class of method ``name`` (or ``NAME+rw``): the run's, else a registered one, else None."""
    try:
        return _hparams_class(name, methods)
    except BenchmarkError:
        return None


def _hparams_class(name: str, methods: list[MethodRef]) -> type[UnlearningMethod]:
    """The class of the method that ``hparams.<name>`` is for: one of the run's (by its name or
    base name), else a registered one (a config may hold settings for methods it does not run)."""
    for m in methods:
        if name in (m.name, m.base_name):
            return m.cls
    if name.removesuffix(REWEIGHT_SUFFIX) in method_names():
        return load_method(name.removesuffix(REWEIGHT_SUFFIX)).cls
    raise BenchmarkError(
        f"hparams.{name}: no method {name!r} in this run or the registry; "
        f"this run's methods: {', '.join(m.name for m in methods)}"
    )


def _runtime(config: dict[str, Any]) -> Runtime:
    """The runtime, with Lightning's verdict on its devices and precision for its accelerator."""
    runtime = _replace(Runtime(), config, "runtime")
    check_trainer(runtime, {}, "runtime")
    return runtime


def _metric_settings(config: MetricsConfig) -> MetricSettings:
    numbers = config.model_extra or {}
    check_settings(MetricSettings, numbers, "metrics", METRIC_RULES)
    check_settings(AttackSettings, config.attacks, "metrics.attacks", ATTACK_RULES)
    return MetricSettings.from_config({**numbers, "attacks": config.attacks})


def dataset_settings(given: Config) -> dict[str, dict[str, Any]]:
    """Per task suite, the settings of its dataset: ``datasets``, with the ``data`` paths and
    the ``preset`` folded in. A suite from a file (among ``tasks``) goes by its file's stem."""
    suites = sorted({*suite_names(), *(name for spec in given.tasks if (name := file_suite_name(spec)))})
    for where, names in (("datasets", given.datasets), ("data", given.data)):
        _check_suites(names, where, suites)
    datasets = {name: dict(settings) for name, settings in given.datasets.items()}
    for name, path in given.data.items():
        datasets.setdefault(name, {})["path"] = str(path)
    if given.preset:
        for suite in suites:
            datasets.setdefault(suite, {})["preset"] = given.preset
    return datasets


def _check_suites(names: dict[str, Any], where: str, suites: list[str]) -> None:
    for name in names:
        if name not in suites:
            raise BenchmarkError(f"{where}.{name}: no task suite {name!r}; known: {', '.join(suites)}")
