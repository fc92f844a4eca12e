"""Views of a leaderboard, each rendered from the Leaderboard record alone: Markdown, a
static HTML page (a Jinja2 template, ``templates/index.html.j2``, over rows prepared here),
and rich tables for the terminal. Their columns are the catalog's
(``benchmark/metrics/catalog.py``): its ``column`` order, ``label`` titles, ``unit`` formats;
the terminal shows the ``terminal`` ones.

A cell reads "mean ± sd over seeds"; the ranking key (avg. gap) reads "mean [low, high]",
its 95% interval, where the record carries one. An interval the record lacks is not shown:
nothing here computes statistics, it only formats what the JSON holds."""

from __future__ import annotations

import json
import math
import re
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Iterator

from benchmark.metrics import catalog
from benchmark.report import leaderboard as leaderboard_module
from benchmark.report.leaderboard import Entry, Leaderboard, Stat
from benchmark.run.store import atomic_path

# decimals of each unit (a ratio is shown as ×1.0, without spread)
DIGITS = {"percent": 1, "seconds": 2, "nats": 3, "number": 3, "ratio": 1}
KEY = "avg_gap"  # the ranking key: shown with its interval
SPEEDUP = "speedup_vs_gold"
WORST_GROUP = "worst_group_acc"


# ---------------------------------------------------------------- cells


def shown_columns(board: Leaderboard) -> list[catalog.Metric]:
    """The catalog's columns, less the optional ones no entry of the board carries."""
    present = {m for e in board.entries for m in e.metrics}
    return [m for m in catalog.columns() if not m.optional or m.name in present]


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def interval(s: Stat | None, kind: str = "ci") -> tuple[float, float] | None:
    """The stat's ``ci`` (over seeds) or ``boot`` (over TEST rows) interval, None if absent."""
    pair = None if s is None else getattr(s, kind)
    if pair is None or len(pair) != 2 or not all(map(_finite, pair)):
        return None
    return float(pair[0]), float(pair[1])


def cell_text(s: Stat | None, unit: str) -> str:
    """mean ± sd over seeds (no spread for one seed, nor for a ratio)."""
    if s is None or not _finite(s.mean):
        return "–"
    if unit == "ratio":
        return f"×{s.mean:.1f}"
    digits = DIGITS[unit]
    spread = f" ± {s.std:.{digits}f}" if s.n > 1 and _finite(s.std) else ""
    return f"{s.mean:.{digits}f}{spread}"


def interval_text(s: Stat | None, unit: str) -> str:
    """mean [low, high] with the 95% interval over seeds; mean ± sd where there is none."""
    ci = interval(s)
    if ci is None or s is None or not _finite(s.mean):
        return cell_text(s, unit)
    d = DIGITS[unit]
    return f"{s.mean:.{d}f} [{ci[0]:.{d}f}, {ci[1]:.{d}f}]"


def metric_text(e: Entry, m: catalog.Metric) -> str:
    s = e.metrics.get(m.name)
    return interval_text(s, m.unit) if m.name == KEY else cell_text(s, m.unit)


def rank_text(e: Entry) -> str:
    """"gold", the rank band ("1–3", or "2" when it is one rank), or the plain rank."""
    if e.is_gold:
        return "gold"
    band = e.rank_band
    if band:
        best, worst = band
        return str(best) if best == worst else f"{best}–{worst}"
    return "–" if e.rank is None else str(e.rank)


def like_gold(e: Entry) -> bool:
    return not e.is_gold and e.like_gold is True


def method_text(e: Entry, seeds: list[int], bold: str = "", settings: bool = False) -> str:
    """The method, "(gold)" on a gold row, "≈ gold" when it cannot be told apart from gold,
    its seeds when it has fewer than the board, and with ``settings`` where its
    hyper-parameters come from."""
    name = f"{bold}{e.method}{bold} (gold)" if e.is_gold else e.method
    if like_gold(e):
        name += " ≈ gold"
    if e.seeds != seeds:
        name += f" (seeds {', '.join(map(str, e.seeds))})"
    if settings and not e.is_gold:
        name += f" · {tuning_text(e)}"
    return name


def tuning_text(e: Entry) -> str:
    """"tuned, 8 trials" or "defaults" (and the tuned values a run's own hparams overrode)."""
    t = e.tuning or {"from": "defaults"}
    text = f"tuned, {t.get('trials')} trials" if t["from"] == "tuned" else "defaults"
    return text + (f"; {', '.join(t['overridden'])} overridden" if t.get("overridden") else "")


