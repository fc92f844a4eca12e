"""Claims: several runs on one output directory split the work instead of repeating it.

A run claims a piece of work (a cell, an original model) by creating ``<file>.lock``
exclusively, holding its owner (host, process, run id); while it works it refreshes the
lock's modification time (its heartbeat). A lock whose owner is a dead process on this host,
or whose heartbeat is older than ``STALE_AFTER`` seconds (a run killed on another host), is
stale: the first run to rename it away takes the work over (a rename succeeds only once).
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from pathlib import Path

HEARTBEAT = 10.0  # seconds between refreshes of held locks
STALE_AFTER = 120.0  # seconds without a heartbeat after which a lock is taken over


def lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


class Claims:
    """The locks one run holds."""

    def __init__(self) -> None:
        self.owner = {"host": socket.gethostname(), "pid": os.getpid(), "run": uuid.uuid4().hex[:12]}
        self.held: set[Path] = set()
        self._beat = time.monotonic()

    def claim(self, path: Path) -> bool:
        """Whether this run now holds ``path``'s lock (taking a stale one over)."""
        lock = lock_path(path)
        if lock in self.held:
            return True
        lock.parent.mkdir(parents=True, exist_ok=True)
        if self._create(lock):
            return True
        if not self._stale(lock):
            return False
        try:
            lock.rename(lock.with_name(f".{lock.name}.{self.owner['run']}.stale"))
        except FileNotFoundError:  # another run took it over, or its owner finished
            return self._create(lock)
        lock.with_name(f".{lock.name}.{self.owner['run']}.stale").unlink(missing_ok=True)
        return self._create(lock)

    def release(self, path: Path) -> None:
        lock = lock_path(path)
        if lock in self.held:
            self.held.discard(lock)
            lock.unlink(missing_ok=True)

    def release_all(self) -> None:
        for lock in list(self.held):
            self.held.discard(lock)
            lock.unlink(missing_ok=True)

    def heartbeat(self, force: bool = False) -> None:
        """Refresh the held locks' modification times (every ``HEARTBEAT`` seconds)."""
        if not force and time.monotonic() - self._beat < HEARTBEAT:
            return
        self._beat = time.monotonic()
        for lock in list(self.held):
            try:
                os.utime(lock)
            except FileNotFoundError:  # taken over as stale: no longer ours
                self.held.discard(lock)

    def held_by_other(self, path: Path) -> bool:
        """Whether another live run holds ``path``'s lock."""
        lock = lock_path(path)
        return lock not in self.held and lock.exists() and not self._stale(lock)

    def _create(self, lock: Path) -> bool:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            json.dump({**self.owner, "since": time.time()}, f)
        self.held.add(lock)
        return True

    def _stale(self, lock: Path) -> bool:
        try:
            age = time.time() - lock.stat().st_mtime
            owner = json.loads(lock.read_text())
        except OSError:
            return True  # vanished
        except ValueError:  # being written right now, or left half-written by a run killed then
            return age > HEARTBEAT
        if owner.get("host") == self.owner["host"] and not _alive(int(owner.get("pid", 0))):
            return True
        return age > STALE_AFTER


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
