"""``unlearn-bench data check``: the rows per split and group of a local copy, beside the
counts the dataset's authors published."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmark.registry import load_suite


def check_counts(name: str, path: Path) -> tuple[list[str], int]:
    """Report lines and the number of mismatches."""
    source = load_suite(name, {"path": str(path)})[0].source
    table = source.label_table()
    published = source.published_counts
    lines = [f"{name} from {path}"]
    mismatches = 0
    for split, (y, a) in table.items():
        groups = np.asarray(y) * source.num_attributes + np.asarray(a)
        found = np.bincount(groups, minlength=source.num_classes * source.num_attributes).tolist()
        expected = published.get(split)
        if isinstance(expected, list):
            lines.append(f"  {split}: {len(groups)} rows; per group {found}; published {expected}")
            for g, (f, e) in enumerate(zip(found, expected)):
                if f != e:
                    mismatches += 1
                    lines.append(f"    mismatch: {split} group {g}: found {f}, published {e}")
        else:
            lines.append(f"  {split}: {len(groups)} rows; per group {found}; published {expected if expected is not None else 'n/a'} rows")
            if expected is not None and expected != len(groups):
                mismatches += 1
                lines.append(f"    mismatch: {split}: found {len(groups)} rows, published {expected}")
    lines.append(f"{mismatches} mismatch{'es' if mismatches != 1 else ''} with the published counts")
    return lines, mismatches
