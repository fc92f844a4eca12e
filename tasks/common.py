"""What the built-in real datasets share: one dispatch on what a local copy is (``LocalCopy``),
image sources that decode once into the cache, and the MIU task grid."""

from __future__ import annotations

import math
import re
from abc import abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable, NamedTuple, Sequence

import numpy as np

from benchmark import BenchmarkError, DatasetWriter, decode_into, decoding_pool, is_hub_copy, PresetSource, Report, Task

SPLITS = ("train", "val", "test")


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
    """A source read from ``path`` (a local copy in one of its ``layouts``) or, when it is None,
    from the Hub. Subclasses read the Hub (``from_hub``) and list their local layouts
    (``readers``); ``read`` picks the layout, so every source fails the same way."""

    path: str | None = None
    name: str
    layouts: str
    hub_id: ClassVar[str]

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
            layout = next((layout for layout in self.readers() if layout.probe(root)), None)
            if layout is None:
                raise BenchmarkError(f"{self.name}: {root} is not a copy of the dataset")
            return layout.read(root)
        except BenchmarkError as err:
            raise explained(err, self.layouts) from None

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

    def root(self) -> Path | None:
        """The local copy, checked to exist (None: the Hub)."""
        if self.path is None:
            return None
        root = Path(self.path).expanduser()
        if not root.exists():
            raise BenchmarkError(f"{self.name}: {root} does not exist")
        return root

    def where(self) -> str:
        """What the copy is, for the fingerprint."""
        return str(Path(self.path).expanduser().resolve()) if self.path else f"hub:{self.hub_id}"


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


def miu_grid(source: PresetSource, forget_group: int, fractions: Sequence[float] = (0.1, 0.5, 0.9)) -> list[Task]:
    """MIU's protocol: forget a share r of g*'s TRAIN rows (skew 1.0), and a uniform forget set
    of the same size, for each r."""
    return [Task(source, forget_group, r, "group", skew, default=False) for r in fractions for skew in (1.0, "uniform")]


def seeded_split(n: int, share: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Rows (sorted) of a seeded split of n rows into a ``share`` part and the rest."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    k = int(math.floor(share * n))
    return np.sort(order[:k]), np.sort(order[k:])
