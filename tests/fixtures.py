"""Tiny copies of real datasets in their real on-disk formats, generated for the tests.

Image i of a fixture is a solid colour that encodes i (red = i % 256, green = i // 256), so a
test can tell which source row each cached row came from.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from PIL import Image

from benchmark.errors import BenchmarkError
from tests.conftest import read_json


def coded_image(i: int, size: tuple[int, int] = (40, 30)) -> Image.Image:
    return Image.new("RGB", size, (i % 256, i // 256, 128))


def code_of(x: np.ndarray) -> int:
    """The index a cached uint8 [3, H, W] image encodes."""
    return int(x[0, 0, 0]) + 256 * int(x[1, 0, 0])


def jpeg_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")  # lossless, so the colour code survives
    return buffer.getvalue()


def hub_copy(root: Path, splits: dict[str, dict[str, list]], image_column: str, kind: str, features: Any = None) -> Path:
    """A Hub dataset's local copy: ``kind`` 'parquet' (files <split>-00000-of-00001.parquet
    under data/) or 'arrow' (save_to_disk). ``splits``: {split: {column: values}}; the image
    column holds PIL images."""
    import datasets

    dd = datasets.DatasetDict(
        {
            name: datasets.Dataset.from_dict(columns, features=features).cast_column(image_column, datasets.Image())
            if image_column in columns
            else datasets.Dataset.from_dict(columns, features=features)
            for name, columns in splits.items()
        }
    )
    root.mkdir(parents=True, exist_ok=True)
    if kind == "arrow":
        dd.save_to_disk(str(root))
    else:
        (root / "data").mkdir(exist_ok=True)
        for name, d in dd.items():
            d.to_parquet(str(root / "data" / f"{name}-00000-of-00001.parquet"))
    return root


def labelled_rows(n_per_group: int, groups: list[tuple[int, int]], start: int = 0, seed: int = 0) -> list[tuple[int, int, int]]:
    """(code, y, a) rows: n_per_group of each (y, a), shuffled, codes from ``start``."""
    rows = [(y, a) for y, a in groups for _ in range(n_per_group)]
    order = np.random.default_rng(seed).permutation(len(rows))
    return [(start + i, *rows[j]) for i, j in enumerate(order)]


# the cheapest scorecard that still runs every metric
TINY_METRICS = {"mi_rows": 12, "attacks": {"rows": 8, "square_queries": 5, "aa_steps": 2, "pgd_steps": 2}}


def run_tiny_benchmark(cli, tmp_path: Path, task: str, copy: Path, methods: list[str]) -> dict:
    """Run ``methods`` on ``task`` (one epoch each, seed 0, one worker) with its dataset read
    from ``copy`` through ``--data``; the leaderboard it writes."""
    dataset = task.split("/")[0]
    config = tmp_path / "c.yaml"
    hparams = {m: {"epochs": 1} for m in methods if m != "original"}
    config.write_text(yaml.safe_dump({"recipe": {"epochs": 1}, "seeds": [0], "hparams": hparams, "metrics": TINY_METRICS}))
    code, _, err = cli("run", "--config", str(config), "--tasks", task, "--data", f"{dataset}={copy}",
                       "--methods", *methods, "--workers", "1")
    assert code == 0, err
    return read_json(Path("leaderboard/leaderboard.json"))


def expect_layout_error(source: Any, layout: str, *fragments: str) -> None:
    """Reading ``source`` fails with one message that names the expected ``layout`` and every fragment."""
    with pytest.raises(BenchmarkError) as caught:
        source.records()
    message = str(caught.value)
    assert layout in message, message
    for fragment in fragments:
        assert fragment in message, message


def assert_cache_is_reused(source: Any, cache: Path) -> None:
    """Loading twice gives the same arrays from one cache directory (the second load decodes nothing new)."""
    first = source.load(cache)
    again = source.load(cache)
    assert np.array_equal(first.test.x.numpy(), again.test.x.numpy())
    assert len(list(cache.iterdir())) == 1
