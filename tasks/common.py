"""What the built-in image datasets share: the records of a split as read from a copy (image
references with their labels), and image sources that decode once into the cache at the model's
resolution. The local-copy dispatch, the MIU grid and the seeded row samples every task suite
may use are in the engine (``benchmark``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Iterable, Sequence

import numpy as np

from benchmark import BenchmarkError, DatasetWriter, decode_into, decoding_pool, LocalCopy, PresetSource, Report


@dataclass(frozen=True)
class Records:
    """One split as read from a copy of the dataset: image references (paths, bytes, Hub
    records), and the target and attribute of each."""

    images: Sequence[Any] | Iterable[Any]
    y: np.ndarray
    a: np.ndarray


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
