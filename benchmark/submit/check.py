"""``unlearn-bench validate``: a method plugin checked against the contract, then run on a
tiny task through the runner.

The checks, in order; the first that fails ends the validation (each later check assumes the
earlier ones), and every problem that check found is one line, ``FILE:LINE: what is wrong``:

1. it imports (a syntax or import error: the file and line it was raised at);
2. it is an ``UnlearningMethod`` subclass whose ``__init__`` takes (model, original, data);
3. every hyper-parameter has a default, of a common hyper-parameter's range, that serialises
   to JSON; ``dataset_overrides`` names known datasets ("<dataset>" or "<dataset> r=<r>") and
   known hyper-parameters with values of their types;
4. it runs on the smoke task (``smoke_task``: a default task at its dataset's ``smoke`` preset,
   a 1-epoch original, the method at most 1 epoch), with the runner's own checks: every loss finite (``FiniteLoss``), and
   ``self.model`` left a float32 ``Classifier`` with finite weights (``check_model``);
5. it changes the model's weights;
6. it leaves the frozen original untouched (every tensor's sha256, before and after);
7. a second run with the same seed gives identical weights.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import inspect
import json
import tempfile
import textwrap
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Iterator

from benchmark.errors import BenchmarkError
from benchmark.method import HPARAM_RULES, UnlearningMethod, default_hparams, hparam_types, task_overrides
from benchmark.registry import METHODS_GROUP, REWEIGHT_SUFFIX, load_from_file, load_method, required_arguments, suite_names
from benchmark.settings import Rule, describe, matches
from benchmark.task import Task

#: the dataset preset a task suite offers for the smoke run (a few hundred rows, one epoch)
SMOKE = "smoke"
SMOKE_EPOCHS = 1


class _Stop(Exception):
    """A check failed: the validation ends."""


@dataclass
class Verdict:
    """What passed (one line each), the check that failed and its problems, and the time taken."""

    plugin: str
    passed: list[str] = field(default_factory=list)
    failed: str = ""
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    def require(self, problems: list[str], check: str) -> None:
        """``check`` passed when ``problems`` is empty; else record them and stop."""
        if problems:
            self.failed, self.problems = check, problems
            raise _Stop
        self.passed.append(check)


def validate_plugin(given: str, store: Path | None = None) -> Verdict:
    """Check the plugin named ``given`` (FILE.py:Class, NAME or NAME+rw); the tiny task's data
    and original model go to the store at ``store`` (default: a temporary directory).
    A plugin that cannot be found (no such file, class or name) raises BenchmarkError."""
    verdict, started = Verdict(given.strip()), time.perf_counter()
    try:
        obj, problems = load_plugin(given)
        verdict.require(problems, "imports")
        verdict.require(contract_problems(obj), "an UnlearningMethod subclass; __init__ takes (model, original, data)")
        verdict.require(hparam_problems(obj), f"{len(default_hparams(obj))} hyper-parameters, each with a JSON default; dataset_overrides well-formed")
        with _directory(store) as root, _one_thread():
            _smoke(verdict, obj, root)
    except _Stop:
        pass
    verdict.seconds = time.perf_counter() - started
    return verdict


# -- where things are --------------------------------------------------------------------


def _shown(file: str | Path) -> str:
    """A file as the user reads it: relative to the working directory when under it."""
    path = Path(file)
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except (ValueError, OSError):
        return str(path)


def _at(file: str | Path, line: int | None) -> str:
    return f"{_shown(file)}:{line}" if line else _shown(file)


def _defined_at(obj: Any) -> str:
    """FILE:LINE of a class or function (FILE, or its name, when the source is not at hand)."""
    try:
        file = inspect.getfile(obj)
    except TypeError:
        return getattr(obj, "__qualname__", repr(obj))
    try:
        return _at(file, inspect.getsourcelines(obj)[1])
    except (OSError, TypeError):
        return _shown(file)


def _own(klass: type) -> bool:
    """Whether ``klass`` is the plugin's (not the engine's base classes)."""
    return klass.__module__.split(".")[0] != "benchmark"


def _member_at(cls: type, name: str) -> str:
    """Where the plugin defines method ``name`` (the class itself when the engine does)."""
    for klass in cls.__mro__:
        if name in klass.__dict__ and _own(klass):
            return _defined_at(klass.__dict__[name])
    return _defined_at(cls)


def _parsed(obj: Any) -> tuple[ast.AST, str, int] | None:
    """The syntax tree of ``obj``'s source, its file and first line."""
    try:
        lines, start = inspect.getsourcelines(obj)
        return ast.parse(textwrap.dedent("".join(lines))).body[0], inspect.getfile(obj), start
    except (OSError, TypeError, SyntaxError, IndexError):
        return None


