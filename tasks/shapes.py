"""Shapes: an embedded, procedurally generated Waterbirds in miniature (no download).

Each image is a coloured background (the attribute a: 0 "land", a warm ochre; 1 "water",
a cool blue) with a small bar whose orientation is the target y (0 horizontal, 1 vertical).
In TRAIN the background agrees with the target for a share ``spurious`` of the rows; VAL and
TEST are group-balanced. Groups g = 2y + a: 0 horizontal/land, 1 horizontal/water,
2 vertical/land (g*, the "waterbird on land"), 3 vertical/water.

Why it shows the effect the suite measures (tuned by hand; see README): the background is
a strong, clean cue, while the bar is small, of random size and position, drawn at a
random contrast between 0 and ``contrast`` (some bars are all but invisible) with random
polarity, under pixel noise. ERM learns the background first and the bar only as far as
the minority rows force it to, so worst-group accuracy sits well below the average, and
taking rows of g* out of TRAIN costs g* accuracy in proportion.

Presets. ``quick`` (the default benchmark): 3,000 / 800 / 2,000 rows at 24 px, drawn by
numpy on the host. ``smoke`` (``unlearn-bench validate``'s smoke run): the same at 240 / 40
/ 80 rows, one epoch. ``paper``: Waterbirds' size and group counts (4,795 / 1,199 / 5,794 rows;
TRAIN 3498 / 184 / 56 / 1057, so the background agrees with the target in 95% of it) at
224 px, for ResNet-18 with the Waterbirds recipe of REFERENCE §3, drawn by the ``counter``
engine: every random number is a hash of (seed, split, purpose, row, pixel) computed with
integer operations and correctly rounded float32 arithmetic only (a normal draw is the
standardised sum of four random bytes), so the GPU (used when there is one) and the CPU give
the same bytes, in chunks of any size. On a 2-core CPU it draws about 16 images/s at 224 px
(12 minutes for the paper preset): prefer a GPU there. The bar's geometry scales with the
image (it was tuned at 24 px); the contrast and noise do not, and their effect at 224 px is
not tuned. ``*_groups`` fix the rows per group of a split (shares of its size); left empty,
TRAIN follows ``spurious`` and VAL/TEST are balanced.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Iterator

import numpy as np
import torch
from torch import Tensor

from benchmark import BenchmarkError, DatasetWriter, GroupDataset, ModelSpec, PresetSource, Recipe, Report, Split, Task
from tasks.waterbirds import WaterbirdsSource

LAND, WATER = (0.55, 0.45, 0.30), (0.30, 0.45, 0.60)
TUNED_SIZE = 24  # the image size the bar's geometry was tuned at
SPLIT_NAMES = ("train", "val", "test")
ENGINES = ("numpy", "counter")
NUMPY_CHUNK = 2**25  # float64 values per chunk of the numpy engine (256 MB)
COUNTER_CHUNK = {"cpu": 16, "cuda": 128}  # rows per chunk of the counter engine
MASK32 = 0xFFFFFFFF
# purposes of the counter engine's random streams
LABELS, BACKGROUND, LENGTH, CENTRE_Y, CENTRE_X, STRENGTH, SIGN, NOISE = range(8)


# -- the numpy engine (version 1's bytes) ------------------------------------------------------


def bar_mask(vertical: Any, cy: Any, cx: Any, half_length: Any, grid: Any, width: float) -> Any:
    """Boolean [k, size, size] (numpy or torch alike): each row's bar, vertical where
    ``vertical``, ``width`` x its half length wide, over pixel centres ``grid``."""
    dy = abs(grid[None, :, None] - cy[:, None, None])
    dx = abs(grid[None, None, :] - cx[:, None, None])
    half_length = half_length[:, None, None]
    half_width = width * half_length
    horizontal = (dy <= half_width) & (dx <= half_length)
    upright = (dx <= half_width) & (dy <= half_length)
    v = vertical[:, None, None]
    return (upright & v) | (horizontal & ~v)


def draw_images(
    y: np.ndarray, a: np.ndarray, rng: np.random.Generator, *, size: int, contrast: float, noise: float
) -> Iterator[np.ndarray]:
    """uint8 [k, 3, size, size] chunks of the rows in order: background colour by ``a``, a bar
    oriented by ``y``. Every per-row draw comes before the pixel noise, drawn in row order,
    so the chunks are the bytes of one draw of the whole split."""
    n, scale = len(y), size / TUNED_SIZE
    background = np.array([LAND, WATER])[a] + rng.normal(0.0, 0.04, (n, 3))
    half_length = rng.uniform(3.0 * scale, 5.0 * scale, n)
    margin = 6.0 * scale
    cy = rng.uniform(margin, size - margin, n)
    cx = rng.uniform(margin, size - margin, n)
    strength = rng.uniform(0.0, contrast, n) * rng.choice([-1.0, 1.0], n)
    grid = np.arange(size, dtype=np.float32)
    step = max(1, NUMPY_CHUNK // (3 * size * size))
    for start in range(0, n, step):
        part = slice(start, start + step)
        bar = bar_mask(y[part] == 1, cy[part], cx[part], half_length[part], grid, 0.35)
        image = background[part, :, None, None] + strength[part, None, None, None] * bar[:, None]
        image += rng.normal(0.0, noise, image.shape)
        yield np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)


# -- the counter engine (the same bytes on any device) ------------------------------------------


def _int32(value: int) -> int:
    """A 32-bit pattern as the int32 that holds it."""
    value &= MASK32
    return value - 2**32 if value >= 2**31 else value


MIX = (_int32(0x7FEB352D), _int32(0x846CA68B))  # the multipliers of mix32's two rounds


def mix32(x: Tensor) -> Tensor:
    """A bijective hash of int32 tensors (xor-shift-multiply rounds; 32-bit wrapping products,
    logical shifts by masking): integer arithmetic only, so the same on every device."""
    x = x ^ ((x >> 16) & 0xFFFF)
    x = x * MIX[0]
    x = x ^ ((x >> 15) & 0x1FFFF)
    x = x * MIX[1]
    return x ^ ((x >> 16) & 0xFFFF)


def stream_key(*parts: int) -> int:
    """The key (an int32) of one random stream, from (seed, split, purpose)."""
    key = torch.zeros(1, dtype=torch.int32)
    for part in parts:
        key = mix32(key ^ _int32(part))
    return int(key)


def random_bits(key: int, counters: Tensor) -> Tensor:
    """32 random bits (an int32) per counter (an int32 or int64 below 2**31) of stream ``key``."""
    return mix32(mix32(counters.to(torch.int32)) ^ key)


def unit(bits: Tensor) -> Tensor:
    """float32 uniform on [0, 1), from the top 24 bits (exact)."""
    return ((bits >> 8) & 0xFFFFFF).to(torch.float32) * 2.0**-24


def normal(bits: Tensor) -> Tensor:
    """float32, mean 0 and variance 1: the sum of the four bytes (Irwin-Hall), standardised."""
    total = (bits & 255) + ((bits >> 8) & 255) + ((bits >> 16) & 255) + ((bits >> 24) & 255)
    return (total.to(torch.float32) - 510.0) * _f32((4 * (256**2 - 1) / 12) ** -0.5)


def _f32(value: float) -> float:
    """``value`` rounded to float32, so no device rounds a constant differently."""
    return float(np.float32(value))


def counter_labels(key: int, counts: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """(y, a) with exactly ``counts`` rows per group g = 2y + a, in an order drawn by ``key``."""
    g = torch.repeat_interleave(torch.arange(4), torch.tensor(counts))
    g = g[torch.argsort(random_bits(key, torch.arange(len(g))))]
    return (g // 2).numpy(), (g % 2).numpy()


def counter_images(rows: Tensor, y: Tensor, a: Tensor, keys: dict[int, int], *, size: int, contrast: float, noise: float) -> Tensor:
    """uint8 [k, 3, size, size] for ``rows`` of a split (int64, on the device that draws; ``y``
    and ``a`` beside them); ``keys`` maps each purpose to its stream."""
    scale, device = size / TUNED_SIZE, rows.device
    colours = torch.tensor([LAND, WATER], dtype=torch.float32, device=device)
    channel_counters = rows[:, None] * 4 + torch.arange(3, device=device)
    background = colours[a] + _f32(0.04) * normal(random_bits(keys[BACKGROUND], channel_counters))
    half_length = _f32(3.0 * scale) + _f32(2.0 * scale) * unit(random_bits(keys[LENGTH], rows))
    margin, span = _f32(6.0 * scale), _f32(size - 12.0 * scale)
    cy = margin + span * unit(random_bits(keys[CENTRE_Y], rows))
    cx = margin + span * unit(random_bits(keys[CENTRE_X], rows))
    sign = (1 - 2 * (random_bits(keys[SIGN], rows) & 1)).to(torch.float32)
    strength = _f32(contrast) * unit(random_bits(keys[STRENGTH], rows)) * sign
    grid = torch.arange(size, dtype=torch.float32, device=device)
    bar = bar_mask(y == 1, cy, cx, half_length, grid, _f32(0.35))
    pixels = mix32(torch.arange(3 * size * size, dtype=torch.int32, device=device))
    z = normal(mix32(pixels[None, :] ^ random_bits(keys[NOISE], rows)[:, None])).view(len(rows), 3, size, size)
    image = background[:, :, None, None] + strength[:, None, None, None] * bar[:, None]
    image = image + _f32(noise) * z
    return (image.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)


def generation_device() -> torch.device:
    """Where the counter engine draws: the GPU when there is one (the bytes are the same)."""
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def group_counts(shares: tuple[float, ...], n: int) -> list[int]:
    """``n`` rows split in proportion to ``shares`` (largest remainders, ties to the first)."""
    exact = [n * s / sum(shares) for s in shares]
    counts = [int(e) for e in exact]
    order = sorted(range(len(exact)), key=lambda i: (counts[i] - exact[i], i))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    return counts


# -- the source ----------------------------------------------------------------------------------

WATERBIRDS = WaterbirdsSource.published_counts
PRESET_DATA: dict[str, dict[str, Any]] = {
    "quick": dict(n_train=3000, n_val=800, n_test=2000, size=24, engine="numpy", train_groups=(), val_groups=(), test_groups=()),
    # `unlearn-bench validate`'s smoke run: the quick data cut to a few hundred rows, one epoch
    "smoke": dict(n_train=240, n_val=40, n_test=80, size=24, engine="numpy", train_groups=(), val_groups=(), test_groups=()),
    "paper": dict(
        n_train=sum(WATERBIRDS["train"]), n_val=sum(WATERBIRDS["val"]), n_test=sum(WATERBIRDS["test"]), size=224, engine="counter",
        train_groups=tuple(WATERBIRDS["train"]), val_groups=tuple(WATERBIRDS["val"]), test_groups=tuple(WATERBIRDS["test"]),
    ),
}
GROUP_FIELDS = ("train_groups", "val_groups", "test_groups")


@dataclass(frozen=True)
class ShapesSource(PresetSource):
    """Generator settings; the same settings give the same bytes. Settings left None take
    their preset's value (PRESET_DATA)."""

    n_train: int | None = None
    n_val: int | None = None
    n_test: int | None = None
    spurious: float = 0.9
    size: int | None = None
    contrast: float = 0.3
    noise: float = 0.08
    seed: int = 0
    engine: str | None = None
    train_groups: tuple[float, ...] | None = None
    val_groups: tuple[float, ...] | None = None
    test_groups: tuple[float, ...] | None = None
    name: str = "shapes"
    preset: str = "quick"

    # Final weights, not best-on-VAL: a group-balanced VAL picks checkpoints by how little
    # they use the background, which makes the original's worst group noisy from seed to seed.
    _quick = (
        ModelSpec(backbone="test_resnet", image_size=24),
        Recipe(epochs=12, batch_size=64, lr=0.05, weight_decay=5e-4, warmup_epochs=1, select_best_on_val=False),
    )
    # Waterbirds' paper recipe (REFERENCE §3) on ResNet-18 at 224 px, from random weights: the
    # data is synthetic (ImageNet features buy nothing) and GPU machines may be offline.
    _paper = (ModelSpec(backbone="resnet18", image_size=224), WaterbirdsSource.presets["paper"][1])
    presets = {"quick": _quick, "smoke": (_quick[0], replace(_quick[1], epochs=1)), "paper": _paper}
    published_counts = {}
    layouts = "nothing: shapes is generated"
    # The bar is faint (contrast up to 0.3 under noise 0.08), so the standard 8/255 breaks every
    # model on every row (measured: PGD and AutoAttack accuracy 0.0 for all methods, 3 seeds),
    # and the columns would tell methods apart by nothing. At 2/255 the original keeps ~65%
    # of its TEST rows and ~40% of its worst group.
    attack_eps = 2 / 255

    def __post_init__(self) -> None:
        if self.preset not in PRESET_DATA:
            raise BenchmarkError(f"{self.name} has no preset {self.preset!r}; presets: {', '.join(PRESET_DATA)}")
        for key, value in PRESET_DATA[self.preset].items():
            if getattr(self, key) is None:
                object.__setattr__(self, key, value)
        for key in GROUP_FIELDS:
            object.__setattr__(self, key, _shares(key, getattr(self, key)))
        self._check()

    def _check(self) -> None:
        if not 0.0 <= self.spurious <= 1.0:
            raise ValueError(f"spurious must be in [0, 1], not {self.spurious}")
        if min(self.n_train, self.n_val, self.n_test) < 4 or self.size < 16:
            raise ValueError("shapes needs at least 4 rows per split and images of at least 16 px")
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {self.engine!r}")
        if not 0 <= self.seed <= MASK32:
            raise ValueError(f"seed must be in [0, 2**32), not {self.seed}")

    def legacy(self) -> bool:
        """Whether these settings draw version 1's bytes (numpy, 24 px, no group counts), so
        its fingerprint, and caches built before, stay valid."""
        return self.engine == "numpy" and self.size == TUNED_SIZE and not any(getattr(self, k) for k in GROUP_FIELDS)

    def identity(self) -> dict[str, Any]:
        keys = ("n_train", "n_val", "n_test", "spurious", "size", "contrast", "noise", "seed")
        base = {k: getattr(self, k) for k in keys}
        if self.legacy():
            return {"version": 1, **base}
        return {"version": 2, **base, "engine": self.engine, **{k: list(getattr(self, k)) for k in GROUP_FIELDS}}

    def sizes(self) -> dict[str, int]:
        return {"train": self.n_train, "val": self.n_val, "test": self.n_test}

    def splits(self) -> Iterator[tuple[str, np.ndarray, np.ndarray, Iterator[np.ndarray]]]:
        """(split, y, a, uint8 image chunks in row order) for TRAIN, VAL and TEST."""
        streams = np.random.SeedSequence(self.seed).spawn(3)
        for index, name in enumerate(SPLIT_NAMES):
            if self.engine == "numpy":
                yield (name, *self._numpy_split(name, np.random.default_rng(streams[index])))
            else:
                yield (name, *self._counter_split(name, index))

    def _shares(self, split: str) -> tuple[float, ...]:
        given = getattr(self, f"{split}_groups")
        if given or split != "train":
            return given or (1.0, 1.0, 1.0, 1.0)
        s = self.spurious
        return (s / 2, (1 - s) / 2, (1 - s) / 2, s / 2)

    def _numpy_split(self, split: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, Iterator[np.ndarray]]:
        n, given = self.sizes()[split], getattr(self, f"{split}_groups")
        if given:
            g = rng.permutation(np.repeat(np.arange(4), group_counts(given, n)))
            y, a = g // 2, g % 2
        elif split != "train":  # equal rows per group, in random order
            g = rng.permutation(np.arange(n) % 4)
            y, a = g // 2, g % 2
        else:
            y = rng.integers(0, 2, n)
            a = np.where(rng.random(n) < self.spurious, y, 1 - y)
        return y, a, draw_images(y, a, rng, size=self.size, contrast=self.contrast, noise=self.noise)

    def _counter_split(self, split: str, index: int) -> tuple[np.ndarray, np.ndarray, Iterator[np.ndarray]]:
        keys = {purpose: stream_key(self.seed, index, purpose) for purpose in range(NOISE + 1)}
        y, a = counter_labels(keys[LABELS], group_counts(self._shares(split), self.sizes()[split]))
        return y, a, self._counter_chunks(y, a, keys)

    def _counter_chunks(self, y: np.ndarray, a: np.ndarray, keys: dict[int, int]) -> Iterator[np.ndarray]:
        device = generation_device()
        step = COUNTER_CHUNK[device.type]
        y_dev, a_dev = torch.from_numpy(y).to(device), torch.from_numpy(a).to(device)
        try:
            for start in range(0, len(y), step):
                rows = torch.arange(start, min(start + step, len(y)), device=device)
                chunk = counter_images(rows, y_dev[rows], a_dev[rows], keys, size=self.size, contrast=self.contrast, noise=self.noise)
                yield chunk.cpu().numpy()
        finally:
            if device.type == "cuda":
                torch.cuda.empty_cache()  # hand the memory back to the training processes

    def write(self, out: DatasetWriter, report: Report | None = None) -> None:
        """Split by split into the cache, one chunk of images at a time."""
        for split, y, a, chunks in self.splits():
            x = out.allocate(split, len(y), (3, self.size, self.size))
            what = f"generating {self.name} {split}"
            _fill(x, chunks, None if report is None else lambda done: report(what, done, len(x)))
            out.labels(split, y, a)
        out.finish(num_classes=2, num_attributes=2, class_names=CLASS_NAMES, attribute_names=ATTRIBUTE_NAMES, augment="crop_flip")

    def build(self) -> GroupDataset:
        """The dataset in memory (1.8 GB under the paper preset)."""
        splits = {}
        for split, y, a, chunks in self.splits():
            x = np.empty((len(y), 3, self.size, self.size), dtype=np.uint8)
            _fill(x, chunks)
            splits[split] = Split(torch.from_numpy(x), torch.from_numpy(y).long(), torch.from_numpy(a).long())
        return GroupDataset(
            name=self.name,
            **splits,
            num_classes=2,
            num_attributes=2,
            fingerprint=self.fingerprint(),
            class_names=CLASS_NAMES,
            attribute_names=ATTRIBUTE_NAMES,
            augment="crop_flip",
        )


