"""What the built-in real datasets share: one dispatch on what a local copy is (``LocalCopy``:
a folder, the Hub, or a copy shipped inside this package), image sources that decode once into
the cache, the MIU task grid, and seeded row samples."""

from __future__ import annotations

import functools
import hashlib
import math
import re
from abc import abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable, NamedTuple, Sequence

import numpy as np

from benchmark import BenchmarkError, DatasetWriter, decode_into, decoding_pool, is_hub_copy, PresetSource, Report, Task

SPLITS = ("train", "val", "test")
HUB = "hub"  # the ``path`` that names the Hugging Face Hub (a folder called hub: ./hub)


@dataclass(frozen=True)
class Records:
    """One split as read from a copy of the dataset: image references (paths, bytes, Hub
    records), and the target and attribute of each."""

    images: Sequence[Any] | Iterable[Any]
    y: np.ndarray
    a: np.ndarray


def explained(err: BenchmarkError, layouts: str) -> BenchmarkError:
    """The error on one line, with the expected layouts named if it does not name them already."""
    text = re.sub(r"\s*\n\s*", " ", str(err)).strip()  # third-party messages may span lines
    return BenchmarkError(text if layouts in text else f"{text}; expected {layouts}")


def holds(*names: str) -> Callable[[Path], bool]:
    """A probe: does the folder hold any of ``names``?"""
    return lambda root: any((root / name).exists() for name in names)


class Layout(NamedTuple):
    """One way a local copy can be laid out: ``probe(root)`` recognises it, ``read(root)`` reads
    its splits as distributed."""

    probe: Callable[[Path], bool]
    read: Callable[[Path], dict[str, Any]]


