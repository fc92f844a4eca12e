"""The views of a leaderboard: Markdown, the HTML page (a template over the JSON), the terminal.

The boards carry schema-4 statistics (intervals, rank bands, ≈ gold) set by hand, so that
what is shown can be checked against what was put in; ``with_statistics`` adds made-up ones
to an older record (the committed board, until it is rebuilt)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from rich.console import Console

from benchmark.metrics import catalog
from benchmark.report import leaderboard as leaderboard_module
from benchmark.report import render
from benchmark.report.leaderboard import Leaderboard
from benchmark.report.render import page_data, pareto_front, rich_tables, to_html, to_markdown, write_views
from benchmark.report.scoring import score
from benchmark.report.statistics import STATISTICS
from tests.unit.test_scoring import CELLS

COMMITTED = Path(__file__).resolve().parents[2] / "leaderboard" / "leaderboard.json"


def board_from(data: dict[str, Any]) -> Leaderboard:
    """The Leaderboard of a record (checked against the schema as a file would be)."""
    return Leaderboard.from_json(json.loads(json.dumps(data)))


def with_statistics(data: dict[str, Any]) -> dict[str, Any]:
    """The record with made-up schema-4 fields where it has none: ci = the range of the
    per-seed values, boot = mean ± 1 on accuracies, rank band = rank ± 1, ≈ gold on rank 1."""
    data = json.loads(json.dumps(data))
    if not data.get("statistics"):
        data["statistics"] = STATISTICS
    data["schema_version"] = 4
    for e in data["entries"]:
        for name, s in e["metrics"].items():
            defined = [v for v in s["values"] if v is not None]
            s.setdefault("ci", [min(defined), max(defined)] if len(defined) > 1 else None)
            percent = (m := catalog.find(name)) is not None and m.unit == "percent" and s["mean"] is not None
            s.setdefault("boot", [s["mean"] - 1, s["mean"] + 1] if percent else None)
        rank = e["rank"]
        e.setdefault("rank_band", None if rank is None else [max(1, rank - 1), rank + 1])
        e.setdefault("like_gold", None if e.get("is_gold") else rank == 1)
        e.setdefault("vs_gold", {})
    return data


def schema_3(data: dict[str, Any]) -> dict[str, Any]:
    """The record less its schema-4 fields, as an older file holds it."""
    data = json.loads(json.dumps(data))
    data["schema_version"] = 3
    data.pop("statistics", None)
    for e in data["entries"]:
        for key in ("rank_band", "vs_gold", "like_gold"):
            e.pop(key, None)
        for s in e["metrics"].values():
            s.pop("ci", None), s.pop("boot", None)
    return data


def toy_board(failed: bool = True) -> Leaderboard:
    """tests/unit/test_scoring's board with known intervals: ga ranks 1–2 and is like gold, ft 1–3."""
    data = score(CELLS).to_json()
    data["statistics"] = STATISTICS
    for e in data["entries"]:
        for s in e["metrics"].values():
            s["ci"], s["boot"] = None, None
        e["rank_band"], e["like_gold"], e["vs_gold"] = None, None if e["is_gold"] else False, {}
    ga, ft = (next(e for e in data["entries"] if e["method"] == m) for m in ("ga", "ft"))
    ga["rank_band"], ga["like_gold"] = [1, 2], True
    ft["rank_band"] = [1, 3]
    ft["metrics"]["avg_gap"]["ci"] = [-1.2, 4.53]
    ft["metrics"]["test_acc"]["boot"] = [79.0, 85.0]
    if failed:
        data["failed"] = [{"method": "finetune", "task": data["tasks"][0]["id"], "seed": 1, "stage": "training",
                           "error": "CUDA out of memory | tried\n  to allocate"},
                          {"method": "scrub", "task": "toy/other", "seed": 0, "stage": "gold", "error": "no gold"}]
    return board_from(data)


def row_of(md: str, method: str) -> list[str]:
    line = next(line for line in md.splitlines() if re.match(rf"\| [^|]* \| (\*\*)?{re.escape(method)}\b", line))
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]


# ---------------------------------------------------------------- Markdown


def test_markdown_has_the_catalog_columns_and_the_intervals():
    md = to_markdown(toy_board())
    header = row_of(md.replace("| Rank | Method", "| - | Method"), "Method")
    assert header[2:] == [m.label for m in render.shown_columns(toy_board())]
    for name in ("retain_acc", "forget_acc", "test_acc", "worst_group_acc", "forget_group_test_acc", "equalized_odds",
                 "mia_forget_nonmember", "mi_calibration_error", "fairness_gap", "pgd_acc", "avg_gap", "speedup_vs_gold",
                 "unlearn_seconds"):
        assert catalog.find(name).column is not None
    ft = row_of(md, "ft")
    assert ft[0] == "1–3" and ft[1] == "ft · defaults"  # and where its settings come from
    assert ft[2] == "1.7 [-1.2, 4.5]"  # avg gap: mean [95% interval]
    assert ft[header.index("Test acc")] == "82.0 ± 2.8"  # others: mean ± sd