CLASS_NAMES, ATTRIBUTE_NAMES = ("horizontal", "vertical"), ("land", "water")


def _shares(key: str, value: Any) -> tuple[float, ...]:
    """Rows per group as given (a list from a config file too): four numbers >= 0, or none."""
    shares = tuple(float(v) for v in value)
    if shares and (len(shares) != 4 or min(shares) < 0 or sum(shares) <= 0):
        raise ValueError(f"{key} must be 4 numbers >= 0 with a positive sum (rows per group), not {list(value)}")
    return shares


def _fill(out: np.ndarray, chunks: Iterator[np.ndarray], done: Any = None) -> None:
    """Write the chunks into ``out`` row by row; ``done(rows)`` after each."""
    start = 0
    for chunk in chunks:
        out[start : start + len(chunk)] = chunk
        start += len(chunk)
        if done is not None:
            done(start)
    if start != len(out):
        raise RuntimeError(f"generated {start} rows for a split of {len(out)}")


FORGET_GROUP = 2  # vertical bar on land: the minority group, as Waterbirds' waterbird on land


def tasks(**settings: Any) -> list[Task]:
    """The grid: forget 90% of g*'s TRAIN rows (MIU's r = 0.9) at skew 'uniform', 0.5 and 1.0;
    the short default benchmark runs skew 1.0 (the full board, configs/board.yaml, all three).
    ``settings`` go to the generator (e.g. ``n_train=400`` for a quick run, ``preset='paper'``
    for Waterbirds' sizes at 224 px)."""
    source = ShapesSource(**settings)
    return [Task(source, FORGET_GROUP, 0.9, "group", skew, default=skew == 1.0) for skew in ("uniform", 0.5, 1.0)]
