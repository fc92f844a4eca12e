"""Atomic writes: concurrent writers of one file never collide, a failed write leaves nothing."""

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from benchmark.run.store import atomic_path


def test_concurrent_writers_of_one_file_never_share_a_temporary_file(tmp_path):
    target = tmp_path / "cache" / "features.npz"

    def write(i: int) -> None:
        with atomic_path(target) as tmp:
            np.savez_compressed(tmp, value=np.full(1000, i))

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(write, range(40)))  # the old fixed name "<file>.tmp.npz" raised FileNotFoundError here
    with np.load(target) as z:
        assert len(set(z["value"].tolist())) == 1
    assert [p.name for p in target.parent.iterdir()] == ["features.npz"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path):
    target = tmp_path / "seed-0.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("disk full")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["seed-0.json"]


# -- the store: digests, quarantine, adoption ------------------------------------------

from pathlib import Path  # noqa: E402

from benchmark.run.store import Store, digest_path  # noqa: E402


def _store(tmp_path: Path) -> tuple[Store, list[str]]:
    said: list[str] = []
    return Store(tmp_path, warn=said.append), said


def test_a_file_is_read_back_only_while_it_matches_its_digest(tmp_path):
    store, said = _store(tmp_path)
    path = tmp_path / "cache" / "models" / "m.bin"
    store.write(path, lambda tmp: tmp.write_bytes(b"weights" * 100))
    assert digest_path(path).exists()
    assert store.read(path, Path.read_bytes) == b"weights" * 100 and not said
    path.write_bytes(b"weights" * 50)  # truncated behind the store's back
    assert store.read(path, Path.read_bytes) is None
    assert not path.exists() and len(said) == 1 and str(path) in said[0] and "sha256" in said[0]
    assert list((tmp_path / "quarantine" / "cache" / "models").iterdir())


def test_a_file_its_reader_rejects_is_quarantined(tmp_path):
    store, said = _store(tmp_path)
    path = tmp_path / "x.json"
    path.write_text("{not json")  # no digest: a file from before digests, adopted only if readable
    assert store.read(path, lambda p: json.loads(p.read_text())) is None
    assert "JSONDecodeError" in said[0] and not path.exists()


def test_a_readable_file_without_a_digest_is_adopted(tmp_path):
    store, said = _store(tmp_path)
    path = tmp_path / "x.json"
    path.write_text('{"a": 1}')
    assert store.read(path, lambda p: json.loads(p.read_text())) == {"a": 1}
    assert digest_path(path).exists() and not said


def test_a_directory_is_checked_file_by_file(tmp_path):
    store, said = _store(tmp_path)
    directory = tmp_path / "cache" / "datasets" / "d-1"
    store.write_dir(directory, lambda tmp: [(tmp / f"{n}.npy").write_bytes(bytes(range(n + 10))) for n in range(3)])
    assert store.read_dir(directory, lambda d: sorted(p.name for p in d.iterdir())) is not None
    (directory / "1.npy").write_bytes(b"x")
    assert store.read_dir(directory, lambda d: True) is None
    assert "1.npy does not match" in said[0] and not directory.exists()


def test_two_writers_of_one_directory_leave_one_complete_copy(tmp_path):
    store, _ = _store(tmp_path)
    directory = tmp_path / "d"

    def build(tmp: Path, value: int) -> None:
        (tmp / "a.npy").write_bytes(bytes([value]) * 1000)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda v: store.write_dir(directory, lambda tmp: build(tmp, v)), range(8)))
    assert store.read_dir(directory, lambda d: (d / "a.npy").read_bytes()) is not None
    assert [p.name for p in tmp_path.iterdir()] == ["d"]  # no partial directory left


# -- claims ---------------------------------------------------------------------------

from benchmark.run.locks import Claims, lock_path  # noqa: E402


def test_a_claim_is_held_once_and_released(tmp_path):
    cell = tmp_path / "seed-0.json"
    a, b = Claims(), Claims()
    b.owner = {**b.owner, "pid": os.getpid()}
    assert a.claim(cell) and not b.claim(cell) and b.held_by_other(cell)
    a.release(cell)
    assert not lock_path(cell).exists() and b.claim(cell)


def test_a_stale_claim_is_taken_over(tmp_path):
    cell = tmp_path / "seed-0.json"
    dead = Claims()
    dead.owner = {**dead.owner, "pid": 2**22 + 1}  # no such process on this host
    assert dead.claim(cell)
    alive = Claims()
    assert not alive.held_by_other(cell) and alive.claim(cell)
    assert json.loads(lock_path(cell).read_text())["run"] == alive.owner["run"]


def test_a_claim_without_heartbeat_on_another_host_goes_stale(tmp_path, monkeypatch):
    from benchmark.run import locks

    cell = tmp_path / "seed-0.json"
    other = Claims()
    other.owner = {**other.owner, "host": "elsewhere"}
    assert other.claim(cell)
    me = Claims()
    assert not me.claim(cell)
    old = time.time() - locks.STALE_AFTER - 1
    os.utime(lock_path(cell), (old, old))
    assert me.claim(cell)


def test_an_atomically_written_file_gets_the_mode_open_would_give(tmp_path):
    """Not mkstemp's private 0600: a leaderboard page must be readable by a web server."""
    from benchmark.run.store import write_text

    write_text(tmp_path / "page.html", "<p>")
    umask = os.umask(0)
    os.umask(umask)
    assert umask & 0o044 == 0  # the usual umask (022 or 002): the mode below differs from 0600
    assert (tmp_path / "page.html").stat().st_mode & 0o777 == 0o666 & ~umask