def failed_text(f: dict[str, Any]) -> str:
    """"seed 1, training: reason" on one line (the JSON keeps the whole message)."""
    error = re.sub(r"\s+", " ", str(f["error"])).strip()
    error = error if len(error) <= 160 else error[:159] + "…"
    return f"seed {f['seed']}, {f['stage']}: {error}"


# ---------------------------------------------------------------- the board's words


def _all_seeds(board: Leaderboard) -> list[int]:
    return sorted({s for e in board.entries for s in e.seeds})


def _seeds(board: Leaderboard) -> str:
    """The seeds, and a word on the entries that have fewer (marked in their row)."""
    seeds = _all_seeds(board)
    fewer = " (a method shown with its seeds has fewer)" if any(e.seeds != seeds for e in board.entries) else ""
    return ", ".join(map(str, seeds)) + fewer


def statistics(board: Leaderboard) -> dict[str, str]:
    """The record's own description of its intervals (empty before schema 4)."""
    found = board.statistics or {}
    return {k: str(v) for k, v in found.items()}


def intro(board: Leaderboard) -> list[str]:
    """Sentences that say what the numbers, ± and [ ] mean."""
    said = [
        f"Cells: mean ± standard deviation over seeds {_seeds(board)}. Accuracies in %.",
        f"Methods are ranked by avg. gap: the mean of |metric − gold| over {', '.join(board.ranking.components)}, "
        "lower is better; the gold rows (retrain, and retrain+rw for REWEIGHT variants) are the references.",
    ]
    if statistics(board):
        said.append("Avg. gap reads mean [low, high], its 95% interval over seeds; Rank is the band of ranks an "
                    "entry could hold at 95%; ≈ gold marks an entry that cannot be told apart from its gold.")
    said.append("Each method runs its tuned hyper-parameters (\"tuned, N trials\": the same Optuna budget for every "
                "method, chosen on tuning seeds and VAL rows, docs/tuning.md) or its hand-set ones (\"defaults\").")
    return said + ["Metric definitions: docs/metrics.md."]


HOW = "How the intervals, bands and marks are computed (the record's own words, its `statistics`):"


def _attacks_text(a: dict | None) -> str:
    """The attack budget that ran, e.g. "; attacks: L∞ ε = 2/255, PGD-10, AutoAttack reduced
    (APGD-CE + Square, 10 iterations, 25 queries) on 64 rows"."""
    if not a or "eps" not in a:
        return ""
    ensemble = " + ".join(a.get("autoattack", []))
    return (f"; attacks: L∞ ε = {a['eps'] * 255:g}/255, PGD-{a.get('pgd_steps')}, AutoAttack {a.get('budget')} "
            f"({ensemble}, {a.get('aa_steps')} iterations, {a.get('square_queries')} queries) on {a.get('rows')} rows")


def _task_title(t: dict) -> str:
    skew = t["skew"] if t["skew"] == "uniform" else f"skew {t['skew']}"
    name = t.get("forget_group_name", f"group {t['forget_group']}")
    data = f" [{t['dataset_title']}]" if t.get("dataset_title") else ""
    title = f"{t['id']}{data}: forget {t['forget_size']} rows ({t.get('forget_size_spec', '')}), {skew}, g* = {t['forget_group']} ({name})"
    return title + _attacks_text(t.get("attacks"))


def _failed_by_task(board: Leaderboard) -> dict[str, list[dict]]:
    """The failed cells of each task."""
    by_task: dict[str, list[dict]] = {}
    for f in board.failed:
        by_task.setdefault(f["task"], []).append(f)
    return by_task


