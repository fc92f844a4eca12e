"""Atomic writes: concurrent writers of one file never collide, a failed write leaves nothing."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from benchmark.atomic import atomic_path


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