def _param_at(func: Callable, name: str) -> str:
    """FILE:LINE of parameter ``name`` of ``func`` (of ``func`` itself when not found)."""
    found = _parsed(func)
    if found is None or not isinstance(found[0], (ast.FunctionDef, ast.AsyncFunctionDef)):
        return _defined_at(func)
    node, file, start = found
    args = node.args
    for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs]:
        if arg.arg == name:
            return _at(file, start + arg.lineno - 1)
    return _at(file, start)


def _attribute_at(cls: type, name: str) -> str:
    """FILE:LINE of the class attribute ``name`` where the plugin assigns it."""
    owner = next((k for k in cls.__mro__ if name in k.__dict__), cls)
    found = _parsed(owner) if _own(owner) else None
    if found is None or not isinstance(found[0], ast.ClassDef):
        return _defined_at(cls)
    node, file, start = found
    for item in node.body:
        targets = item.targets if isinstance(item, ast.Assign) else [item.target] if isinstance(item, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            return _at(file, start + item.lineno - 1)
    return _at(file, start)


def _declaring_init(cls: type, name: str) -> Callable:
    """The ``__init__`` along the class's chain that declares parameter ``name``."""
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is not None and name in inspect.signature(init).parameters:
            return init
    return cls.__init__


def _raised_at(err: BaseException, file: str | Path | None) -> str:
    """Where ``err`` was raised: its last frame in ``file``, else its last frame with a file."""
    if isinstance(err, SyntaxError) and err.filename:
        return _at(err.filename, err.lineno)
    frames = [f for f in traceback.extract_tb(err.__traceback__) if not f.filename.startswith("<")]
    target = Path(file).resolve() if file else None
    mine = [f for f in frames if target is not None and Path(f.filename).resolve() == target]
    frame = (mine or frames or [None])[-1]
    if frame is None:
        return _shown(file) if file else "?"
    return _at(frame.filename, frame.lineno)


def _message(err: BaseException) -> str:
    text = err.msg if isinstance(err, SyntaxError) else str(err)
    lines = str(text).strip().splitlines()
    return f"{type(err).__name__}: {lines[0] if lines else ''}".strip()


# -- 1. imports ----------------------------------------------------------------------------


def load_plugin(given: str) -> tuple[Any, list[str]]:
    """The object ``given`` names and the problems of importing it (the object is None then)."""
    base = given.strip().removesuffix(REWEIGHT_SUFFIX)
    if ":" in base and base.split(":", 1)[0].endswith(".py"):
        path, name = base.rsplit(":", 1)
        try:
            return load_from_file(path, name), []
        except BenchmarkError as err:
            cause = err.__context__  # what the import raised; none when the file or class is missing
            if cause is None:
                raise
            return None, [f"{_raised_at(cause, Path(path))}: {_message(cause)}"]
    points = {ep.name: ep for ep in entry_points(group=METHODS_GROUP)}
    if base not in points:
        raise BenchmarkError(f"unknown method {given.strip()!r}; known: {', '.join(sorted(points))} (or FILE.py:CLASS)")
    try:
        return points[base].load(), []
    except Exception as err:  # noqa: BLE001 -- whatever the import raised is the verdict
        return None, [f"{_raised_at(err, _module_file(points[base].module))}: {_message(err)}"]


def _module_file(module: str) -> str | None:
    try:
        spec = importlib.util.find_spec(module)
    except Exception:  # noqa: BLE001 -- its package does not import either
        return None
    return spec.origin if spec is not None else None


# -- 2. the contract -----------------------------------------------------------------------


def contract_problems(obj: Any) -> list[str]:
    """An UnlearningMethod subclass whose ``__init__`` takes three positional arguments."""
    if not (isinstance(obj, type) and issubclass(obj, UnlearningMethod)):
        kind = "a class" if isinstance(obj, type) else f"a {type(obj).__name__}"
        name = getattr(obj, "__name__", repr(obj))
        return [f"{_defined_at(obj)}: {name} is not an UnlearningMethod subclass (it is {kind})"]
    params = list(inspect.signature(obj.__init__).parameters.values())[1:]
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) < 3 and not any(p.kind is p.VAR_POSITIONAL for p in params):
        taken = ", ".join(str(p) for p in params)
        return [f"{_defined_at(obj.__init__)}: __init__ must take (model, original, data), then keyword hyper-parameters; it takes ({taken})"]
    return []


# -- 3. hyper-parameters -------------------------------------------------------------------


