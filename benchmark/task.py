"""The task contract: a group-annotated dataset and a forget set of a given size and skew."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from benchmark.dataset import GroupDataset, make_loader
from benchmark.errors import BenchmarkError
from benchmark.hashing import stable_hash
from benchmark.model import Classifier
from benchmark.source import DatasetSource
from benchmark.splits import Skew, check_skew, forget_split
from benchmark.training import Recipe

__all__ = ["DatasetSource", "Task", "TaskData", "PARTS"]


@dataclass(frozen=True)
class Task:
    """Dataset, forget group g*, forget size and skew.

    ``forget_size``: an int is a count; a float in (0, 1] is a fraction of g*'s TRAIN rows
    (``fraction_of='group'``, MIU's r) or of all TRAIN rows (``fraction_of='train'``).
    ``skew``: the share of the forget set drawn from g* (REFERENCE §3), or 'uniform'.
    """

    source: DatasetSource
    forget_group: int
    forget_size: int | float = 0.9
    fraction_of: str = "group"
    skew: Skew = 1.0
    default: bool = True  # part of the default benchmark

    def __post_init__(self) -> None:
        object.__setattr__(self, "skew", check_skew(self.skew))
        if self.fraction_of not in ("group", "train"):
            raise BenchmarkError(f"fraction_of must be 'group' or 'train', not {self.fraction_of!r}")
        size = self.forget_size
        if isinstance(size, bool) or not isinstance(size, (int, float)) or size <= 0:
            raise BenchmarkError(f"forget_size must be a positive count or a fraction, not {size!r}")
        if isinstance(size, float) and size > 1:
            raise BenchmarkError(f"a fractional forget_size must be in (0, 1], not {size}")
        if isinstance(self.forget_group, bool) or not isinstance(self.forget_group, int) or self.forget_group < 0:
            raise BenchmarkError(f"forget_group must be a group id >= 0, not {self.forget_group!r}")

    @property
    def id(self) -> str:
        if isinstance(self.forget_size, int):
            size = f"n{self.forget_size}"
        else:
            size = f"{'r' if self.fraction_of == 'group' else 'f'}{self.forget_size:g}"
        skew = "uniform" if self.skew == "uniform" else f"skew{self.skew}"
        return f"{self.source.name}/g{self.forget_group}-{size}-{skew}"

    def with_overrides(self, overrides: dict[str, str]) -> Task:
        """This task with fields replaced from ``key=value`` strings (a CLI or config override)."""
        known = {"forget_group": int, "forget_size": _parse_size, "fraction_of": str, "skew": str}
        changes: dict[str, Any] = {}
        for key, value in overrides.items():
            if key not in known:
                raise BenchmarkError(f"a task has no setting {key!r}; settable: {', '.join(known)}")
            try:
                changes[key] = known[key](value) if isinstance(value, str) else value
            except ValueError:
                raise BenchmarkError(f"bad value for task setting {key}: {value!r}") from None
        return dataclasses.replace(self, **changes)

    def forget_count(self, dataset: GroupDataset) -> int:
        if self.forget_group >= dataset.num_groups:
            raise BenchmarkError(
                f"task {self.id}: forget group {self.forget_group} does not exist; "
                f"{dataset.name} has groups 0..{dataset.num_groups - 1}"
            )
        if isinstance(self.forget_size, int):
            return self.forget_size
        base = dataset.group_counts("train")[self.forget_group] if self.fraction_of == "group" else len(dataset.train)
        return max(1, int(round(self.forget_size * base)))

    def split(self, dataset: GroupDataset, seed: int) -> tuple[Tensor, Tensor]:
        """(forget, retain) rows of TRAIN, deterministic in (task, seed)."""
        key = int(stable_hash(self.id), 16) % 2**32
        return forget_split(dataset.groups("train"), self.forget_group, self.forget_count(dataset), self.skew, [seed, key])

    def describe(self, dataset: GroupDataset) -> dict[str, Any]:
        """The task as the result files and the leaderboard record it."""
        spec = (
            f"{self.forget_size} rows"
            if isinstance(self.forget_size, int)
            else f"{self.forget_size:g} of {'group ' + str(self.forget_group) if self.fraction_of == 'group' else 'TRAIN'}"
        )
        title = self.source.title  # recorded only when it says more than the name: other keys stay as they were
        return {
            "id": self.id,
            "dataset": self.source.name,
            **({"dataset_title": title} if title != self.source.name else {}),
            "dataset_fingerprint": dataset.fingerprint,
            "forget_group": self.forget_group,
            "forget_group_name": dataset.group_name(self.forget_group),
            "forget_size": self.forget_count(dataset),
            "forget_size_spec": spec,
            "skew": self.skew,
            "num_groups": dataset.num_groups,
            "group_names": [dataset.group_name(g) for g in range(dataset.num_groups)],
        }


def stable_seed(*parts: Any) -> int:
    return int(stable_hash(parts), 16) % 2**63


def _parse_size(text: str) -> int | float:
    return float(text) if any(c in text for c in ".eE") else int(text)


PARTS = ("retain", "forget", "train", "val", "test")


@dataclass
class TaskData:
    """What a method sees of its task: the dataset, the forget/retain rows of TRAIN, the
    training recipe of the original model, and loaders over any part."""

    dataset: GroupDataset
    task: Task
    forget_idx: Tensor
    retain_idx: Tensor
    seed: int
    recipe: Recipe
    initial_model: Callable[[], Classifier]
    _draws: int = 0  # loaders made so far: each gets its own shuffling seed, in a fixed order

    @property
    def forget_group(self) -> int:
        return self.task.forget_group

    @property
    def num_classes(self) -> int:
        return self.dataset.num_classes

    @property
    def num_groups(self) -> int:
        return self.dataset.num_groups

    def indices(self, part: str) -> Tensor | None:
        """Rows of the part's split (None: all of it)."""
        return {"retain": self.retain_idx, "forget": self.forget_idx}.get(part)

    def retain_weights(self) -> Tensor:
        """REWEIGHT (seed 000): w_g = N_train(g) / N_retain(g) for each retain row of group g,
        so a weighted draw of |R| rows has TRAIN's expected group mix."""
        groups = self.dataset.groups("train")
        n_train = torch.bincount(groups, minlength=self.num_groups).double()
        n_retain = torch.bincount(groups[self.retain_idx], minlength=self.num_groups).double()
        w = n_train / n_retain.clamp(min=1)
        return w[groups[self.retain_idx]]

    def loader(self, part: str, batch_size: int, *, shuffle: bool = True, reweight: bool = False) -> DataLoader:
        """Batches of ``part`` (one of PARTS); ``reweight`` applies REWEIGHT to the retain part."""
        if part not in PARTS:
            raise ValueError(f"unknown part {part!r}; expected one of {PARTS}")
        split = part if part in ("val", "test") else "train"
        weights = self.retain_weights() if reweight and part == "retain" else None
        self._draws += 1
        return make_loader(
            self.dataset,
            split,
            self.indices(part),
            batch_size=batch_size,
            shuffle=shuffle,
            seed=stable_seed(self.seed, part, self._draws),
            weights=weights,
        )
