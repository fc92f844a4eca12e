"""Finding methods and tasks: entry points (built-ins and installed plugins alike) or a file.

Method names: ``NAME`` (an entry point of ``unlearn_bench.methods``), ``NAME+rw`` (the same
method with REWEIGHT), or ``path/to/file.py:ClassName``; a method from a file goes by its
class's ``name`` attribute, else its class name (the key of its ``hparams`` and its
leaderboard rows). Task names: a suite (an entry point of ``unlearn_bench.tasks``, all its
tasks), one task id, or a suite from a file (``path/to/file.py:function``, all the tasks the
function returns), each optionally followed by ``:key=value,...`` to change task settings
(``shapes:skew=0.7``, ``my_tasks.py:tasks:skew=0.7``).
"""

from __future__ import annotations

import copyreg
import functools
import hashlib
import importlib.util
import inspect
import pickle
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


class BrokenPlugin(BenchmarkError):
    """A registered plugin (entry point) that cannot be loaded: fatal where it is named, a
    "broken" row in a listing, skipped with a warning line in a default selection."""


def _load(ep: EntryPoint, kind: str) -> Any:
    try:
        return ep.load()
    except Exception as err:  # a broken plugin must not take the run down with a traceback
        raise BrokenPlugin(f"{kind} plugin {ep.name!r} ({ep.value}) failed to load: {one_line(err)}") from None


def one_line(err: BaseException) -> str:
    """``Type: first line of the message`` (a plugin's error can run over many lines)."""
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0].strip()}" if text else type(err).__name__


def warn(line: str) -> None:
    """Say ``line`` on stderr once per process (a plugin left out of a default selection)."""
    if line not in _warned:
        _warned.add(line)
        print(f"warning: {line}", file=sys.stderr, flush=True)


_warned: set[str] = set()


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
    the ``+rw`` variant of those that ask for it. A registered method that cannot be loaded is
    left out with a warning line on stderr naming it and why (``list methods`` shows it as
    broken; naming it with ``--methods`` is an error)."""
    classes = _method_classes()
    for name, (cls, why) in classes.items():
        if cls is None:
            warn(f"method {name!r} left out of the default methods: {why}")
    names = [n for n, (cls, _) in classes.items() if cls is not None and getattr(cls, "in_default", True)]
    return names + [n + REWEIGHT_SUFFIX for n in names if getattr(classes[n][0], "rw_in_default", False)]


def gold_method(reweight: bool) -> MethodRef:
    """The registered method marked ``is_gold`` (with REWEIGHT when the scored method has it)."""
    classes = _method_classes()
    golds = [n for n, (cls, _) in classes.items() if getattr(cls, "is_gold", False)]
    if len(golds) != 1:
        broken = "; ".join(f"{n}: {why}" for n, (cls, why) in classes.items() if cls is None)
        raise BenchmarkError(
            f"expected exactly one registered gold method, found {golds or 'none'}" + (f" (broken: {broken})" if broken else "")
        )
    return load_method(golds[0] + (REWEIGHT_SUFFIX if reweight else ""))


def _load_quietly(name: str) -> Any:
    """A registered method's class, or None when its plugin is broken (reported when used)."""
    return _method_class(name)[0]


def _method_class(name: str) -> tuple[type[UnlearningMethod] | None, str]:
    """A registered method's class, or None and the one-line reason it cannot be used (its
    plugin fails to import, or what it names is not a method the runner can build)."""
    ep = _entry_points(METHODS_GROUP)[name]
    try:
        return _check_method_class(_load(ep, "method"), f"method {name!r} ({ep.value})"), ""
    except BenchmarkError as err:
        return None, str(err)


def _method_classes() -> dict[str, tuple[type[UnlearningMethod] | None, str]]:
    return {name: _method_class(name) for name in method_names()}


@dataclass(frozen=True)
class Listed:
    """A registered plugin as ``unlearn-bench list`` shows it: what it loaded to (a method's
    class, a suite's tasks), or None and why it is broken (one line)."""

    name: str
    loaded: Any = None
    broken: str = ""


def list_methods() -> list[Listed]:
    """Every registered method, broken ones included (with their reason)."""
    return [Listed(name, cls, why) for name, (cls, why) in _method_classes().items()]


