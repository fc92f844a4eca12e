"""Where a dataset's copy is: a folder (in one of the layouts the source knows), the Hugging
Face Hub, or a copy shipped inside the source's package. ``LocalCopy`` makes that one dispatch,
so that every source finds, reads and fingerprints its copy the same way, and fails the same
way: one error line naming the layouts it expects."""

from __future__ import annotations

import functools
import hashlib
import re
from abc import abstractmethod
from pathlib import Path
from typing import Any, Callable, ClassVar, NamedTuple

import numpy as np

from benchmark.data.hub import is_hub_copy
from benchmark.errors import BenchmarkError

HUB = "hub"  # the ``path`` that names the Hugging Face Hub (a folder called hub: ./hub)


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