def _sections(board: Leaderboard) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) of what follows the tables: the cells without numbers, listed whole
    (failed, also shown shortened in their task's table, and refused), and the tuning studies."""
    found = []
    if board.failed:
        rows = [[f["method"], f["task"], str(f["seed"]), f["stage"], str(f["error"])] for f in board.failed]
        found.append(("Failed cells (no numbers; a later run retries them)", ["Method", "Task", "Seed", "Stage", "Reason"], rows))
    if board.refused:
        rows = [[r["method"], r["task"], str(r["seed"]), r["reason"]] for r in board.refused]
        found.append(("Refused cells (run against another gold than the one stored)", ["Method", "Task", "Seed", "Reason"], rows))
    tuned = [e for e in board.entries if (e.tuning or {}).get("from") == "tuned"]
    if tuned:
        rows = [[e.method, e.task, str(e.tuning.get("trials")), str(e.tuning.get("failures")),
                 f"{e.tuning.get('seconds', 0):.0f}", _number(e.tuning.get("best_objective"))] for e in tuned]
        found.append((TUNING_TITLE, ["Method", "Task", "Trials", "Failed trials", "Tuning time (s)", "Best objective (VAL)"], rows))
    return found


TUNING_TITLE = ("Tuning: the same trial budget for every method (`unlearn-bench tune`, docs/tuning.md); "
                "each study's trials, failures, wall time and best objective, on tuning seeds and VAL rows that no table reports")


def _number(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, (int, float)) else "–"


# ---------------------------------------------------------------- Markdown


def _md(cells: list[str]) -> str:
    """A table row; a cell's "|" escaped and its line breaks made spaces."""
    return "| " + " | ".join(re.sub(r"\s*\n\s*", " ", c).replace("|", "\\|") for c in cells) + " |"


def _md_rows(board: Leaderboard, t: dict, shown: list[catalog.Metric]) -> list[str]:
    seeds = _all_seeds(board)
    rows = [_md([rank_text(e), method_text(e, seeds, "**", settings=True)] + [metric_text(e, m) for m in shown])
            for e in board.entries_for(t["id"])]
    failed = _failed_by_task(board).get(t["id"], [])
    return rows + [_md(["–", f"{f['method']} — failed ({failed_text(f)})"] + [""] * len(shown)) for f in failed]


def to_markdown(board: Leaderboard) -> str:
    shown = shown_columns(board)
    header = ["Rank", "Method"] + [m.label for m in shown]
    lines = ["# unlearn-bench leaderboard", "", " ".join(intro(board))]
    if statistics(board):
        lines += ["", HOW, ""] + [f"- *{k}*: {v}" for k, v in statistics(board).items()]
    lines += ["", "<!-- generated from leaderboard.json by `unlearn-bench leaderboard`; do not edit -->"]
    for t in board.tasks:
        lines += ["", f"## {_task_title(t)}", "", _md(header), "|" + "---|" * len(header)]
        lines += _md_rows(board, t, shown)
    for title, head, rows in _sections(board):
        lines += ["", f"## {title}", "", _md(head), "|" + "---|" * len(head)] + [_md(r) for r in rows]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- the HTML page


def pareto_front(points: dict[str, tuple[float, float]]) -> set[str]:
    """The names whose (avg gap, speed-up) no other point beats: none has a gap as low and a
    speed-up as high, and one of the two strictly better."""

    def beaten(p: tuple[float, float]) -> bool:
        return any(q[0] <= p[0] and q[1] >= p[1] and q != p for q in points.values())

    return {name for name, p in points.items() if not beaten(p)}


def _front(board: Leaderboard, task_id: str) -> set[str]:
    """The trade-off front of a task's non-gold entries with both numbers."""
    points = {}
    for e in board.entries_for(task_id):
        gap, speed = e.metrics.get(KEY), e.metrics.get(SPEEDUP)
        if not e.is_gold and gap and speed and _finite(gap.mean) and _finite(speed.mean):
            points[e.method] = (gap.mean, speed.mean)
    return pareto_front(points)


def _stat_data(s: Stat | None) -> dict[str, Any] | None:
    if s is None or not _finite(s.mean):
        return None
    return {"mean": s.mean, "std": s.std if _finite(s.std) else None, "n": s.n, "ci": interval(s), "boot": interval(s, "boot")}


def _tooltip(s: Stat | None, unit: str) -> str:
    """The intervals of a cell, for its title: the table shows one number, the title the rest."""
    d, parts = DIGITS[unit], []
    for name, kind in (("95% CI over seeds", "ci"), ("95% bootstrap over TEST rows", "boot")):
        if (pair := interval(s, kind)) is not None:
            parts.append(f"{name} [{pair[0]:.{d}f}, {pair[1]:.{d}f}]")
    return "; ".join(parts)


def _entry_row(board: Leaderboard, e: Entry, shown: list[catalog.Metric], front: set[str]) -> dict[str, Any]:
    band = e.rank_band
    return {
        "method": e.method, "task": e.task, "is_gold": e.is_gold, "gold": e.gold, "like_gold": like_gold(e),
        "rank": rank_text(e), "rank_value": 0 if e.is_gold else (band[0] if band else e.rank),
        "seeds_note": "" if e.seeds == _all_seeds(board) else f"seeds {', '.join(map(str, e.seeds))}",
        "settings": "" if e.is_gold else tuning_text(e),
        "front": e.method in front,
        "cells": [{"key": m.name, "text": metric_text(e, m), "value": _value(e.metrics.get(m.name)),
                   "title": _tooltip(e.metrics.get(m.name), m.unit)} for m in shown],
        "metrics": {m.name: _stat_data(e.metrics.get(m.name)) for m in shown},
    }


def _value(s: Stat | None) -> float | None:
    return s.mean if s is not None and _finite(s.mean) else None


def skew_order(skew: Any) -> float:
    """uniform first, then the skews in increasing order."""
    return -1.0 if skew == "uniform" else float(skew)


def page_data(board: Leaderboard) -> dict[str, Any]:
    """What the page shows, as plain data: the template lays out the tables and its script
    draws the charts from the same data (embedded as JSON)."""
    shown = shown_columns(board)
    failed = _failed_by_task(board)
    tasks = []
    for t in board.tasks:
        front = _front(board, t["id"])
        tasks.append({
            "id": t["id"], "dataset": t["dataset"], "skew": str(t["skew"]), "title": _task_title(t),
            "setting": f"g* {t['forget_group']}, {t.get('forget_size_spec') or t['forget_size']}",
            "rows": [_entry_row(board, e, shown, front) for e in board.entries_for(t["id"])],
            "failed": [{"method": f["method"], "text": failed_text(f)} for f in failed.get(t["id"], [])],
        })
    skews = sorted({t["skew"] for t in board.tasks}, key=skew_order)
    return {
        "columns": [{"key": m.name, "label": m.label, "unit": m.unit, "better": m.better} for m in shown],
        "tasks": tasks,
        "datasets": sorted({t["dataset"] for t in board.tasks}),
        "skews": [str(s) for s in skews],
        "statistics": statistics(board),
        "keys": {"avg_gap": KEY, "speedup": SPEEDUP, "worst_group": WORST_GROUP},
    }


def _environment():
    from jinja2 import Environment, PackageLoader, StrictUndefined

    return Environment(loader=PackageLoader("benchmark.report", "templates"), autoescape=True,
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def to_html(board: Leaderboard) -> str:
    """The page: one self-contained file (plotly.js and the data inline; no network)."""
    from plotly.offline import get_plotlyjs

    data = page_data(board)
    return _environment().get_template("index.html.j2").render(
        data=data, intro=intro(board), how=HOW.replace("`", ""), problems=_sections(board), plotly_js=get_plotlyjs(),
        schema=board.schema_version, versions=", ".join(f"{k} {v}" for k, v in sorted(board.versions.items())),
    )


# ---------------------------------------------------------------- files


def write_views(board: Leaderboard, directory: Path) -> list[Path]:
    """leaderboard.json, leaderboard.md and index.html in ``directory``, the views rendered from
    the JSON record, and schema.json, the schema the record follows (leaderboard.SCHEMA_PATH). All are written to temporary files first and then renamed in one go, so
    that a kill leaves either the old set or the new set (no torn set)."""
    record = board.to_json()
    stored = Leaderboard.from_json(json.loads(json.dumps(record)))  # exactly what the file will hold (validated)
    texts = {"leaderboard.json": json.dumps(record, indent=1) + "\n", "leaderboard.md": to_markdown(stored), "index.html": to_html(stored)}
    schema = getattr(leaderboard_module, "SCHEMA_PATH", None)
    if schema is not None and Path(schema).is_file():
        texts["schema.json"] = Path(schema).read_text()
    with ExitStack() as stack:
        for name, text in texts.items():
            stack.enter_context(atomic_path(directory / name)).write_text(text)
    return [directory / name for name in texts]


# ---------------------------------------------------------------- terminal


def rich_tables(board: Leaderboard) -> Iterator[Any]:
    """One rich Table per task: the catalog's terminal columns, avg. gap with its interval,
    the rank band, gold rows highlighted, the task's failed cells in the caption."""
    from rich.table import Table
    from rich.text import Text

    shown = [m for m in shown_columns(board) if m.terminal]
    seeds = _all_seeds(board)
    failed = _failed_by_task(board)
    for t in board.tasks:
        table = Table(title=_task_title(t), title_justify="left")
        table.add_column("Rank", justify="right", no_wrap=True)
        table.add_column("Method", no_wrap=True)
        for m in shown:
            table.add_column(m.label, justify="right", no_wrap=True)
        for e in board.entries_for(t["id"]):
            style = "bold yellow" if e.is_gold else ("green" if like_gold(e) else None)
            table.add_row(rank_text(e), method_text(e, seeds), *(metric_text(e, m) for m in shown), style=style)
        lost = failed.get(t["id"], [])
        if lost:
            table.caption = Text("failed: " + "; ".join(f"{f['method']} ({failed_text(f)})" for f in lost), style="red")
            table.caption_justify = "left"
        yield table
