"""Views of a leaderboard, each rendered from the Leaderboard record alone: Markdown, a
static HTML page, and a rich table for the terminal. Their columns are the catalog's
(``benchmark/metrics/catalog.py``): its ``column`` order, ``label`` titles, ``unit`` formats;
the terminal shows the ``terminal`` ones."""

from __future__ import annotations

import html
import json
import math
from contextlib import ExitStack
from pathlib import Path

from benchmark.metrics import catalog
from benchmark.report.leaderboard import Entry, Leaderboard, Stat, validate
from benchmark.run.store import atomic_path

# decimals of each unit (a ratio is shown as ×1.0, without spread)
DIGITS = {"percent": 1, "seconds": 2, "nats": 3, "number": 3}


def shown_columns(board: Leaderboard) -> list[catalog.Metric]:
    """The catalog's columns, less the optional ones no entry of the board carries."""
    present = {m for e in board.entries for m in e.metrics}
    return [m for m in catalog.columns() if not m.optional or m.name in present]


def cell_text(s: Stat | None, unit: str) -> str:
    if s is None or not math.isfinite(s.mean):
        return "–"
    if unit == "ratio":
        return f"×{s.mean:.1f}"
    digits = DIGITS[unit]
    spread = f" ± {s.std:.{digits}f}" if s.n > 1 else ""
    return f"{s.mean:.{digits}f}{spread}"


def _row(e: Entry, columns: list[catalog.Metric], seeds: list[int]) -> list[str]:
    rank = "gold" if e.is_gold else ("–" if e.rank is None else str(e.rank))
    method = e.method if e.seeds == seeds else f"{e.method} (seeds {', '.join(map(str, e.seeds))})"
    return [rank, method] + [cell_text(e.metrics.get(m.name), m.unit) for m in columns]


def _problems(board: Leaderboard) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) of the cells without numbers: failed, and refused."""
    found = []
    if board.failed:
        rows = [[f["method"], f["task"], str(f["seed"]), f["stage"], f["error"]] for f in board.failed]
        found.append(("Failed cells (no numbers; a later run retries them)", ["Method", "Task", "Seed", "Stage", "Reason"], rows))
    if board.refused:
        rows = [[r["method"], r["task"], str(r["seed"]), r["reason"]] for r in board.refused]
        found.append(("Refused cells (run against another gold than the one stored)", ["Method", "Task", "Seed", "Reason"], rows))
    return found


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


def _all_seeds(board: Leaderboard) -> list[int]:
    return sorted({s for e in board.entries for s in e.seeds})


def _seeds(board: Leaderboard) -> str:
    """The seeds, and a word on the entries that have fewer (marked in their row)."""
    seeds = _all_seeds(board)
    fewer = " (a method shown with its seeds has fewer)" if any(e.seeds != seeds for e in board.entries) else ""
    return ", ".join(map(str, seeds)) + fewer


INTRO = (
    "Mean ± standard deviation over seeds {seeds}. Accuracies in %. Methods are ranked by "
    "*avg. gap*: the mean of |metric − gold| over {components}, lower is better; the gold rows "
    "(retrain, and retrain+rw for REWEIGHT variants) are the references. Metric definitions: docs/metrics.md."
)


def to_markdown(board: Leaderboard) -> str:
    shown = shown_columns(board)
    header = ["Rank", "Method"] + [m.label for m in shown]
    lines = [
        "# unlearn-bench leaderboard",
        "",
        INTRO.format(seeds=_seeds(board), components=", ".join(board.ranking.components)),
        "",
        "<!-- generated from leaderboard.json by `unlearn-bench leaderboard`; do not edit -->",
    ]
    for t in board.tasks:
        lines += ["", f"## {_task_title(t)}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(_row(e, shown, _all_seeds(board))) + " |" for e in board.entries_for(t["id"])]
    for title, head, rows in _problems(board):
        lines += ["", f"## {title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
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
    header = "".join(f"<th>{html.escape(h)}</th>" for h in ["Rank", "Method"] + [m.label for m in shown])
    sections = []
    for t in board.tasks:
        rows = "".join(
            ('<tr class="gold">' if e.is_gold else "<tr>")
            + "".join(f"<td>{html.escape(c)}</td>" for c in _row(e, shown, _all_seeds(board)))
            + "</tr>"
            for e in board.entries_for(t["id"])
        )
        sections.append(f"<h2>{html.escape(_task_title(t))}</h2>\n<table><tr>{header}</tr>{rows}</table>")
    for title, head, problem_rows in _problems(board):
        cells = "".join("<tr>" + "".join(f'<td style="text-align:left">{html.escape(c)}</td>' for c in row) + "</tr>" for row in problem_rows)
        heads = "".join(f"<th>{html.escape(h)}</th>" for h in head)
        sections.append(f"<h2>{html.escape(title)}</h2>\n<table><tr>{heads}</tr>{cells}</table>")
    intro = INTRO.format(seeds=_seeds(board), components=", ".join(board.ranking.components)).replace("*", "")
    versions = ", ".join(f"{k} {v}" for k, v in sorted(board.versions.items()))
    return PAGE.format(intro=html.escape(intro), sections="\n".join(sections), schema=board.schema_version, versions=html.escape(versions))


def write_views(board: Leaderboard, directory: Path) -> list[Path]:
    """leaderboard.json, leaderboard.md and index.html in ``directory``, the views rendered from
    the JSON record. All three are written to temporary files first and then renamed in one
    go, so that a kill leaves either the old three or the new three (no torn set)."""
    record = board.to_json()
    validate(record)
    stored = Leaderboard.from_json(json.loads(json.dumps(record)))  # exactly what the file will hold
    paths = [directory / "leaderboard.json", directory / "leaderboard.md", directory / "index.html"]
    texts = [json.dumps(record, indent=1) + "\n", to_markdown(stored), to_html(stored)]
    with ExitStack() as stack:
        for path, text in zip(paths, texts):
            stack.enter_context(atomic_path(path)).write_text(text)
    return paths


def rich_tables(board: Leaderboard):
    from rich.table import Table

    shown = [m for m in shown_columns(board) if m.terminal]
    for t in board.tasks:
        table = Table(title=_task_title(t), title_justify="left")
        table.add_column("Rank", justify="right")
        table.add_column("Method", no_wrap=True)
        for m in shown:
            table.add_column(m.label, justify="right")
        for e in board.entries_for(t["id"]):
            table.add_row(*_row(e, shown, _all_seeds(board)), style="yellow" if e.is_gold else None)
        yield table
