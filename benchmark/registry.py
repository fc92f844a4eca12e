"""Finding methods and tasks: entry points (built-ins and installed plugins alike) or a file.

Method names: ``NAME`` (an entry point of ``unlearn_bench.methods``), ``NAME+rw`` (the same
method with REWEIGHT), or ``path/to/file.py:ClassName``; a method from a file goes by its
class's ``name`` attribute, else its class name (the key of its ``hparams`` and its
leaderboard rows). Task names: a suite (an entry point of ``unlearn_bench.tasks``, all its
tasks), or one task id, each optionally followed by ``:key=value,...`` to change task
settings (``shapes:skew=0.7``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import re
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any, Iterator

from benchmark.errors import BenchmarkError
from benchmark.method import UnlearningMethod, default_hparams
from benchmark.task import Task

METHODS_GROUP = "unlearn_bench.methods"
TASKS_GROUP = "unlearn_bench.tasks"
REWEIGHT_SUFFIX = "+rw"
#: what a method's name may hold: it names a folder of result files and a key of ``hparams``
METHOD_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
#: the module-name prefix of a plugin imported from its file (load_from_file)
PLUGIN_MODULE = "unlearn_bench_plugin_"


@cache
def _entry_points(group: str) -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=group)}


def _load(ep: EntryPoint, kind: str) -> Any:
    try:
        return ep.load()
    except Exception as err:  # a broken plugin must not take the run down with a traceback
        raise BenchmarkError(f"{kind} plugin {ep.name!r} ({ep.value}) failed to load: {type(err).__name__}: {err}") from None


@dataclass(frozen=True)
class MethodRef:
    """A method as the user named it: its class, and whether REWEIGHT is on."""

    name: str
    cls: type[UnlearningMethod]
    reweight: bool = False
    source: str = ""
    given: str = ""  # the string it was loaded from

    @property
    def base_name(self) -> str:
        return self.name.removesuffix(REWEIGHT_SUFFIX)

    def __reduce__(self):
        # Pickled by name, so that worker processes load the class themselves (a class from
        # a plugin file lives in a module only this process has).
        return load_method, (self.given,)


def method_names() -> list[str]:
    return sorted(_entry_points(METHODS_GROUP))


def _check_method_class(obj: Any, where: str) -> type[UnlearningMethod]:
    if not (isinstance(obj, type) and issubclass(obj, UnlearningMethod)):
        raise BenchmarkError(f"{where} is not an UnlearningMethod subclass (got {obj!r})")
    required = required_arguments(obj)
    if required:
        raise BenchmarkError(
            f"{where}: __init__ argument {', '.join(map(repr, required))} has no default; the runner passes "
            "only (model, original, data), so every hyper-parameter needs a default"
        )
    return obj


def required_arguments(cls: type) -> list[str]:
    """Parameters of ``cls.__init__`` without a default beyond the first three (model,
    original, data), which are all a method is built with."""
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    passed = {p.name for p in params[:3] if p.kind in positional}
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return [p.name for p in params if p.name not in passed and p.kind not in variadic and p.default is p.empty]


def load_method(spec: str) -> MethodRef:
    """Resolve ``NAME``, ``NAME+rw`` or ``file.py:Class`` to a MethodRef."""
    spec = spec.strip()
    reweight = spec.endswith(REWEIGHT_SUFFIX)
    base = spec.removesuffix(REWEIGHT_SUFFIX)
    if ":" in base and base.split(":", 1)[0].endswith(".py"):
        path, class_name = base.rsplit(":", 1)
        cls = _check_method_class(load_from_file(path, class_name), spec)
        name = _file_method_name(cls, class_name, spec)
        return _checked(MethodRef(name + (REWEIGHT_SUFFIX if reweight else ""), cls, reweight, f"{path}:{class_name}", spec))
    eps = _entry_points(METHODS_GROUP)
    if base not in eps:
        raise BenchmarkError(f"unknown method {spec!r}; known: {', '.join(method_names())} (or FILE.py:CLASS)")
    cls = _check_method_class(_load(eps[base], "method"), f"method {base!r} ({eps[base].value})")
    return _checked(MethodRef(spec, cls, reweight, eps[base].value, spec))


def _file_method_name(cls: type[UnlearningMethod], class_name: str, spec: str) -> str:
    """The name a method from a file goes by: its ``name`` class attribute, else its class name."""
    name = getattr(cls, "name", None) or class_name
    if not (isinstance(name, str) and METHOD_NAME.fullmatch(name)):
        raise BenchmarkError(
            f"{spec}: name {name!r} must be a string of letters, digits, '_', '.' and '-' (it names the method's results)"
        )
    return name


def _checked(ref: MethodRef) -> MethodRef:
    if ref.reweight and not ref.cls.reads_retain:
        raise BenchmarkError(f"{ref.name}: {ref.base_name} does not train on the retain set, so REWEIGHT (+rw) means nothing")
    if ref.reweight and default_hparams(ref.cls).get("reweight"):
        raise BenchmarkError(f"{ref.name}: {ref.base_name} runs with REWEIGHT already")
    return ref


def default_methods() -> list[str]:
    """Every registered method that does not opt out of the short default (``in_default``), and
    the ``+rw`` variant of those that ask for it."""
    names = [n for n in method_names() if getattr(_load_quietly(n), "in_default", True)]
    return names + [n + REWEIGHT_SUFFIX for n in names if getattr(_load_quietly(n), "rw_in_default", False)]


def gold_method(reweight: bool) -> MethodRef:
    """The registered method marked ``is_gold`` (with REWEIGHT when the scored method has it)."""
    golds = [n for n in method_names() if getattr(_load_quietly(n), "is_gold", False)]
    if len(golds) != 1:
        raise BenchmarkError(f"expected exactly one registered gold method, found {golds or 'none'}")
    return load_method(golds[0] + (REWEIGHT_SUFFIX if reweight else ""))


def _load_quietly(name: str) -> Any:
    """A registered method's class, or None when its plugin is broken (reported when used)."""
    try:
        return _load(_entry_points(METHODS_GROUP)[name], "method")
    except BenchmarkError:
        return None


