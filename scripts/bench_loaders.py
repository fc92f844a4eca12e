"""Benchmark: preparing the image cache (decode once, resize, centre-crop) at 224 px.

    python scripts/bench_loaders.py [--images N]

For each real dataset, N generated images of that dataset's typical size and file format
(JPEG; PNG for CIFAR-10 as the Hub stores it) go through the
decoding path the loaders use (benchmark.images.decode_into with its process pool), against
a plain baseline in the same run: PIL decoding alone, in one process. Prints images/s, the
ratio to the baseline, and the size of each dataset's cache at 224 px from its real row count.
"""

from __future__ import annotations

import argparse
import io
import time

import numpy as np
from PIL import Image

from benchmark.data.images import decode_into, decoding_pool

# (dataset, typical image size (w, h), file format, rows cached, resize for 224 px)
DATASETS = [
    ("waterbirds", (500, 375), "JPEG", 4795 + 1199 + 5794, 256),
    ("celeba", (178, 218), "JPEG", 162770 + 19867 + 19962, 224),
    ("fairface", (448, 448), "JPEG", 86744 + 10954, 256),
    ("cifar10 (Hub PNG)", (32, 32), "PNG", 60000, 256),
]


def encoded_images(n: int, size: tuple[int, int], file_format: str, seed: int = 0) -> list[bytes]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        small = rng.integers(0, 256, (size[1] // 8 + 1, size[0] // 8 + 1, 3), dtype=np.uint8)
        image = Image.fromarray(small).resize(size, Image.BICUBIC)  # smooth, photo-like content
        buffer = io.BytesIO()
        image.save(buffer, format=file_format, **({"quality": 90} if file_format == "JPEG" else {}))
        out.append(buffer.getvalue())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    args = parser.parse_args()
    quiet = lambda *a: None  # noqa: E731
    print(f"{'dataset':20s} {'baseline img/s':>15s} {'cache img/s':>12s} {'x baseline':>11s} {'cache at 224 px':>16s}")
    with decoding_pool() as pool:
        for name, size, file_format, rows, resize in DATASETS:
            data = encoded_images(args.images, size, file_format)
            start = time.perf_counter()
            for item in data:
                Image.open(io.BytesIO(item)).convert("RGB").load()
            baseline = args.images / (time.perf_counter() - start)
            out = np.empty((args.images, 3, 224, 224), np.uint8)
            decode_into(out, data[:64], size=224, resize=resize, report=quiet, what="", pool=pool)  # warm the pool
            start = time.perf_counter()
            decode_into(out, data, size=224, resize=resize, report=quiet, what="", pool=pool)
            rate = args.images / (time.perf_counter() - start)
            gb = rows * 3 * 224 * 224 / 1e9
            print(f"{name:20s} {baseline:15.0f} {rate:12.0f} {rate / baseline:11.2f} {gb:13.2f} GB")


if __name__ == "__main__":
    main()
