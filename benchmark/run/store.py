"""The store: every artefact a run writes under ``<out>`` (dataset caches, original and gold
models, their features, result cells and their predictions), its path named in one place,
written atomically, and checked against its content hash when read.

Layout::

    <out>/cache/datasets/<name>-<fingerprint>/     one directory per dataset, manifest.json last
    <out>/cache/models/original-<key>.pt           (+ .features.npz: its TEST features)
    <out>/cache/models/gold-<key>.pt
    <out>/results/<task id>/<method>/seed-<n>.json  (+ .preds.npz: per-sample predictions)
    <out>/quarantine/...                            files that failed their check, moved aside

Every file has a sidecar ``<file>.sha256`` holding its digest, written after the file; a
directory has ``manifest.json`` with the digest of each of its files. A file whose content
no longer matches (truncated, overwritten, garbage) or that its reader rejects is moved to
``quarantine/`` with a line naming it, and the caller rebuilds it: it is never used.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, TypeVar

from rich.console import Console

from benchmark.errors import BenchmarkError

T = TypeVar("T")
DIGEST = ".sha256"
MANIFEST = "manifest.json"
_console = Console(stderr=True)


def warn(message: str) -> None:
    """One line on stderr: what the store found wrong and what it did about it."""
    _console.print(f"warning: {message}", markup=False, highlight=False, soft_wrap=True)


_UMASK = os.umask(0)
os.umask(_UMASK)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A fresh temporary path beside ``path`` (same suffix, so numpy and torch keep the name)
    to write to; moved onto ``path`` when the block succeeds, removed when it fails. Two
    processes writing one file never share a temporary file, and a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}")
    os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes it private; the file gets the mode open() would give
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> None:
    """``text`` into ``path`` atomically (no digest: for files outside the store's checks)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


_verified: dict[tuple, str] = {}  # (path, size, mtime, inode) -> digest, so a file is hashed once per process


def file_digest(path: Path) -> str:
    stat = path.stat()
    memo = (str(path), stat.st_size, stat.st_mtime_ns, stat.st_ino)
    if memo not in _verified:
        with path.open("rb") as f:
            _verified[memo] = hashlib.file_digest(f, "sha256").hexdigest()
    return _verified[memo]


def digest_path(path: Path) -> Path:
    return path.with_name(path.name + DIGEST)


class Corrupt(Exception):
    """A stored file that does not match its digest or that its reader rejects."""


class Store:
    """Paths, atomic writes and checked reads of everything under ``root`` (a run's ``out``)."""

    def __init__(self, root: Path, warn: Callable[[str], None] = warn) -> None:
        self.root = Path(root)
        self.warn = warn

    # -- paths ----------------------------------------------------------------------
    @property
    def results(self) -> Path:
        return self.root / "results"

    @property
    def models(self) -> Path:
        return self.root / "cache" / "models"

    @property
    def datasets(self) -> Path:
        return self.root / "cache" / "datasets"

    def dataset(self, name: str, fingerprint: str) -> Path:
        return self.datasets / f"{name}-{fingerprint}"

    def original(self, key: str) -> Path:
        return self.models / f"original-{key}.pt"

    def original_features(self, key: str) -> Path:
        return self.models / f"original-{key}.features.npz"

    def gold_model(self, key: str) -> Path:
        return self.models / f"gold-{key}.pt"

    def cell(self, task_id: str, method: str, seed: int) -> Path:
        safe_method = method.replace("/", "_").replace(":", "_")
        return self.results / task_id / safe_method / f"seed-{seed}.json"

    @staticmethod
    def predictions(cell: Path) -> Path:
        return cell.with_name(cell.stem + ".preds.npz")

    def cells(self) -> list[Path]:
        """Every result cell file in the store."""
        return sorted(self.results.rglob("seed-*.json")) if self.results.is_dir() else []

    # -- files ----------------------------------------------------------------------
    def write(self, path: Path, writer: Callable[[Path], None]) -> None:
        """``writer(tmp)`` fills a temporary file that then becomes ``path``; its digest follows."""
        with atomic_path(path) as tmp:
            writer(tmp)
            digest = file_digest(tmp)
            digest_path(path).unlink(missing_ok=True)  # a reader in between adopts the file as it finds it
        write_text(digest_path(path), digest + "\n")

    def read(self, path: Path, reader: Callable[[Path], T]) -> T | None:
        """``reader(path)`` when the file exists and matches its digest; None when it is missing.
        A mismatching or unreadable file is quarantined (and None returned), so the caller
        rebuilds it. A file written before digests existed is adopted when its reader accepts it."""
        if not path.exists():
            return None
        sidecar = digest_path(path)
        try:
            expected = sidecar.read_text().strip() if sidecar.exists() else None
            if expected is not None and file_digest(path) != expected:
                raise Corrupt("its content does not match its recorded sha256 (truncated or overwritten)")
            value = reader(path)
        except Exception as err:  # noqa: BLE001 -- whatever a reader raises on a bad file
            self.quarantine(path, err if isinstance(err, Corrupt) else f"unreadable ({type(err).__name__}: {_first_line(err)})")
            return None
        if expected is None:
            write_text(sidecar, file_digest(path) + "\n")
        return value

    def remove(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        digest_path(path).unlink(missing_ok=True)

    def quarantine(self, path: Path, reason: object) -> Path:
        """Move ``path`` (and its digest) under ``quarantine/``, keeping its relative path."""
        relative = path.resolve().relative_to(self.root.resolve()) if path.resolve().is_relative_to(self.root.resolve()) else Path(path.name)
        target = self.root / "quarantine" / f"{relative}.{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.move(str(path), str(target))
            if digest_path(path).exists():
                shutil.move(str(digest_path(path)), str(target) + DIGEST)
        except FileNotFoundError:  # another process moved it first
            pass
        self.warn(f"{path}: {reason}; moved to {target} and rebuilt")
        return target

    # -- directories ----------------------------------------------------------------
    def write_dir(self, directory: Path, builder: Callable[[Path], None]) -> None:
        """``builder(tmp)`` fills a fresh temporary directory; a manifest of its files' digests
        is added and the directory renamed onto ``directory`` (if another process finished the
        same directory first, its copy is kept and this one dropped)."""
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}.", suffix=".partial"))
        try:
            builder(tmp)
            manifest = {p.name: file_digest(p) for p in sorted(tmp.iterdir()) if p.is_file() and p.name != MANIFEST}
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
            try:
                tmp.rename(directory)
            except OSError:
                if not (directory / MANIFEST).exists():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def read_dir(self, directory: Path, reader: Callable[[Path], T]) -> T | None:
        """``reader(directory)`` when every file matches the manifest; None when it is missing
        or was quarantined. A directory from before manifests is adopted if its reader accepts it."""
        if not directory.is_dir():
            return None
        manifest_file = directory / MANIFEST
        try:
            manifest = json.loads(manifest_file.read_text()) if manifest_file.exists() else None
            for name, digest in (manifest or {}).items():
                if not (directory / name).is_file():
                    raise Corrupt(f"{name} is missing")
                if file_digest(directory / name) != digest:
                    raise Corrupt(f"{name} does not match its recorded sha256 (truncated or overwritten)")
            value = reader(directory)
        except Exception as err:  # noqa: BLE001
            self.quarantine(directory, err if isinstance(err, Corrupt) else f"unreadable ({type(err).__name__}: {_first_line(err)})")
            return None
        if manifest is None:
            digests = {p.name: file_digest(p) for p in sorted(directory.iterdir()) if p.is_file()}
            write_text(manifest_file, json.dumps(digests, indent=1) + "\n")
        return value


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else ""


HEADROOM = 64 << 20  # free space a run keeps beyond its estimate (``Runner.disk_need``)


def check_writable(directory: Path, what: str) -> None:
    """Raise BenchmarkError naming ``directory`` unless a file can be written in it."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with atomic_path(directory / ".write-check") as tmp:
            tmp.write_text("ok")
        (directory / ".write-check").unlink(missing_ok=True)
    except OSError as err:
        raise BenchmarkError(f"cannot write to the {what} {directory}: {err.strerror or err}") from None


def check_free_space(directory: Path, need: int) -> None:
    """Raise BenchmarkError when the disk of ``directory`` (to be made) has less than ``need`` bytes free."""
    existing = next(p for p in (directory, *directory.parents) if p.exists())
    free = shutil.disk_usage(existing).free
    if free < need:
        raise BenchmarkError(f"only {free / 2**20:.0f} MiB free on the disk of {directory}; this run needs about {need / 2**20:.0f} MiB")
