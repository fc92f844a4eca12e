"""The method contract: an unlearning method is a LightningModule.

A method receives the model to unlearn (a copy of the original), a frozen copy of the
original and its task's data; it declares its loaders (``train_dataloader``), its loss
(``training_step``) and its budget (``trainer_arguments``). Methods that do not train do
their work in ``unlearn`` and ask for zero epochs. Hyper-parameters are the constructor's
keyword arguments; ``dataset_overrides`` keeps per-dataset (and per forget ratio) defaults
beside the method.

Writing one::

    class MyMethod(UnlearningMethod):
        description = "fine-tune on the retain set with label smoothing"
        paper = "Me et al., 2026"

        def __init__(self, model, original, data, *, smoothing: float = 0.1, **common):
            super().__init__(model, original, data, **common)

        def train_dataloader(self):
            return self.loader("retain")

        def training_step(self, batch, batch_idx):
            return F.cross_entropy(self.model(batch.x), batch.y,
                                   label_smoothing=self.hparams.smoothing)
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Iterator, Mapping

from lightning.pytorch.utilities import CombinedLoader
from torch.utils.data import DataLoader

from benchmark.augment import to_unit_float
from benchmark.dataset import Batch, Passes
from benchmark.errors import BenchmarkError
from benchmark.model import Classifier
from benchmark.settings import Range, check_settings, field_rules, field_types
from benchmark.task import Task, TaskData
from benchmark.training import OptimiserSettings, Recipe, TrainingModule

#: the rules of the common hyper-parameters (``OptimiserSettings``': a method may train 0 epochs)
HPARAM_RULES = field_rules(OptimiserSettings)

#: what ``unlearn-bench tune`` searches for every method: the common optimiser settings, each
#: over its declared range (the learning rate over SalUn's grid, REFERENCE §8; ours otherwise)
COMMON_SEARCH = {
    "lr": Range(1e-4, 1e-1),
    "epochs": Range(1, 10),
    "weight_decay": Range(1e-6, 1e-2),
    "batch_size": Range(32, 256),
}


@dataclass(frozen=True)
class Search:
    """A method's one declaration about its search space (``UnlearningMethod.search``): ranges
    for its own hyper-parameters, a narrower range for a common one, or None for a common one
    it does not search (SSD takes no optimiser step), and the reason. A range for a common
    hyper-parameter must lie inside ``COMMON_SEARCH``'s: a method may narrow its space, never
    widen it; every method gets the same number of trials."""

    ranges: Mapping[str, Range | None] = field(default_factory=dict)
    reason: str = ""


class UnlearningMethod(TrainingModule):
    """Base class of every unlearning method (built-in or plugin).

    Common hyper-parameters: the ``OptimiserSettings`` (``epochs``, ``lr``, ``batch_size``,
    ``momentum``, ``weight_decay``, ``warmup_epochs``, ``schedule``: SGD with a warm-up/cosine
    schedule unless ``configure_optimizers`` is overridden), with its defaults unless the method
    names one among its own keyword arguments, and ``reweight`` (REWEIGHT on the retain loader,
    the ``+rw`` variant).
    """

    #: the name a method loaded from a file goes by (its leaderboard rows, its ``hparams`` key);
    #: empty: its class name. A registered method goes by its entry point's name.
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    #: its result is the reference (gold) that the other methods are scored against
    is_gold: ClassVar[bool] = False
    #: its common hyper-parameters are the task's ``Recipe`` (``select_best_on_val`` too), each
    #: None by default: the recipe's value (the gold retrain trains as the original did)
    trains_with_recipe: ClassVar[bool] = False
    #: per-dataset defaults: {dataset name, or "<dataset> r=<r>" for one forget ratio: {hyper-parameter: value}}
    dataset_overrides: ClassVar[dict[str, dict[str, Any]]] = {}
    #: whether it trains on the retain set (only then does REWEIGHT, ``+rw``, mean anything)
    reads_retain: ClassVar[bool] = True
    #: whether the default benchmark also runs its ``+rw`` variant
    rw_in_default: ClassVar[bool] = False
    #: whether the short default benchmark (``unlearn-bench run`` with no options) runs it; the
    #: full board (configs/board.yaml) names every method
    in_default: ClassVar[bool] = True
    #: how ``unlearn-bench tune`` searches it: the common space (``COMMON_SEARCH``) and any
    #: ranges of its own, narrowed or removed with a reason (``Search``)
    search: ClassVar[Search] = Search()

    def __init__(
        self, model: Classifier, original: Classifier, data: TaskData, *, reweight: bool = False, **common: Any
    ) -> None:
        """``common``: common hyper-parameters given; the others (and those given as None) take
        their defaults, ``OptimiserSettings``' or the task's recipe's (``trains_with_recipe``)."""
        defaults = data.recipe if self.trains_with_recipe else OptimiserSettings()
        given = {k: v for k, v in common.items() if v is not None}
        super().__init__(model, data.dataset, **{**dataclasses.asdict(defaults), **given})
        self.original = original
        self.data = data

    def train(self, mode: bool = True) -> UnlearningMethod:
        """Train mode, except for modules whose parameters are all frozen (the original, a
        teacher, frozen blocks): they stay in eval mode, so their BatchNorm statistics never move."""
        super().train(mode)
        for module in self.modules():
            params = list(module.parameters(recurse=False))
            if params and not any(p.requires_grad for p in params):
                module.eval()
        return self

    def batches(self, part: str, batch_size: int | None = None, shuffle: bool = False) -> Iterator[Batch]:
        """Batches of ``part`` on this module's device, x as float in [0, 1], no augmentation:
        for work done outside the Trainer (``unlearn`` hooks, estimators)."""
        for batch in self.loader(part, batch_size, shuffle=shuffle):
            yield self.on_device(batch)

    def on_device(self, batch: Batch) -> Batch:
        """A loader's raw batch on this module's device, x as float in [0, 1], not augmented."""
        batch = Batch(*(t.to(self.device, non_blocking=True) for t in batch))
        return batch._replace(x=to_unit_float(batch.x))

    def loader(self, part: str, batch_size: int | None = None, shuffle: bool = True) -> DataLoader:
        """A loader over ``part`` ('retain', 'forget', 'train', ...); the retain part is
        REWEIGHTed when the method runs as its ``+rw`` variant."""
        return self.data.loader(
            part, batch_size or self.hparams.batch_size, shuffle=shuffle, reweight=bool(self.hparams.reweight)
        )

    def forget_and_retain(self, steps: int | None = None) -> CombinedLoader:
        """Pairs of batches {"forget", "retain"}: retain batches of ``batch_size`` and forget
        batches sized so that ``steps`` steps (default: one epoch of R) cover F once, so F and
        R are mixed in proportion, as one stream over F ∪ R would mix them."""
        retain = self.loader("retain")
        steps = steps or math.ceil(len(self.data.retain_idx) / self.hparams.batch_size)
        forget = self.loader("forget", batch_size=math.ceil(len(self.data.forget_idx) / max(1, steps)))
        return CombinedLoader({"forget": forget, "retain": retain}, "max_size_cycle")

    def forget_then_retain(self, forget: bool = True, forget_batch_size: int | None = None) -> Passes:
        """This epoch's stream of (part, batch) pairs, part "forget" or "retain": a pass over F
        (when ``forget``), then one over R. A method whose stream changes between epochs also
        asks for ``reload_dataloaders_every_n_epochs=1`` in ``trainer_arguments``."""
        passes = {"forget": self.loader("forget", forget_batch_size)} if forget else {}
        return Passes({**passes, "retain": self.loader("retain")})

    def unlearn(self) -> None:
        """Work done before (or instead of) training; the default does nothing."""

    def trains(self) -> bool:
        """Whether the Trainer has anything to run for this method."""
        args = self.trainer_arguments()
        return int(args.get("max_epochs") or 0) > 0 or int(args.get("max_steps") or -1) > 0


