"""Views of a leaderboard, each rendered from the Leaderboard record alone: Markdown, a
static HTML page, and a rich table for the terminal."""

from __future__ import annotations

import html
import math
from pathlib import Path

from benchmark.report.leaderboard import Entry, Leaderboard, Stat

# (metric, column title, how to show it); the files show all, the terminal the first TERMINAL
COLUMNS = [
    ("avg_gap", "Avg. gap ↓", "pct"),
    ("test_acc", "Test acc", "pct"),
    ("worst_group_acc", "Worst-group acc", "pct"),
    ("forget_group_test_acc", "g* test acc", "pct"),
    ("forget_acc", "Forget acc", "pct"),
    ("mia_forget_nonmember", "MIA non-member", "pct"),
    ("pgd_acc", "PGD acc", "pct"),
    ("speedup_vs_gold", "Speed-up", "ratio"),
    ("retain_acc", "Retain acc", "pct"),
    ("tow", "ToW ↑", "pct"),
    ("equalized_odds", "Eq. odds", "pct"),
    ("mi_calibration_error", "MI calib. err (nats)", "nats"),
    ("fairness_gap", "Fairness gap", "num"),
    ("autoattack_standard_acc", "AutoAttack acc", "pct"),
    ("autoattack_reduced_acc", "AutoAttack (reduced) acc", "pct"),
    ("unlearn_seconds", "Time (s)", "secs"),
]
TERMINAL = 8
# columns shown only when some entry has them: each AutoAttack budget has its own metric name
OPTIONAL = {"autoattack_standard_acc", "autoattack_reduced_acc"}


def shown_columns(board: Leaderboard) -> list:
    """COLUMNS less the optional ones no entry of the board carries."""
    present = {m for e in board.entries for m in e.metrics}
    return [c for c in COLUMNS if c[0] not in OPTIONAL or c[0] in present]


def cell_text(s: Stat | None, kind: str) -> str:
    if s is None or not math.isfinite(s.mean):
        return "–"
    if kind == "ratio":
        return f"×{s.mean:.1f}"
    digits = {"pct": 1, "secs": 2, "nats": 3, "num": 3}[kind]
    spread = f" ± {s.std:.{digits}f}" if s.n > 1 else ""
    return f"{s.mean:.{digits}f}{spread}"


def _row(e: Entry, columns: list = COLUMNS) -> list[str]:
    rank = "gold" if e.is_gold else ("–" if e.rank is None else str(e.rank))
    return [rank, e.method] + [cell_text(e.metrics.get(m), kind) for m, _, kind in columns]


def _task_title(t: dict) -> str:
    skew = t["skew"] if t["skew"] == "uniform" else f"skew {t['skew']}"
    name = t.get("forget_group_name", f"group {t['forget_group']}")
    title = f"{t['id']}: forget {t['forget_size']} rows ({t.get('forget_size_spec', '')}), {skew}, g* = {t['forget_group']} ({name})"
    return title + _attacks_text(t.get("attacks"))


def _attacks_text(a: dict | None) -> str:
    """The attack budget that ran, e.g. "; attacks: L∞ ε = 2/255, PGD-10, AutoAttack reduced
    (APGD-CE + Square, 10 iterations, 25 queries) on 64 rows"."""
    if not a or "eps" not in a:
        return ""
    ensemble = " + ".join(a.get("autoattack", []))
    return (f"; attacks: L∞ ε = {a['eps'] * 255:g}/255, PGD-{a.get('pgd_steps')}, AutoAttack {a.get('budget')} "
            f"({ensemble}, {a.get('aa_steps')} iterations, {a.get('square_queries')} queries) on {a.get('rows')} rows")


def _seeds(board: Leaderboard) -> str:
    seeds = sorted({s for e in board.entries for s in e.seeds})
    return ", ".join(map(str, seeds))


INTRO = (
    "Mean ± standard deviation over seeds {seeds}. Accuracies in %. Methods are ranked by "
    "*avg. gap*: the mean of |metric − gold| over {components}, lower is better; the gold rows "
    "(retrain, and retrain+rw for REWEIGHT variants) are the references. Metric definitions: docs/metrics.md."
)


def to_markdown(board: Leaderboard) -> str:
    shown = shown_columns(board)
    header = ["Rank", "Method"] + [title for _, title, _ in shown]
    lines = [
        "# unlearn-bench leaderboard",
        "",
        INTRO.format(seeds=_seeds(board), components=", ".join(board.ranking.components)),
        "",
        "<!-- generated from leaderboard.json by `unlearn-bench leaderboard`; do not edit -->",
    ]
    for t in board.tasks:
        lines += ["", f"## {_task_title(t)}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(_row(e, shown)) + " |" for e in board.entries_for(t["id"])]
    return "\n".join(lines) + "\n"


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>unlearn-bench leaderboard</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2rem auto;max-width:72rem;color:#222;padding:0 1rem}}
table{{border-collapse:collapse;margin:0.5rem 0 2rem;font-size:0.9rem}}
th,td{{padding:0.3rem 0.6rem;border-bottom:1px solid #ddd;text-align:right}}
th{{background:#f4f4f4}} td:nth-child(2),th:nth-child(2){{text-align:left}}
tr.gold td{{background:#fff8e1}} h2{{font-size:1.05rem;margin-top:2rem}} p{{max-width:60rem}}
</style></head><body>
<h1>unlearn-bench leaderboard</h1>
<p>{intro}</p>
{sections}
<p><small>Generated from leaderboard.json (schema {schema}); versions: {versions}.</small></p>
</body></html>
"""


def to_html(board: Leaderboard) -> str:
    shown = shown_columns(board)
    header = "".join(f"<th>{html.escape(h)}</th>" for h in ["Rank", "Method"] + [t for _, t, _ in shown])
    sections = []
    for t in board.tasks:
        rows = "".join(
            ('<tr class="gold">' if e.is_gold else "<tr>")
            + "".join(f"<td>{html.escape(c)}</td>" for c in _row(e, shown))
            + "</tr>"
            for e in board.entries_for(t["id"])
        )
        sections.append(f"<h2>{html.escape(_task_title(t))}</h2>\n<table><tr>{header}</tr>{rows}</table>")
    intro = INTRO.format(seeds=_seeds(board), components=", ".join(board.ranking.components)).replace("*", "")
    versions = ", ".join(f"{k} {v}" for k, v in sorted(board.versions.items()))
    return PAGE.format(intro=html.escape(intro), sections="\n".join(sections), schema=board.schema_version, versions=html.escape(versions))


def write_views(board: Leaderboard, directory: Path) -> list[Path]:
    """leaderboard.json, leaderboard.md and index.html in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    board.save(directory / "leaderboard.json")
    stored = Leaderboard.load(directory / "leaderboard.json")  # the views come from the file
    paths = [directory / "leaderboard.json", directory / "leaderboard.md", directory / "index.html"]
    paths[1].write_text(to_markdown(stored))
    paths[2].write_text(to_html(stored))
    return paths


def rich_tables(board: Leaderboard):
    from rich.table import Table

    shown = shown_columns(board)[:TERMINAL]
    for t in board.tasks:
        table = Table(title=_task_title(t), title_justify="left")
        table.add_column("Rank", justify="right")
        table.add_column("Method", no_wrap=True)
        for _, title, _ in shown:
            table.add_column(title, justify="right")
        for e in board.entries_for(t["id"]):
            table.add_row(*_row(e, shown), style="yellow" if e.is_gold else None)
        yield table
