"""What the built-in real datasets share: image sources that decode once into the cache,
and the MIU task grid."""

from __future__ import annotations

import math
from abc import abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Iterable, Sequence

import numpy as np

from benchmark import BenchmarkError, DatasetWriter, decode_into, decoding_pool, PresetSource, Report, Task

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Records:
    """One split as read from a copy of the dataset: image references (paths, bytes, Hub
    records), and the target and attribute of each."""

    images: Sequence[Any] | Iterable[Any]
    y: np.ndarray
    a: np.ndarray


def explained(err: BenchmarkError, layouts: str) -> BenchmarkError:
    """The error, with the expected layouts named if it does not name them already."""
    text = str(err)
    return err if layouts in text else BenchmarkError(f"{text}; expected {layouts}")


class LocalCopy:
    """A source read from ``path`` (a local copy) or, when it is None, from the Hub."""

    path: str | None = None
    name: str
    layouts: str

    def root(self) -> Path | None:
        """The local copy, checked to exist (None: the Hub)."""
        if self.path is None:
            return None
        root = Path(self.path).expanduser()
        if not root.exists():
            raise BenchmarkError(f"{self.name}: {root} does not exist; expected {self.layouts}")
        return root

    def where(self) -> str:
        """What the copy is, for the fingerprint."""
        return str(Path(self.path).expanduser().resolve()) if self.path else f"hub:{self.hub_id}"


class ImageSource(LocalCopy, PresetSource):
    """An image dataset read from a local ``path`` (a Hub copy or the original release; see
    ``layouts``) or, with no path, from the Hugging Face Hub; decoded once into the cache at
    the preset's resolution (the shorter side resized to size x ``resize_ratio``, centre crop)."""

    path: str | None = None
    hub_id: ClassVar[str]
    num_classes: ClassVar[int]
    num_attributes: ClassVar[int]
    class_names: ClassVar[tuple[str, ...]] = ()
    attribute_names: ClassVar[tuple[str, ...]] = ()
    resize_ratio: ClassVar[float] = 256 / 224
    version: ClassVar[int] = 1

    @abstractmethod
    def records(self) -> dict[str, Records]:
        """TRAIN, VAL and TEST as this benchmark uses them."""

    def distributed(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Labels of the splits as the dataset is distributed (default: the benchmark's)."""
        return {s: (r.y, r.a) for s, r in self.records().items()}

    def label_table(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        return self.distributed()

    def identity(self) -> dict[str, Any]:
        return {"version": self.version, "from": self.where(), "size": self.model.image_size, "resize": self.resize()}

    def resize(self) -> int:
        return int(round(self.model.image_size * self.resize_ratio))

    def write(self, out: DatasetWriter, report: Report) -> None:
        size = self.model.image_size
        with decoding_pool() as pool:
            for split, rec in self.records().items():
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

    def not_a_copy(self, root: Path) -> BenchmarkError:
        return BenchmarkError(f"{self.name}: {root} is not a copy of the dataset; expected {self.layouts}")


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