def list_suites() -> list[Listed]:
    """Every registered task suite with its tasks (default settings), or why it cannot be
    built: it fails to import, its factory raises, or it returns no tasks."""
    listed = []
    for name in suite_names():
        try:
            listed.append(Listed(name, load_suite(name)))
        except BenchmarkError as err:
            listed.append(Listed(name, broken=str(err)))
        except Exception as err:  # noqa: BLE001 -- a plugin's own bug is its row, not the listing's end
            listed.append(Listed(name, broken=f"task suite {name!r} failed to build its tasks: {one_line(err)}"))
    return listed


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
    except BenchmarkError:
        raise
    except Exception as err:  # the plugin's own bug: one line, and a "broken" row in listings
        raise BrokenPlugin(f"task suite {name!r} failed to build its tasks: {one_line(err)}") from None
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


def file_suite(spec: str) -> tuple[str, str, str] | None:
    """``(path, function, overrides)`` of a task suite named by its file,
    ``path/to/file.py:function`` or ``path/to/file.py:function:key=value,...``; None for a
    registered suite."""
    path, sep, rest = spec.strip().partition(".py:")
    if not sep:
        return None
    function, _, overrides = rest.partition(":")
    if not function.isidentifier():
        raise BenchmarkError(f"task suite {spec!r}: expected FILE.py:FUNCTION or FILE.py:FUNCTION:key=value,...")
    return path + ".py", function, overrides


def file_suite_name(spec: str) -> str | None:
    """The name a suite from a file goes by (the key of its ``datasets`` and ``data``
    settings): its file's stem, ``csv_task`` for ``examples/csv_task/csv_task.py:tasks``."""
    found = file_suite(spec)
    return Path(found[0]).stem if found else None


def load_file_suite(path: str, function: str, settings: dict[str, Any] | None = None) -> list[Task]:
    """The tasks that ``function`` of the file ``path`` returns when called with ``settings``.
    Every fault (no file, no function, the function raising or returning anything but Task
    objects) is one error line. Their sources pickle by the way to build them again, so that a
    worker process that has not imported the file gets them too."""
    where = f"{path}:{function}"
    factory = load_from_file(path, function)
    if not callable(factory):
        raise BenchmarkError(f"task suite {where} is not a function (it is {type(factory).__name__})")
    settings = dict(settings or {})
    try:
        made = factory(**settings)
        tasks = list(made) if isinstance(made, (list, tuple)) or inspect.isgenerator(made) else made
    except BenchmarkError as err:
        raise BenchmarkError(f"task suite {where}: {' '.join(str(err).split())}") from None
    except Exception as err:  # the plugin's own fault, or settings it does not take: one line
        raise BenchmarkError(f"task suite {where} failed with settings {settings}: {one_line(err)}") from None
    if not isinstance(tasks, list) or not all(isinstance(t, Task) for t in tasks):
        raise BenchmarkError(f"task suite {where} must return a list of benchmark.Task, not {_shown(tasks)}")
    if not tasks:
        raise BenchmarkError(f"task suite {where} returned no tasks")
    _pickle_by_origin(tasks, (str(Path(path).resolve()), function, settings))
    return tasks


def _shown(value: Any) -> str:
    """What a suite returned, briefly: its type, and the type of a bad item in a list."""
    if isinstance(value, (list, tuple)):
        bad = next((v for v in value if not isinstance(v, Task)), None)
        return f"a {type(value).__name__} holding a {type(bad).__name__}"
    return f"a {type(value).__name__}"


#: per process, the source classes of each file suite loaded: {(file, function, settings): [class, ...]}
_FILE_SOURCE_CLASSES: dict[tuple[str, str, str], list[type]] = {}


def _origin_key(origin: tuple[str, str, dict[str, Any]]) -> tuple[str, str, str]:
    path, function, settings = origin
    return path, function, repr(sorted(settings.items()))


def _pickle_by_origin(tasks: list[Task], origin: tuple[str, str, dict[str, Any]]) -> None:
    """A source class from a plugin file (or a module beside it) cannot be pickled by name: a
    spawned worker (or a Ray node) has no module of that name, and the modules beside the file
    are not kept in ``sys.modules``. Such a class is pickled instead as (``origin``, its place
    among the suite's source classes) with the instance's own state: unpickling loads the
    suite once per process (``_file_source_class``) and takes the class from it."""
    classes = list(dict.fromkeys(type(t.source) for t in tasks))
    _FILE_SOURCE_CLASSES[_origin_key(origin)] = classes
    for index, cls in enumerate(classes):
        if not _importable(cls):
            copyreg.pickle(cls, functools.partial(_reduce_file_object, origin=origin, index=index))


