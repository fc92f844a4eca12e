"""Group-annotated data held in memory, and the loaders that feed it to a Trainer.

Images are kept as uint8 tensors at the model's resolution; a loader hands out whole
batches by indexing those tensors (no per-sample Python work, no decoding), and the
conversion to float and the augmentation happen on the device (see ``augment.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, RandomSampler, SequentialSampler, WeightedRandomSampler

SPLITS = ("train", "val", "test")


class Batch(NamedTuple):
    """One batch: inputs, target, attribute, group id and the row index in its split."""

    x: Tensor
    y: Tensor
    a: Tensor
    g: Tensor
    index: Tensor


@dataclass(frozen=True)
class Split:
    """One split: ``x`` is uint8 [N, C, H, W] for images (or float [N, D] for tables)."""

    x: Tensor
    y: Tensor
    a: Tensor

    def __post_init__(self) -> None:
        n = len(self.x)
        if not (len(self.y) == len(self.a) == n):
            raise ValueError(f"x, y and a differ in length: {n}, {len(self.y)}, {len(self.a)}")

    def __len__(self) -> int:
        return len(self.x)


@dataclass(frozen=True)
class GroupDataset:
    """TRAIN/VAL/TEST with a target and a group attribute; group id g = y * |A| + a."""

    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    num_attributes: int
    fingerprint: str
    class_names: tuple[str, ...] = ()
    attribute_names: tuple[str, ...] = ()
    augment: str = "crop_flip"  # what training batches get: "crop_flip" or "none"
    _groups: dict[str, Tensor] = field(default_factory=dict, repr=False, compare=False)

    @property
    def num_groups(self) -> int:
        return self.num_classes * self.num_attributes

    def split(self, name: str) -> Split:
        if name not in SPLITS:
            raise KeyError(f"unknown split {name!r}; expected one of {SPLITS}")
        return getattr(self, name)

    def groups(self, name: str) -> Tensor:
        if name not in self._groups:
            s = self.split(name)
            self._groups[name] = s.y * self.num_attributes + s.a
        return self._groups[name]

    def group_name(self, g: int) -> str:
        y, a = divmod(g, self.num_attributes)
        ys = self.class_names[y] if self.class_names else f"y={y}"
        as_ = self.attribute_names[a] if self.attribute_names else f"a={a}"
        return f"{ys}, {as_}"

    def group_counts(self, name: str) -> list[int]:
        return torch.bincount(self.groups(name), minlength=self.num_groups).tolist()


class _Rows(Dataset):
    """Rows ``indices`` of one split; fetches a whole batch with one indexing operation."""

    def __init__(self, split: Split, groups: Tensor, indices: Tensor) -> None:
        self.split, self.groups, self.indices = split, groups, indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> Batch:
        return self.__getitems__([i])

    def __getitems__(self, positions: list[int]) -> Batch:
        idx = self.indices[torch.as_tensor(positions, dtype=torch.long)]
        s = self.split
        return Batch(s.x[idx], s.y[idx], s.a[idx], self.groups[idx], idx)


class Passes:
    """Full passes over several loaders, one after the other, as one epoch: yields
    (name, batch) pairs. Lightning's fit loop has no sequential mode of its own."""

    def __init__(self, loaders: dict[str, DataLoader]) -> None:
        self.loaders = loaders

    def __iter__(self):
        for name, loader in self.loaders.items():
            for batch in loader:
                yield name, batch

    def __len__(self) -> int:
        return sum(len(loader) for loader in self.loaders.values())


def stratified_rows(groups: np.ndarray, limit: int, seed: int = 0) -> np.ndarray:
    """Up to ``limit`` row indices (sorted) with as equal a share per group as the groups allow;
    the same arguments give the same rows."""
    rng = np.random.default_rng(seed)
    shuffled = [rng.permutation(np.flatnonzero(groups == g)) for g in np.unique(groups)]
    quota = limit // max(1, len(shuffled))
    empty = [np.zeros(0, dtype=np.int64)]
    chosen = np.concatenate([rows[:quota] for rows in shuffled] + empty)
    rest = rng.permutation(np.concatenate([rows[quota:] for rows in shuffled] + empty))
    return np.sort(np.concatenate([chosen, rest[: max(0, limit - len(chosen))]]).astype(np.int64))


def _keep_batch(batch: Batch) -> Batch:
    return batch


def make_loader(
    dataset: GroupDataset,
    split: str,
    indices: Tensor | None = None,
    *,
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
    weights: Tensor | None = None,
) -> DataLoader:
    """A DataLoader over ``indices`` of ``split`` (all rows when None).

    ``weights`` (one per row of ``indices``) draws |indices| rows with replacement in
    proportion to them (REWEIGHT); otherwise rows are shuffled or kept in order. A
    shuffled loader drops a last batch of a single row, on which BatchNorm cannot train.
    """
    s = dataset.split(split)
    if indices is None:
        indices = torch.arange(len(s))
    rows = _Rows(s, dataset.groups(split), indices.long())
    if len(rows) == 0:
        raise ValueError(f"no rows to load from {dataset.name}/{split}")
    generator = torch.Generator().manual_seed(seed)
    if weights is not None:
        sampler = WeightedRandomSampler(weights.double(), len(rows), replacement=True, generator=generator)
    elif shuffle:
        sampler = RandomSampler(rows, generator=generator)
    else:
        sampler = SequentialSampler(rows)
    drop_last = (shuffle or weights is not None) and len(rows) % batch_size == 1 and len(rows) > 1
    return DataLoader(rows, batch_size=batch_size, sampler=sampler, collate_fn=_keep_batch, drop_last=drop_last)
