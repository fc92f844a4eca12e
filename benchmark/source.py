"""Where a dataset comes from, and its decoded cache.

A source writes its splits once into a cache directory named by its fingerprint (the hash of
everything that decides the content): per split ``<split>.x.npy`` (uint8 images at the
model's resolution, or float32 table rows), ``<split>.y.npy``, ``<split>.a.npy``, and
``meta.json``. Later runs memory-map it, so no epoch decodes an image and a dataset larger
than memory still trains. Sources stream into the cache (``DatasetWriter.allocate``) or,
when small, build in memory and ``put`` whole splits.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import warnings
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np
import torch

from benchmark.augment import AUGMENTATIONS
from benchmark.dataset import SPLITS, GroupDataset, Split
from benchmark.errors import BenchmarkError
from benchmark.hashing import stable_hash
from benchmark.model import ModelSpec
from benchmark.training import Recipe

DEFAULT_EPS = 8 / 255  # L-inf attack radius of images in [0, 1]: REFERENCE §5, torchattacks' default

Report = Callable[[str, int, int], None]


def _quiet(what: str, done: int, total: int) -> None:
    pass


class DatasetWriter:
    """Fills a cache directory split by split; ``finish`` marks it complete."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def allocate(self, split: str, n: int, item_shape: tuple[int, ...], dtype: Any = np.uint8) -> np.ndarray:
        """A writable, disk-backed array [n, *item_shape] for the split's inputs."""
        return np.lib.format.open_memmap(self.directory / f"{split}.x.npy", mode="w+", dtype=dtype, shape=(n, *item_shape))

    def labels(self, split: str, y: np.ndarray, a: np.ndarray) -> None:
        np.save(self.directory / f"{split}.y.npy", np.asarray(y, dtype=np.int64))
        np.save(self.directory / f"{split}.a.npy", np.asarray(a, dtype=np.int64))

    def put(self, split: str, x: np.ndarray, y: np.ndarray, a: np.ndarray) -> None:
        self.allocate(split, len(x), x.shape[1:], x.dtype)[:] = x
        self.labels(split, y, a)

    def finish(self, *, num_classes: int, num_attributes: int, class_names=(), attribute_names=(), augment: str = "crop_flip") -> None:
        """Mark the cache complete: C classes and |A| attribute values (C * |A| groups), their
        names, and the augmentation of training batches, one of ``AUGMENTATIONS``: "crop_flip"
        (small images), "resized_crop_flip" (128 px and up) or "none" (tables)."""
        if augment not in AUGMENTATIONS:
            raise BenchmarkError(f"DatasetWriter.finish: augment must be one of {', '.join(sorted(AUGMENTATIONS))}, not {augment!r}")
        meta = dict(num_classes=num_classes, num_attributes=num_attributes, class_names=list(class_names),
                    attribute_names=list(attribute_names), augment=augment)
        (self.directory / "meta.json").write_text(json.dumps(meta, indent=1))


def read_dataset(directory: Path, name: str, fingerprint: str) -> GroupDataset:
    """The dataset in a complete cache directory, inputs memory-mapped (read-only)."""
    meta = json.loads((directory / "meta.json").read_text())

    def array(file: str, mmap: bool = False) -> torch.Tensor:
        with warnings.catch_warnings():  # memory-mapped inputs are read-only, and only ever read
            warnings.simplefilter("ignore", UserWarning)
            return torch.from_numpy(np.load(directory / file, mmap_mode="r" if mmap else None))

    splits = {s: Split(array(f"{s}.x.npy", mmap=True), array(f"{s}.y.npy"), array(f"{s}.a.npy")) for s in SPLITS}
    return GroupDataset(
        name=name,
        **splits,
        num_classes=meta["num_classes"],
        num_attributes=meta["num_attributes"],
        fingerprint=fingerprint,
        class_names=tuple(meta["class_names"]),
        attribute_names=tuple(meta["attribute_names"]),
        augment=meta["augment"],
    )


class DatasetSource(ABC):
    """A dataset, and the model and recipe it is trained with by default.

    ``identity()`` lists everything that decides the content; its hash, the fingerprint,
    names the cache and enters the cache key of every model trained on it. ``write`` fills a
    DatasetWriter with TRAIN/VAL/TEST. ``label_table`` gives the labels of the splits as the
    dataset is distributed (for ``unlearn-bench data check``), to compare with
    ``published_counts``: {split: [rows per group]} or {split: total rows}.
    """

    name: str
    model: ModelSpec = ModelSpec()
    recipe: Recipe = Recipe()
    published_counts: ClassVar[dict[str, list[int] | int]] = {}
    #: what the source expects to find at a local path, for error messages
    layouts: ClassVar[str] = ""
    #: the L∞ budget of the attacks on this dataset, unless the metric settings name one
    attack_eps: ClassVar[float] = DEFAULT_EPS
    #: hyper-parameters for methods on this dataset, {method name (or NAME+rw): {hparam: value}}:
    #: above the method's own ``dataset_overrides``, below tuned settings and the run's ``hparams``
    method_settings: ClassVar[dict[str, dict[str, Any]]] = {}

    @abstractmethod
    def identity(self) -> dict[str, Any]: ...

    @abstractmethod
    def write(self, out: DatasetWriter, report: Report = _quiet) -> None: ...

    def label_table(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """{split as distributed: (y, a)}; the default reads the built dataset."""
        d = self.load()
        return {s: (d.split(s).y.numpy(), d.split(s).a.numpy()) for s in SPLITS}

    @property
    def title(self) -> str:
        """How the leaderboard names the dataset: its name, unless the source has more to say
        (a preset that keeps only some rows, say)."""
        return self.name

    def fingerprint(self) -> str:
        return stable_hash({"name": self.name, **self.identity()})

    def load(self, cache_dir: Path | None = None, report: Report = _quiet) -> GroupDataset:
        """The dataset from its cache under ``cache_dir``, written first if missing (into a
        temporary directory when ``cache_dir`` is None)."""
        root = Path(cache_dir) if cache_dir is not None else Path(tempfile.gettempdir()) / "unlearn-bench-cache"
        directory = root / f"{self.name}-{self.fingerprint()}"
        if not (directory / "meta.json").exists():
            partial = root / f".{directory.name}.partial"
            shutil.rmtree(partial, ignore_errors=True)
            self.write(DatasetWriter(partial), report)
            shutil.rmtree(directory, ignore_errors=True)
            partial.rename(directory)
        return read_dataset(directory, self.name, self.fingerprint())


class PresetSource(DatasetSource):
    """A source whose model and recipe come from named presets ('quick': a CPU budget;
    'paper': the seed papers' recipe, REFERENCE §3), chosen by its ``preset`` field."""

    presets: ClassVar[dict[str, tuple[ModelSpec, Recipe]]] = {}
    preset: str = "quick"

    def _chosen(self) -> tuple[ModelSpec, Recipe]:
        if self.preset not in self.presets:
            raise BenchmarkError(f"{self.name} has no preset {self.preset!r}; presets: {', '.join(self.presets)}")
        return self.presets[self.preset]

    @property
    def model(self) -> ModelSpec:  # type: ignore[override]
        return self._chosen()[0]

    @property
    def recipe(self) -> Recipe:  # type: ignore[override]
        return self._chosen()[1]