def test_markdown_marks_gold_like_gold_fewer_seeds_and_failed_cells():
    md = to_markdown(toy_board())
    assert row_of(md, "retrain")[:2] == ["gold", "**retrain** (gold)"]
    assert row_of(md, "ga")[:3] == ["1–2", "ga ≈ gold · defaults", "0.3 ± 0.5"]  # no interval recorded: none shown
    assert row_of(md, "ft+rw")[:2] == ["3", "ft+rw (seeds 0) · defaults"]  # no band recorded: the rank
    failed = row_of(md, "finetune")
    assert failed[:2] == ["–", "finetune — failed (seed 1, training: CUDA out of memory \\| tried to allocate)"]
    assert set(failed[2:]) == {""}
    assert "## Failed cells" in md and "| scrub | toy/other | 0 | gold | no gold |" in md  # all listed whole
    assert "| finetune | toy/g2-n10-skew1.0 | 1 | training | CUDA out of memory \\| tried to allocate |" in md


def test_markdown_says_what_the_brackets_mean_in_the_records_words():
    md = to_markdown(toy_board())
    assert "mean ± standard deviation over seeds 0, 1" in md and "95% interval" in md
    for key, text in STATISTICS.items():
        assert f"- *{key}*: {text}" in md


def test_a_schema_3_board_shows_no_interval_and_no_band():
    md = to_markdown(board_from(schema_3(score(CELLS).to_json())))
    assert "[" not in "".join(line for line in md.splitlines() if line.startswith("| "))
    assert "≈" not in md and row_of(md, "ft")[0] == "2"
    assert "95% interval" not in md and "statistics" not in md


# ---------------------------------------------------------------- the HTML page


def test_the_page_is_one_file_with_no_network():
    page = to_html(toy_board())
    assert not re.search(r"<(script|link|img|iframe)\b[^>]*\b(src|href)\s*=", page, re.I)
    assert not re.search(r"@import|url\(\s*['\"]?https?:", page)
    from plotly.offline import get_plotlyjs

    assert get_plotlyjs()[:500] in page


def test_the_page_embeds_the_data_it_draws():
    board = toy_board()
    page = to_html(board)
    found = re.search(r'<script type="application/json" id="leaderboard-data">(.*?)</script>', page, re.S)
    assert json.loads(found.group(1)) == json.loads(json.dumps(page_data(board)))
    for marker in ('id="chart-worst-group"', 'id="chart-tradeoff"', '<table class="board">', 'select id="filter-dataset"',
                   'select id="filter-skew"', 'th data-key="avg_gap"', 'tr data-method="ga" class="like-gold"',
                   'tr data-method="retrain" class="gold"', 'tr data-method="finetune" class="failed"'):
        assert marker in page
    assert 'title="95% bootstrap over TEST rows [79.0, 85.0]"' in page


def test_the_page_escapes_what_it_shows():
    data = score(CELLS).to_json()
    data["entries"][2]["method"] = "<b>x</b>"
    page = to_html(board_from(data))
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page and "\\u003cb\\u003ex" in page


def test_html_is_written_only_by_the_template():
    source = Path(render.__file__).read_text()
    assert not re.search(r"</?(html|head|body|table|tr|td|th|div|script|style|section|span|p|h\d)\b", source)
    assert (Path(render.__file__).parent / "templates" / "index.html.j2").is_file()


def test_pareto_front_by_hand():
    points = {"a": (1.0, 10.0), "b": (2.0, 100.0), "c": (2.0, 5.0), "d": (0.5, 1.0), "e": (1.0, 10.0)}
    assert pareto_front(points) == {"a", "b", "d", "e"}  # c: a is closer and faster; a, e tie


def test_page_rows_mark_the_front_and_order_the_skews():
    data = page_data(board_from(with_statistics(json.loads(COMMITTED.read_text()))))
    assert data["skews"] == ["uniform", "0.5", "1.0"]
    rows = data["tasks"][0]["rows"]
    front = {r["method"] for r in rows if r["front"]}
    assert "original" in front and not any(r["is_gold"] for r in rows if r["front"])  # ×744 at gap 1.0


# ---------------------------------------------------------------- files and terminal


def test_write_views_copies_the_published_schema(tmp_path, monkeypatch):
    schema = tmp_path / "published.json"
    schema.write_text('{"title": "leaderboard"}\n')
    monkeypatch.setattr(leaderboard_module, "SCHEMA_PATH", schema, raising=False)
    paths = write_views(score(CELLS), tmp_path / "out")
    assert [p.name for p in paths] == ["leaderboard.json", "leaderboard.md", "index.html", "schema.json"]
    assert (tmp_path / "out" / "schema.json").read_text() == schema.read_text()
    monkeypatch.delattr(leaderboard_module, "SCHEMA_PATH")
    assert "schema.json" not in [p.name for p in write_views(score(CELLS), tmp_path / "bare")]


def test_terminal_tables_fit_160_columns_with_intervals_and_bands():
    board = board_from(with_statistics(json.loads(COMMITTED.read_text())))
    console = Console(width=400, record=True, color_system=None)
    for table in rich_tables(board):
        console.print(table)
    text = console.export_text()
    body = [line.rstrip() for line in text.splitlines() if line[:1] in "┃│┏┡└"]
    assert max(map(len, body)) <= 160
    assert "…" not in text and "≈ gold" in text and re.search(r"\d+\.\d \[\d+\.\d, \d+\.\d\]", text)
    assert re.search(r"│ +\d+–\d+ │", text)


def test_terminal_shows_gold_highlighted_and_failed_cells():
    table = next(rich_tables(toy_board()))
    gold = [i for i, r in enumerate(table.rows) if r.style]
    assert table.columns[1]._cells[0] == "retrain (gold)" and "yellow" in str(table.rows[0].style)
    assert gold and "finetune (seed 1, training" in str(table.caption)