class LocalCopy:
    """A source read from ``path``: a local copy in one of its ``layouts``, ``"hub"`` for the
    Hub, or None for the copy shipped with the package (``shipped``) where there is one and the
    Hub otherwise. Subclasses read the Hub (``from_hub``) and list their local layouts
    (``readers``); ``read`` picks the layout, so every source fails the same way."""

    path: str | None = None
    name: str
    layouts: str
    hub_id: ClassVar[str]
    #: the folder of a copy shipped inside the package, read through ``readers`` like any folder
    shipped: ClassVar[Path | None] = None
    #: the shipped files that make its content; their bytes name it in ``where``
    shipped_files: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def from_hub(self, root: Path | None) -> dict[str, Any]:
        """The splits as distributed, from the Hub (``root`` None) or a local copy of it."""

    @abstractmethod
    def readers(self) -> tuple[Layout, ...]:
        """The local layouts, in order of preference (``hub_copy`` among them)."""

    def hub_copy(self) -> Layout:
        """A local copy of the Hub dataset, read like the Hub."""
        return Layout(is_hub_copy, self.read_hub)

    def read(self) -> dict[str, Any]:
        """The splits as distributed ({split: rows with ``y`` and ``a``}), read by the first
        layout that recognises the copy; every error names the expected layouts."""
        try:
            root = self.root()
            if root is None:
                return self.read_hub(None)
            layout = self.layout(root)
            if layout is None:
                raise BenchmarkError(f"{self.name}: {root} is not a copy of the dataset")
            return layout.read(root)
        except BenchmarkError as err:
            raise explained(err, self.layouts) from None

    def layout(self, root: Path) -> Layout | None:
        """The first of ``readers`` that recognises the folder, if any."""
        return next((layout for layout in self.readers() if layout.probe(root)), None)

    def read_hub(self, root: Path | None) -> dict[str, Any]:
        """``from_hub``, with the arrow and parquet errors of a damaged copy as a BenchmarkError."""
        try:
            return self.from_hub(root)
        except BenchmarkError:
            raise
        except Exception as err:  # arrow/parquet errors
            raise BenchmarkError(f"{self.name}: cannot read {root or self.hub_id} ({type(err).__name__}: {err})") from None

    def label_table(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """{split as distributed: (y, a)}."""
        return {split: (rows.y, rows.a) for split, rows in self.read().items()}

    def location(self) -> Path | None:
        """The folder to read (the shipped one when ``path`` is None), unchecked; None: the Hub."""
        if self.path == HUB or (not self.path and self.shipped is None):
            return None
        return Path(self.path).expanduser() if self.path else self.shipped

    def root(self) -> Path | None:
        """The local copy, checked to exist (None: the Hub)."""
        root = self.location()
        if root is not None and not root.exists():
            shipped = "" if self.path else " (the copy shipped with the package: a broken install?)"
            raise BenchmarkError(f"{self.name}: {root} does not exist{shipped}")
        return root

    def where(self) -> str:
        """What the copy is, for the fingerprint: the Hub id, the shipped copy by its content
        (the same wherever the package is installed), or the folder's absolute path."""
        root = self.location()
        if root is None:
            return f"hub:{self.hub_id}"
        if not self.path:
            return f"shipped:{self.name}:{content_digest(root, self.shipped_files)}"
        return str(root.resolve())


@functools.cache
def content_digest(folder: Path, files: tuple[str, ...]) -> str:
    """The first 16 hex digits of the sha256 over ``files`` of ``folder`` (each file's name,
    size and bytes, in the order given); a missing file is an error naming it."""
    digest = hashlib.sha256()
    for name in files:
        try:
            data = (folder / name).read_bytes()
        except OSError as err:
            raise BenchmarkError(f"{folder / name} cannot be read ({type(err).__name__}: {err})") from None
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()[:16]


class ImageSource(LocalCopy, PresetSource):
    """An image dataset read from a local ``path`` (a Hub copy or the original release; see
    ``layouts``) or, with no path, from the Hugging Face Hub; decoded once into the cache at
    the preset's resolution (the shorter side resized to size x ``resize_ratio``, centre crop)."""

    path: str | None = None
    num_classes: ClassVar[int]
    num_attributes: ClassVar[int]
    class_names: ClassVar[tuple[str, ...]] = ()
    attribute_names: ClassVar[tuple[str, ...]] = ()
    resize_ratio: ClassVar[float] = 256 / 224
    version: ClassVar[int] = 1

    def records(self) -> dict[str, Records]:
        """TRAIN, VAL and TEST as this benchmark uses them (default: as distributed)."""
        return self.read()

    def identity(self) -> dict[str, Any]:
        return {"version": self.version, "from": self.where(), "size": self.model.image_size, "resize": self.resize()}

    def resize(self) -> int:
        return int(round(self.model.image_size * self.resize_ratio))

    def write(self, out: DatasetWriter, report: Report) -> None:
        size = self.model.image_size
        records = self.records()  # a copy that cannot be read fails before the pool starts
        with decoding_pool() as pool:
            for split, rec in records.items():
                images = out.allocate(split, len(rec.y), (3, size, size))
                self.fill(images, rec.images, f"decoding {self.name} {split}", report, pool)
                out.labels(split, rec.y, rec.a)
        out.finish(
            num_classes=self.num_classes,
            num_attributes=self.num_attributes,
            class_names=self.class_names,
            attribute_names=self.attribute_names,
            augment="resized_crop_flip" if size >= 128 else "crop_flip",
        )

    def fill(self, out: np.ndarray, images: Any, what: str, report: Report, pool: Any) -> None:
        """Decode one split's ``images`` into ``out`` [N, 3, size, size]."""
        try:
            decode_into(out, images, size=self.model.image_size, resize=self.resize(), report=report, what=what, pool=pool)
        except (OSError, ValueError) as err:  # PIL: bytes that are no image
            raise BenchmarkError(f"{what}: an image does not decode ({type(err).__name__}: {err})") from None


def miu_grid(source: PresetSource, forget_group: int, fractions: Sequence[float] = (0.1, 0.5, 0.9),
             default_fraction: float | None = None) -> list[Task]:
    """MIU's protocol: forget a share r of g*'s TRAIN rows (skew 1.0), and a uniform forget set
    of the same size, for each r; the default benchmark runs the two of ``default_fraction``."""
    return [Task(source, forget_group, r, "group", skew, default=r == default_fraction) for r in fractions for skew in (1.0, "uniform")]


def seeded_split(n: int, share: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Rows (sorted) of a seeded split of n rows into a ``share`` part and the rest."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    k = int(math.floor(share * n))
    return np.sort(order[:k]), np.sort(order[k:])


def proportional_sample(groups: np.ndarray, limit: int, seed: int = 0) -> np.ndarray:
    """Rows (sorted) of a seeded sample of ``limit`` rows in which every group keeps its share
    (its quota rounded by largest remainder, so within one row of proportional and summing to
    ``limit``); all rows when ``limit`` is not below their number. The same arguments give the
    same rows."""
    n = len(groups)
    if limit >= n:
        return np.arange(n, dtype=np.int64)
    ids, counts = np.unique(groups, return_counts=True)
    exact = counts * limit / n
    quota = np.floor(exact).astype(np.int64)
    quota[np.argsort(quota - exact, kind="stable")[: limit - int(quota.sum())]] += 1
    rng = np.random.default_rng(seed)
    chosen = [rng.permutation(np.flatnonzero(groups == g))[:k] for g, k in zip(ids, quota)]
    return np.sort(np.concatenate(chosen)).astype(np.int64)
