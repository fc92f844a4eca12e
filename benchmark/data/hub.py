"""Reading a Hugging Face Hub dataset: by its id (online), or from a local copy of it — a
folder of parquet files (as the Hub serves them) or of arrow files (``save_to_disk``).

Image columns are read as raw bytes (decoded later, once, into the cache).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from benchmark.errors import BenchmarkError


def is_hub_copy(path: Path) -> bool:
    return (path / "dataset_dict.json").exists() or any(path.rglob("*.parquet"))


def _split_of(file: Path, root: Path, splits: Sequence[str]) -> str | None:
    parts = file.relative_to(root).parts
    for split in splits:
        legacy = re.search(rf"-{re.escape(split)}(-\d+-of-\d+)?$", file.stem)  # the Hub's older <config>-<split>.parquet
        if file.name.startswith((f"{split}-", f"{split}.", f"{split}_")) or legacy or split in parts[:-1]:
            return split
    return None


def open_hub(hub_id: str, path: Path | None, splits: Sequence[str], config: str | None = None, image_column: str | None = None) -> dict[str, Any]:
    """{split: datasets.Dataset} for the named splits, from the Hub (``path`` None) or a local copy."""
    import datasets

    if path is not None and config and (path / config).is_dir():
        path = path / config  # a copy of a whole repository holds every config
    if path is None:
        try:
            loaded = datasets.load_dataset(hub_id, config)
        except Exception as err:
            raise BenchmarkError(
                f"cannot load {hub_id} from the Hugging Face Hub ({type(err).__name__}); "
                "download it elsewhere and point --data at the local copy"
            ) from None
    else:
        loaded = _read_local(path, splits)
    missing = [s for s in splits if s not in loaded]
    if missing:
        raise BenchmarkError(f"{path or hub_id}: split(s) {missing} missing; found {sorted(loaded)}")
    out = {s: loaded[s] for s in splits}
    if image_column:
        out = {s: d.cast_column(image_column, datasets.Image(decode=False)) for s, d in out.items()}
    return out


def _read_local(path: Path, splits: Sequence[str]) -> Any:
    import datasets

    try:
        if (path / "dataset_dict.json").exists():
            return datasets.load_from_disk(str(path))
        files: dict[str, list[str]] = {}
        for file in sorted(path.rglob("*.parquet")):
            split = _split_of(file, path, splits)
            if split is not None:
                files.setdefault(split, []).append(str(file))
        if not files:
            raise BenchmarkError(f"no parquet files named after the splits {list(splits)} under {path}")
        return datasets.load_dataset("parquet", data_files=files)
    except BenchmarkError:
        raise
    except Exception as err:  # a damaged parquet or arrow file
        raise BenchmarkError(f"cannot read {path} ({type(err).__name__}: {err})") from None


def labels(dataset: Any, name: str, where: str) -> np.ndarray:
    """One label column as a numpy array, read column-wise (without touching the images)."""
    if name not in dataset.column_names:
        raise BenchmarkError(f"{where}: column {name!r} missing; found {dataset.column_names}")
    return np.asarray(dataset.select_columns([name]).with_format("numpy")[:][name])


def column(dataset: Any, name: str, where: str) -> list:
    if name not in dataset.column_names:
        raise BenchmarkError(f"{where}: column {name!r} missing; found {dataset.column_names}")
    return dataset[name]
