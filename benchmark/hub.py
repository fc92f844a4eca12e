"""Reading a Hugging Face Hub dataset: by its id (online), or from a local copy of it — a
folder of parquet files (as the Hub serves them) or of arrow files (``save_to_disk``).

Image columns are read as raw bytes (decoded later, once, into the cache).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from benchmark.errors import BenchmarkError


def is_hub_copy(path: Path) -> bool:
    return (path / "dataset_dict.json").exists() or any(path.rglob("*.parquet"))


def _split_of(file: Path, root: Path, splits: Sequence[str]) -> str | None:
    parts = file.relative_to(root).parts
    for split in splits:
        if file.name.startswith((f"{split}-", f"{split}.", f"{split}_")) or split in parts[:-1]:
            return split
    return None


def open_hub(hub_id: str, path: Path | None, splits: Sequence[str], config: str | None = None, image_column: str | None = None) -> dict[str, Any]:
    """{split: datasets.Dataset} for the named splits, from the Hub (``path`` None) or a local copy."""
    import datasets

    if path is None:
        try:
            loaded = datasets.load_dataset(hub_id, config)
        except Exception as err:
            raise BenchmarkError(
                f"cannot load {hub_id} from the Hugging Face Hub ({type(err).__name__}); "
                "download it elsewhere and point --data at the local copy"
            ) from None
    elif (path / "dataset_dict.json").exists():
        loaded = datasets.load_from_disk(str(path))
    else:
        files: dict[str, list[str]] = {}
        for file in sorted(path.rglob("*.parquet")):
            split = _split_of(file, path, splits)
            if split is not None:
                files.setdefault(split, []).append(str(file))
        if not files:
            raise BenchmarkError(f"no parquet files named after the splits {list(splits)} under {path}")
        loaded = datasets.load_dataset("parquet", data_files=files)
    missing = [s for s in splits if s not in loaded]
    if missing:
        raise BenchmarkError(f"{path or hub_id}: split(s) {missing} missing; found {sorted(loaded)}")
    out = {s: loaded[s] for s in splits}
    if image_column:
        out = {s: d.cast_column(image_column, datasets.Image(decode=False)) for s, d in out.items()}
    return out


def column(dataset: Any, name: str, where: str) -> list:
    if name not in dataset.column_names:
        raise BenchmarkError(f"{where}: column {name!r} missing; found {dataset.column_names}")
    return dataset[name]