def hparam_problems(cls: type[UnlearningMethod]) -> list[str]:
    """Hyper-parameters without a default, defaults out of range or not JSON, bad overrides."""
    problems = [f"{_param_at(cls.__init__, n)}: hyper-parameter {n!r} has no default" for n in required_arguments(cls)]
    for name, value in default_hparams(cls).items():
        problem = _value_problem(value, None, HPARAM_RULES.get(name))
        if problem:
            problems.append(f"{_param_at(_declaring_init(cls, name), name)}: hyper-parameter {name!r}: default {value!r} {problem}")
    return problems + override_problems(cls)


def _value_problem(value: Any, hint: Any, rule: Rule | None) -> str | None:
    """What is wrong with a hyper-parameter's value: its type, its range, or its JSON."""
    if hint is not None and not matches(value, hint):
        return f"must be {describe(hint)}"
    if rule is not None and value is not None and not rule.holds(value):
        return f"must be {rule}"
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return "does not serialise to JSON"
    return None


def override_problems(cls: type[UnlearningMethod]) -> list[str]:
    """``dataset_overrides``: {"<dataset>" or "<dataset> r=<r>": {hyper-parameter: value}}."""
    overrides, at = cls.dataset_overrides, _attribute_at(cls, "dataset_overrides")
    if not isinstance(overrides, dict):
        return [f"{at}: dataset_overrides must be a dict {{dataset: {{hyper-parameter: value}}}}, not {type(overrides).__name__}"]
    types, problems = hparam_types(cls), []
    for key, values in overrides.items():
        where = f"{at}: dataset_overrides[{key!r}]"
        wrong_key = _override_key_problem(key)
        if wrong_key:
            problems.append(f"{where}: {wrong_key}")
        if not isinstance(values, dict):
            problems.append(f"{where} must be a dict of hyper-parameters, not {values!r}")
            continue
        for name, value in values.items():
            if name not in types:
                problems.append(f"{where}: no hyper-parameter {name!r}; the method takes: {', '.join(sorted(types))}")
                continue
            problem = _value_problem(value, types[name], HPARAM_RULES.get(name))
            if problem:
                problems.append(f"{where}: {name} = {value!r} {problem}")
    return problems


def _override_key_problem(key: Any) -> str | None:
    if not isinstance(key, str):
        return "a key is a dataset name or '<dataset> r=<r>'"
    dataset, sep, ratio = key.partition(" r=")
    if dataset not in suite_names():
        return f"unknown dataset {dataset!r}; known: {', '.join(suite_names())} (a key is '<dataset>' or '<dataset> r=<r>')"
    try:
        r = float(ratio) if sep else 1.0
    except ValueError:
        r = -1.0
    if sep and not (0 < r <= 1 and f"{r:g}" == ratio):
        return f"r must be a fraction in (0, 1] written as task ids write it (0.9, not 0.90), not {ratio!r}"
    return None


# -- 4-7. the smoke run ----------------------------------------------------------------------


@contextmanager
def _one_thread() -> Iterator[None]:
    """torch on one CPU thread, as the pool's CPU workers compute (tiny models run fastest so,
    and other processes on the cores do not slow them down)."""
    import torch

    from benchmark.run.pool import CPU_THREADS

    before = torch.get_num_threads()
    torch.set_num_threads(CPU_THREADS)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextmanager
def _directory(path: Path | None) -> Iterator[Path]:
    if path is not None:
        yield Path(path)
        return
    with tempfile.TemporaryDirectory(prefix="unlearn-bench-validate-") as tmp:
        yield Path(tmp)


def _smoke(verdict: Verdict, cls: type[UnlearningMethod], root: Path) -> None:
    """Checks 4 to 7: two runs of the plugin on the tiny task, through the runner."""
    runner, cell, problems = _tiny_runner(verdict.plugin, cls, root)
    if not problems:
        original = _original(runner, cell)
        before = fingerprint(original)
        method, problems = _run(runner, cell, cls)
    where = f"{cell.task.id} ({len(runner.artefacts.dataset(cell.task).train)} TRAIN rows, at most {SMOKE_EPOCHS} epoch)" if cell else "the smoke task"
    verdict.require(problems, f"runs on {where}: finite losses; self.model a float32 Classifier")
    weights = fingerprint(method.model)
    verdict.require(_unchanged(cls, before, weights), "changes the model's weights")
    changed = _differing(before, fingerprint(method.original)) or _differing(before, fingerprint(original))
    verdict.require(_edited_original(cls, changed), "leaves the frozen original untouched")
    again, problems = _run(runner, cell, cls)
    verdict.require(problems or _nondeterministic(cls, cell.seed, weights, again), f"deterministic: two runs with seed {cell.seed} gave identical weights")


def _unchanged(cls: type, before: dict[str, str], after: dict[str, str]) -> list[str]:
    if _differing(before, after):
        return []
    return [f"{_defined_at(cls)}: self.model's weights are the original's after the run; an unlearning method must change them"]


