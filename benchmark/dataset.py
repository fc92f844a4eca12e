"""Group-annotated data held in memory, and the loaders that feed it to a Trainer.

Images are kept as uint8 tensors at the model's resolution; a loader hands out whole
batches by indexing those tensors (no per-sample Python work, no decoding), and the
conversion to float and the augmentation happen on the device (see ``augment.py``). A
dataset placed on a GPU (``GroupDataset.placed``) is read from a copy there when it fits, else
streamed from the host through pinned memory (``device.py``); the order of the rows is the
same wherever they are read from.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Iterator, NamedTuple

import numpy as np

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from benchmark.placement import fits, gather, indexed, prefetch

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

    @property
    def nbytes(self) -> int:
        return sum(t.element_size() * t.numel() for t in (self.x, self.y, self.a))

    def to(self, device: torch.device) -> Split:
        return Split(self.x.to(device), self.y.to(device), self.a.to(device))


class Feed(NamedTuple):
    """What loaders of one split read: the split and its group ids (on the device when
    resident there), and the device batches stream to from the host (None: no streaming)."""

    split: Split
    groups: Tensor
    stream_to: torch.device | None


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
    device: str = ""  # the device loaders feed ('': the tensors' own); set by ``placed``
    resident: bool | None = None  # copy splits to a GPU ``device``: always, never, or when they fit (None)
    _groups: dict[str, Tensor] = field(default_factory=dict, repr=False, compare=False)
    _placed: dict[str, Feed] = field(default_factory=dict, repr=False, compare=False)

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

    def placed(self, device: torch.device | str, resident: bool | None = None) -> GroupDataset:
        """This dataset with its loaders feeding ``device``: on a GPU, splits are copied there when
        read first and they fit (``resident`` True: always; False: never, they stream); on the
        CPU, ``resident`` False streams batches through a background thread, else nothing
        changes. A new placement has no device copies yet (``feed`` makes them)."""
        device = torch.device(device)
        if device.type == "cpu" and resident is not False:
            return self
        return dataclasses.replace(self, device=str(device), resident=resident, _placed={})

    def __getstate__(self) -> dict:
        """Pickled (into another process) without its device copies: each process makes its own."""
        return {**self.__dict__, "_placed": {}}

    def feed(self, name: str) -> Feed:
        """Where loaders read split ``name``: on a GPU ``device``, a copy there (made once, when
        ``resident`` allows it) or the host tensors streamed to it; else the host tensors (streamed
        through a reading thread when ``resident`` is False)."""
        if name not in self._placed:
            self._placed[name] = self._feed(name)
        return self._placed[name]

    def _feed(self, name: str) -> Feed:
        split, groups = self.split(name), self.groups(name)
        device = indexed(torch.device(self.device)) if self.device else None
        if device is None or (device.type == "cpu" and self.resident is not False):
            return Feed(split, groups, None)
        keep = self.resident if self.resident is not None else fits(split.nbytes + groups.nbytes, device)
        if keep:  # on a GPU (on the CPU only a ``resident`` False dataset gets here)
            return Feed(split.to(device), groups.to(device), None)
        return Feed(split, groups, device)


class _Rows(Dataset):
    """Rows ``indices`` of split ``name``; fetches a whole batch with one indexing operation per
    tensor, from where the dataset feeds the split (decided when the first batch is read)."""

    def __init__(self, dataset: GroupDataset, name: str, indices: Tensor) -> None:
        self.dataset, self.name, self.indices = dataset, name, indices
        self._read: tuple[Feed, Tensor] | None = None

    def __len__(self) -> int:
        return len(self.indices)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_read": None}

    def read(self) -> tuple[Feed, Tensor]:
        """The split's feed, and ``indices`` on its device (moved once)."""
        if self._read is None:
            feed = self.dataset.feed(self.name)
            self._read = feed, self.indices.to(feed.split.x.device)
        return self._read

    def __getitem__(self, i: int) -> Batch:
        return self.__getitems__([i])

    def __getitems__(self, positions: list[int] | Tensor) -> Batch:
        feed, indices = self.read()
        idx = indices[torch.as_tensor(positions, dtype=torch.long, device=indices.device)]
        pin = feed.stream_to is not None and feed.stream_to.type == "cuda"
        s = feed.split
        return Batch(*(gather(t, idx, pin) for t in (s.x, s.y, s.a, feed.groups)), idx.pin_memory() if pin else idx)


class BatchOrder(Sampler[Tensor]):
    """The positions of every batch of an epoch, one tensor per batch: rows shuffled, drawn in
    proportion to ``weights`` (with replacement), or in order. The draws are those of torch's
    RandomSampler or WeightedRandomSampler under a BatchSampler, from a generator seeded with
    ``seed`` (the same order, and the same stream of the generator from epoch to epoch), made
    on the host and moved to ``device`` once per epoch."""

    def __init__(self, n: int, batch_size: int, *, shuffle: bool, seed: int, weights: Tensor | None, drop_last: bool) -> None:
        self.n, self.batch_size, self.shuffle, self.drop_last = n, batch_size, shuffle, drop_last
        self.weights = None if weights is None else weights.detach().cpu().double()
        self.generator = torch.Generator().manual_seed(seed)
        self.device = torch.device("cpu")

    def __len__(self) -> int:
        return self.n // self.batch_size if self.drop_last else -(-self.n // self.batch_size)

    def __iter__(self) -> Iterator[Tensor]:
        n, size, g = self.n, self.batch_size, self.generator
        if self.weights is not None:
            order = torch.multinomial(self.weights, n, True, generator=g)
        else:
            order = torch.randperm(n, generator=g) if self.shuffle else torch.arange(n)
        order = order.to(self.device)
        for start in range(0, n - n % size, size):
            yield order[start : start + size]
        if self.shuffle and self.weights is None:
            torch.randperm(n, generator=g)  # RandomSampler draws one more permutation once it runs out
        if n % size and not self.drop_last:
            yield order[n - n % size :]


class RowLoader(DataLoader):
    """A DataLoader of whole batches (``_Rows`` by ``BatchOrder``). Reading it first places the
    split (``GroupDataset.feed``): positions go to the device the rows are on, and batches that
    stream from the host are moved to theirs by ``prefetch``, one ahead of the step."""

    def __iter__(self) -> Iterator[Batch]:
        feed, indices = self.dataset.read()
        self.batch_sampler.device = indices.device
        batches = super().__iter__()
        return batches if feed.stream_to is None else prefetch(batches, feed.stream_to)


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
    """A loader over ``indices`` of ``split`` (all rows when None), read where the dataset feeds
    the split from (``GroupDataset.feed``), in the same order wherever that is.

    ``weights`` (one per row of ``indices``) draws |indices| rows with replacement in
    proportion to them (REWEIGHT); otherwise rows are shuffled or kept in order. A
    shuffled loader drops a last batch of a single row, on which BatchNorm cannot train.
    """
    n = len(dataset.split(split)) if indices is None else len(indices)
    if n == 0:
        raise ValueError(f"no rows to load from {dataset.name}/{split}")
    rows = _Rows(dataset, split, torch.arange(n) if indices is None else indices.long())
    drop_last = (shuffle or weights is not None) and n % batch_size == 1 and n > 1
    order = BatchOrder(n, batch_size, shuffle=shuffle, seed=seed, weights=weights, drop_last=drop_last)
    return RowLoader(rows, batch_sampler=order, collate_fn=_keep_batch)
