"""Two leaderboards of the same tasks side by side (e.g. hand-set defaults against tuned
settings): per task, every method's Avg. Gap with its 95% interval and rank band before and
after, how many ranks moved, and which pairs of methods are separated (their Avg. Gap intervals
disjoint) after but not before, or before but not after.

    python scripts/compare_boards.py BEFORE/leaderboard.json AFTER/leaderboard.json > comparison.md
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

from benchmark.report.leaderboard import Entry, Leaderboard


def _gap(e: Entry | None) -> str:
    if e is None:
        return "failed"
    s = e.metrics.get("avg_gap")
    if s is None or s.mean != s.mean:
        return "–"
    return f"{s.mean:.1f} [{s.ci[0]:.1f}, {s.ci[1]:.1f}]" if s.ci else f"{s.mean:.1f}"


def _band(e: Entry | None) -> str:
    if e is None or e.rank is None:
        return "–"
    return f"{e.rank_band[0]}–{e.rank_band[1]}" if e.rank_band else str(e.rank)


def _separated(entries: dict[str, Entry]) -> set[frozenset[str]]:
    """Pairs whose Avg. Gap intervals are disjoint."""
    found = set()
    for a, b in itertools.combinations(sorted(entries), 2):
        x, y = entries[a].metrics.get("avg_gap"), entries[b].metrics.get("avg_gap")
        if x and y and x.ci and y.ci and (x.ci[1] < y.ci[0] or y.ci[1] < x.ci[0]):
            found.add(frozenset((a, b)))
    return found


def compare(before: Leaderboard, after: Leaderboard) -> list[str]:
    lines = []
    for task in [t["id"] for t in after.tasks]:
        old = {e.method: e for e in before.entries_for(task) if not e.is_gold}
        new = {e.method: e for e in after.entries_for(task) if not e.is_gold}
        methods = sorted(set(old) | set(new), key=lambda m: (new[m].rank or 99) if m in new else 99)
        lines += [f"### {task}", "", "| Method | Settings after | Avg. Gap before | Band before | Avg. Gap after | Band after |", "|---|---|---|---|---|---|"]
        for m in methods:
            tuning = new[m].tuning if m in new else {}
            settings = f"tuned, {tuning.get('trials')} trials" if tuning.get("from") == "tuned" else "defaults"
            lines.append(f"| {m} | {settings} | {_gap(old.get(m))} | {_band(old.get(m))} | {_gap(new.get(m))} | {_band(new.get(m))} |")
        moved = sum(1 for m in methods if m in old and m in new and old[m].rank != new[m].rank)
        gained, lost = _separated(new) - _separated(old), _separated(old) - _separated(new)
        pairs = lambda ps: ", ".join(" / ".join(sorted(p)) for p in sorted(ps, key=sorted)) or "none"  # noqa: E731
        lines += [
            "",
            f"Ranks moved: {moved} of {len(methods)}. Pairs separated: {len(_separated(old))} before, {len(_separated(new))} after.",
            f"Newly separated: {pairs(gained)}.",
            f"No longer separated: {pairs(lost)}.",
            "",
        ]
    return lines


if __name__ == "__main__":
    before, after = (Leaderboard.load(Path(p)) for p in sys.argv[1:3])
    print("\n".join(compare(before, after)))
