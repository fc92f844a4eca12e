"""Decoding images once, into the cache, at the model's resolution.

Every image is converted to RGB, its shorter side resized to ``resize`` (bilinear,
antialiased) and centre-cropped to ``size`` x ``size`` — the evaluation view of REFERENCE §3
(Resize(256) + CenterCrop(224); CelebA Resize(224)). Training augmentation then works on
these crops on the device. Decoding runs in a pool of processes, in order.
"""

from __future__ import annotations

import io
import os
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
from PIL import Image

Report = Callable[[str, int, int], None]


def open_rgb(item: Any) -> Image.Image:
    """An RGB image from a path, raw bytes, a {'bytes'|'path': ...} record (Hugging Face) or an image."""
    if isinstance(item, dict):
        item = item.get("bytes") or item.get("path")
    if isinstance(item, (bytes, bytearray)):
        item = io.BytesIO(item)
    image = item if isinstance(item, Image.Image) else Image.open(item)
    return image.convert("RGB")


def square(image: Image.Image, size: int, resize: int) -> np.ndarray:
    """uint8 [3, size, size]: shorter side to ``resize``, then the centre ``size`` x ``size``."""
    w, h = image.size
    scale = resize / min(w, h)
    image = image.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BILINEAR, reducing_gap=None)
    w, h = image.size
    left, top = (w - size) // 2, (h - size) // 2
    crop = image.crop((left, top, left + size, top + size))
    return np.asarray(crop, dtype=np.uint8).transpose(2, 0, 1)


def _decode(job: tuple[Any, int, int]) -> np.ndarray:
    item, size, resize = job
    return square(open_rgb(item), size, resize)


def decoding_pool(processes: int | None = None) -> Any:
    """A pool of spawned processes for ``decode_into``; make one per dataset and reuse it
    (each process starts by importing the main script)."""
    return get_context("spawn").Pool(processes or max(1, min(8, os.cpu_count() or 1)))


def decode_into(
    out: np.ndarray,
    items: Iterable[Any],
    *,
    size: int,
    resize: int,
    report: Report,
    what: str,
    pool: Any = None,
) -> None:
    """Decode ``items`` (paths, bytes, Hugging Face image records or images) into ``out``
    [N, 3, size, size], in order; in ``pool`` when given."""
    jobs = ((item, size, resize) for item in items)
    total = len(out)
    decoded = pool.imap(_decode, jobs, chunksize=32) if pool is not None and total >= 64 else map(_decode, jobs)
    for i, image in enumerate(decoded):
        out[i] = image
        if i % 256 == 0:
            report(what, i, total)
    report(what, total, total)


def existing_files(root: Path, names: Sequence[str]) -> list[Path]:
    """``root / name`` for every name; the first missing one is an error naming it."""
    paths = [root / n for n in names]
    missing = next((p for p in paths if not p.is_file()), None)
    if missing is not None:
        from benchmark.errors import BenchmarkError

        raise BenchmarkError(f"image file missing: {missing} (and maybe more); is the dataset folder complete?")
    return paths