def _edited_original(cls: type, changed: list[str]) -> list[str]:
    if not changed:
        return []
    return [f"{_defined_at(cls)}: the frozen original changed ({_names(changed)}); read self.original, never train or edit it"]


def _nondeterministic(cls: type, seed: int, weights: dict[str, str], again: Any) -> list[str]:
    differ = _differing(weights, fingerprint(again.model))
    if not differ:
        return []
    return [
        f"{_defined_at(cls)}: two runs with seed {seed} gave different weights ({_names(differ)}); draw random numbers "
        "from torch's global generator (seeded by the runner) or a generator seeded from self.data.seed"
    ]


def smoke_task() -> Task:
    """The smoke run's task: the last default task (the most skewed of the default grid) of the
    first task suite whose dataset offers the ``smoke`` preset, built with it (broken suites,
    which ``list tasks`` shows as such, are passed over)."""
    from benchmark import registry

    for listed in registry.list_suites():
        if listed.broken or not listed.loaded:
            continue
        source = type(listed.loaded[0].source)
        if SMOKE in getattr(source, "presets", {}):
            tasks = [t for t in registry.load_suite(listed.name, {"preset": SMOKE}) if t.default]
            if tasks:
                return tasks[-1]
    raise BenchmarkError(f"validate needs a task suite whose dataset has a {SMOKE!r} preset; none is installed")


def _tiny_runner(given: str, cls: type[UnlearningMethod], root: Path) -> tuple[Any, Any, list[str]]:
    """The runner of the smoke spec, the plugin's cell in it, and the problems of building them."""
    from benchmark.run.runner import Runner
    from benchmark.run.spec import build_spec

    task = smoke_task()
    try:
        ref = load_method(given)
        hparams = {ref.base_name: {"epochs": SMOKE_EPOCHS}} if _trains_longer(cls, task) else {}
        config = {"datasets": {task.source.name: {"preset": SMOKE}}, "seeds": [0], "out": str(root), "hparams": hparams}
        spec = build_spec(config, methods=[given], tasks=[task.id])
    except BenchmarkError as err:
        return None, None, [f"{_defined_at(cls)}: {err}"]
    runner = Runner(spec)
    return runner, next(c for c in runner.plan() if c.method.given == ref.given), []


def _trains_longer(cls: type[UnlearningMethod], task: Task) -> bool:
    """Whether the method's default on the task's dataset trains more epochs than the smoke run, and takes ``epochs``."""
    chosen = {**default_hparams(cls), **task_overrides(cls, task)}
    params = inspect.signature(cls.__init__).parameters.values()
    takes = any(p.name == "epochs" or p.kind is p.VAR_KEYWORD for p in params)
    epochs = chosen.get("epochs")
    return takes and isinstance(epochs, int) and epochs > SMOKE_EPOCHS


def _original(runner: Any, cell: Any) -> Any:
    """The tiny task's original model (trained once per store)."""
    from benchmark.run.failure import reason

    try:
        return runner.artefacts.original(cell.task, cell.seed)
    except Exception as err:  # noqa: BLE001 -- the engine's, not the plugin's: bad input to report
        raise BenchmarkError(f"the tiny task's original model failed to train: {reason(err, 'training the original')}") from None


def _run(runner: Any, cell: Any, cls: type[UnlearningMethod]) -> tuple[Any, list[str]]:
    """One run of the cell through the runner (seeded, FiniteLoss, check_model): the method, or
    the problem it met, located in the plugin."""
    from benchmark.run.failure import CellFailure, reason

    stage = SimpleNamespace(name="building")
    try:
        return runner.cells.unlearn(cell, stage)[0], []
    except CellFailure as err:
        at = _member_at(cls, "training_step") if str(err).startswith("non-finite loss") else _defined_at(cls)
        return None, [f"{at}: {err}"]
    except Exception as err:  # noqa: BLE001 -- any error of the plugin is its verdict
        return None, [f"{_raised_at(err, inspect.getsourcefile(cls))}: {reason(err, stage.name)} (while {stage.name})"]


def fingerprint(model: Any) -> dict[str, str]:
    """sha256 of every parameter and buffer of ``model``, by name."""
    import torch

    return {
        name: hashlib.sha256(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()).hexdigest()
        for name, t in model.state_dict().items()
    }


def _differing(a: dict[str, str], b: dict[str, str]) -> list[str]:
    return sorted(n for n in a.keys() | b.keys() if a.get(n) != b.get(n))


def _names(names: list[str], most: int = 3) -> str:
    more = f" and {len(names) - most} more" if len(names) > most else ""
    return ", ".join(names[:most]) + more