def _hparam_parameters(cls: type[UnlearningMethod]) -> dict[str, tuple[inspect.Parameter, Callable]]:
    """Parameters with defaults along the class's ``__init__`` chain (subclass wins), each with
    the ``__init__`` that declares it."""
    found: dict[str, tuple[inspect.Parameter, Callable]] = {}
    for klass in reversed(cls.__mro__):
        init = klass.__dict__.get("__init__")
        if init is None or not issubclass(klass, UnlearningMethod):
            continue
        for p in inspect.signature(init).parameters.values():
            if p.default is not inspect.Parameter.empty:
                found[p.name] = (p, init)
    return found


def _common(cls: type[UnlearningMethod]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The common hyper-parameters' defaults and types: ``OptimiserSettings``', or for a method
    that trains with the task's recipe the ``Recipe``'s fields, each None (the recipe's) by default."""
    if cls.trains_with_recipe:
        types = field_types(Recipe)
        return dict.fromkeys(types), {name: hint | None for name, hint in types.items()}
    return dataclasses.asdict(OptimiserSettings()), field_types(OptimiserSettings)


def default_hparams(cls: type[UnlearningMethod]) -> dict[str, Any]:
    """The common hyper-parameters' defaults, then the keyword arguments with defaults along the
    class's ``__init__`` chain (subclass wins)."""
    return {**_common(cls)[0], **{name: p.default for name, (p, _) in _hparam_parameters(cls).items()}}


def hparam_types(cls: type[UnlearningMethod]) -> dict[str, Any]:
    """The type each hyper-parameter takes: a common one's declared type; another's, its
    default's; for a None default, its annotation (``int | None``), or anything when it has
    none that resolves."""
    return {**_common(cls)[1], **{name: _hparam_type(p, init) for name, (p, init) in _hparam_parameters(cls).items()}}


def _hparam_type(p: inspect.Parameter, init: Callable) -> Any:
    if p.default is not None:
        return type(p.default)
    try:
        return typing.get_type_hints(init).get(p.name, Any)
    except Exception:  # an annotation naming what the plugin's module does not define
        return Any


def task_overrides(cls: type[UnlearningMethod], task: Task) -> dict[str, Any]:
    """The method's ``dataset_overrides`` for ``task``: the entry of its dataset, then the entry
    of its dataset and forget ratio r ("<dataset> r=<r>", e.g. "celeba r=0.9") when the forget
    size is a fraction r of g*'s rows."""
    name = task.source.name
    found = dict(cls.dataset_overrides.get(name, {}))
    if task.fraction_of == "group" and isinstance(task.forget_size, float):
        found.update(cls.dataset_overrides.get(f"{name} r={task.forget_size:g}", {}))
    return found


def reweights(cls: type[UnlearningMethod], task: Task, overrides: dict[str, Any]) -> bool:
    """Whether the method runs with REWEIGHT on this task (its defaults, then overrides)."""
    chosen = {**default_hparams(cls), **task_overrides(cls, task), **overrides}
    return bool(chosen.get("reweight", False))


def resolve_hparams(
    cls: type[UnlearningMethod], task: Task, overrides: dict[str, Any], name: str, *, dataset: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The settings that differ from the method's defaults, each level overriding the one
    before: its ``dataset_overrides`` for the task, what the task's dataset sets for it
    (``dataset``: its source's ``method_settings``), then ``overrides`` (tuned, then the user's)."""
    chosen = {**task_overrides(cls, task), **(dataset or {}), **overrides}
    _check_known(cls, chosen, name)
    return chosen


def check_hparams(cls: type[UnlearningMethod], values: dict[str, Any], name: str, where: str = "") -> None:
    """Hyper-parameters ``values`` for method ``name``: known names, each of its type
    (``hparam_types``; an int for a float), and in the range of the common ones. ``where``: the
    settings they come from, which each fault names (default: the user's ``hparams.<name>``)."""
    _check_known(cls, values, name, f"{where}.{name}: " if where else "")
    check_settings(hparam_types(cls), values, f"{where or 'hparams'}.{name}", HPARAM_RULES)


def _check_known(cls: type[UnlearningMethod], values: dict[str, Any], name: str, where: str = "") -> None:
    defaults = default_hparams(cls)
    unknown = sorted(set(values) - set(defaults))
    if unknown:
        raise BenchmarkError(
            f"{where}method {name} has no hyper-parameter {', '.join(map(repr, unknown))}; "
            f"it takes: {', '.join(sorted(defaults))}"
        )