def load_from_file(path: str, name: str) -> Any:
    """Import ``path`` as a module and return its attribute ``name``. The file may import the
    modules beside it (``from helpers import f``): its folder is on ``sys.path`` while it runs."""
    file = Path(path)
    if not file.is_file():
        raise BenchmarkError(f"plugin file not found: {path}")
    where = file.resolve()
    module_name = f"{PLUGIN_MODULE}{hashlib.sha256(str(where).encode()).hexdigest()[:16]}"
    spec = importlib.util.spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:
        raise BenchmarkError(f"cannot import {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        with _importing_beside(where.parent):
            spec.loader.exec_module(module)
    except Exception as err:
        sys.modules.pop(module_name, None)
        raise BenchmarkError(f"plugin file {path} failed to import: {type(err).__name__}: {err}") from None
    if not hasattr(module, name):
        raise BenchmarkError(f"plugin file {path} has no {name!r}")
    return getattr(module, name)


@contextmanager
def _importing_beside(folder: Path) -> Iterator[None]:
    """``folder`` first on ``sys.path`` for the duration. The modules first imported from it
    then (``helpers``, a package ``tools``) are dropped from ``sys.modules`` afterwards (the
    plugin keeps its references to them), so that another plugin's folder with a module of the
    same name gets its own; new submodules of packages imported before (``benchmark.losses``,
    when the plugin sits beside ``benchmark/``) are kept."""
    before = set(sys.modules)
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        sys.path.remove(str(folder))
        for added in set(sys.modules) - before:
            if added.partition(".")[0] not in before and _from_folder(added, sys.modules.get(added), folder):
                sys.modules.pop(added, None)


def _from_folder(name: str, module: Any, folder: Path) -> bool:
    """Whether module ``name`` is a module of ``folder`` (``folder/helpers.py``) or of a package
    there (``folder/tools/...``), not one found elsewhere on ``sys.path``."""
    file = getattr(module, "__file__", None)
    if not file:
        return False
    top, path = name.partition(".")[0], Path(file).resolve()
    return path == folder / f"{top}.py" or path.is_relative_to(folder / top)


def suite_names() -> list[str]:
    return sorted(_entry_points(TASKS_GROUP))


def load_suite(name: str, settings: dict[str, Any] | None = None) -> list[Task]:
    """The tasks of suite ``name``, built with dataset ``settings`` (the config's ``datasets``)."""
    eps = _entry_points(TASKS_GROUP)
    if name not in eps:
        raise BenchmarkError(f"unknown task suite {name!r}; known: {', '.join(suite_names())}")
    factory = _load(eps[name], "task")
    try:
        tasks = list(factory(**(settings or {})))
    except (TypeError, ValueError) as err:
        raise BenchmarkError(f"task suite {name!r} rejected its settings {settings}: {err}") from None
    if not all(isinstance(t, Task) for t in tasks):
        raise BenchmarkError(f"task suite {name!r} returned something other than Task objects")
    return tasks


def parse_overrides(text: str) -> dict[str, str]:
    """'a=1,b=x' -> {'a': '1', 'b': 'x'}."""
    pairs = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise BenchmarkError(f"expected key=value in {text!r}, got {item!r}")
        pairs[key.strip()] = value.strip()
    return pairs


def load_tasks(spec: str, dataset_settings: dict[str, dict[str, Any]] | None = None) -> list[Task]:
    """Tasks named by ``SUITE``, ``SUITE/TASK`` or either with ``:key=value,...`` overrides."""
    name, _, overrides = spec.strip().partition(":")
    suite = name.split("/", 1)[0]
    tasks = load_suite(suite, (dataset_settings or {}).get(suite))
    if name != suite:
        tasks = [t for t in tasks if t.id == name]
        if not tasks:
            known = ", ".join(t.id for t in load_suite(suite, (dataset_settings or {}).get(suite)))
            raise BenchmarkError(f"unknown task {name!r}; suite {suite!r} has: {known}")
    if overrides:
        changes = parse_overrides(overrides)
        tasks = list({t.id: t for t in (t.with_overrides(changes) for t in tasks)}.values())
    return tasks


def default_tasks(dataset_settings: dict[str, dict[str, Any]] | None = None) -> list[Task]:
    """Every registered task marked ``default`` (those that need no download)."""
    return [t for s in suite_names() for t in load_suite(s, (dataset_settings or {}).get(s)) if t.default]