def _importable(cls: type) -> bool:
    """Whether a fresh process finds ``cls`` by its module and name."""
    module = sys.modules.get(cls.__module__)
    return not cls.__module__.startswith(PLUGIN_MODULE) and getattr(module, cls.__qualname__, None) is cls


def _reduce_file_object(obj: Any, *, origin: tuple[str, str, dict[str, Any]], index: int) -> tuple:
    constructor, arguments, *state = obj.__reduce_ex__(2)  # (copyreg.__newobj__, (cls, *args), state, ...)
    if constructor is not copyreg.__newobj__ or arguments[0] is not type(obj):
        raise pickle.PicklingError(f"{type(obj).__qualname__} from {origin[0]} does not pickle by its state")
    return (_new_file_object, (origin, index, *arguments[1:]), *state)


def _new_file_object(origin: tuple[str, str, dict[str, Any]], index: int, *arguments: Any) -> Any:
    cls = _file_source_class(origin, index)
    return cls.__new__(cls, *arguments)


def _file_source_class(origin: tuple[str, str, dict[str, Any]], index: int) -> type:
    """Source class ``index`` of the file suite ``origin``, loaded once per process."""
    if _origin_key(origin) not in _FILE_SOURCE_CLASSES:
        load_file_suite(*origin)
    return _FILE_SOURCE_CLASSES[_origin_key(origin)][index]


def load_tasks(spec: str, dataset_settings: dict[str, dict[str, Any]] | None = None) -> list[Task]:
    """Tasks named by ``SUITE``, ``SUITE/TASK``, ``FILE.py:FUNCTION`` or any of them with
    ``:key=value,...`` overrides. A suite from a file takes the settings of its file's stem."""
    found = file_suite(spec)
    if found is not None:
        path, function, overrides = found
        tasks = load_file_suite(path, function, (dataset_settings or {}).get(Path(path).stem))
        return _overridden(tasks, overrides)
    name, _, overrides = spec.strip().partition(":")
    suite = name.split("/", 1)[0]
    if name.endswith(".py"):
        raise BenchmarkError(f"task suite {spec.strip()!r}: name the function that returns its tasks, {name}:FUNCTION")
    tasks = load_suite(suite, (dataset_settings or {}).get(suite))
    if name != suite:
        tasks = [t for t in tasks if t.id == name]
        if not tasks:
            known = ", ".join(t.id for t in load_suite(suite, (dataset_settings or {}).get(suite)))
            raise BenchmarkError(f"unknown task {name!r}; suite {suite!r} has: {known}")
    return _overridden(tasks, overrides)


def _overridden(tasks: list[Task], overrides: str) -> list[Task]:
    """``tasks`` with the ``key=value,...`` task settings changed (tasks made equal by it: once)."""
    if not overrides:
        return tasks
    changes = parse_overrides(overrides)
    return list({t.id: t for t in (t.with_overrides(changes) for t in tasks)}.values())


def default_tasks(dataset_settings: dict[str, dict[str, Any]] | None = None) -> list[Task]:
    """Every registered task marked ``default`` (those that need no download)."""
    return [t for s in suite_names() for t in _default_suite(s, (dataset_settings or {}).get(s)) if t.default]


def _default_suite(name: str, settings: dict[str, Any] | None) -> list[Task]:
    """``load_suite``, except that a suite whose plugin is broken (it fails to import, or its
    factory raises) is left out of the default tasks with a warning line naming it and why;
    settings it rejects stay an error (they are the user's)."""
    try:
        return load_suite(name, settings)
    except BrokenPlugin as err:
        why = str(err)
    except BenchmarkError:
        raise
    except Exception as err:  # noqa: BLE001 -- the plugin's own bug
        why = f"task suite {name!r} failed to build its tasks: {one_line(err)}"
    warn(f"task suite {name!r} left out of the default tasks: {why}")
    return []
