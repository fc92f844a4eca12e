"""Every table the CLI prints stays readable on an 80-column terminal: each header word whole
(headers wrap over lines), no cell cut with an ellipsis, no line wider than the terminal; and
a table that fits is printed as it always was."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table

from benchmark.report.claims import evaluate, rich_table
from benchmark.report.leaderboard import Leaderboard
from benchmark.report.render import rich_tables
from benchmark.report.terminal import Foldable, fitted, print_fitted

COMMITTED = Path(__file__).resolve().parents[2] / "leaderboard" / "leaderboard.json"
BORDERS = r"[│┃┏┓┗┛━─┳┻╇┡┩└┘┴┬╋┼]"


@pytest.fixture(scope="module")
def board() -> Leaderboard:
    return Leaderboard.from_json(json.loads(COMMITTED.read_text()))


def render(tables, width: int, keep: int | None = None) -> str:
    console = Console(width=width, record=True, color_system=None)
    print_fitted(console, tables, keep)
    return console.export_text()


def words(text: str) -> set[str]:
    return set(re.sub(BORDERS, " ", text).split())


def check_readable(text: str, tables: list[Table], width: int = 80) -> None:
    assert "…" not in text
    assert max(cell_len(line.rstrip()) for line in text.splitlines()) <= width
    shown = words(text)
    for table in tables:
        for column in table.columns:
            for word in str(column.header).split():
                assert word in shown, f"header word {word!r} of {column.header!r} is not whole"


def test_result_tables_at_80_columns_keep_every_header_word_and_number(board):
    tables = list(rich_tables(board))
    text = render(tables, 80, keep=2)
    check_readable(text, tables)
    assert {"Test", "Worst-group", "Avg.", "Speed-up", "non-member"} <= words(text)
    shown = words(text)
    for table in tables:  # every method and every number, whole
        for column in table.columns[1:]:
            for value in column.cells:
                assert all(part in shown for part in str(value).split()), value
    # Rank and Method repeat beside each part of a table split for the width
    assert text.count("┃ Rank ┃ Method") > len(tables)


def test_result_tables_unchanged_where_they_fit(board):
    tables = list(rich_tables(board))
    plain = Console(width=400, record=True, color_system=None)
    for table in tables:
        plain.print(table)
    assert render(tables, 400, keep=2) == plain.export_text()


def test_the_claims_table_at_80_columns(board):
    table = rich_table(evaluate(board, n_resamples=200))
    console = Console(width=80, record=True, color_system=None)
    print_fitted(console, table, keep=2, pack="words")  # as the CLI prints it
    text = console.export_text()
    check_readable(text, [table])
    assert {"Spearman,", "bootstrap", "contradicted", "inconclusive"} <= words(text)
    assert "adult/g2-r0.9-skew1.0" in text  # a task id, whole (it was "adult/g2-r…")


@pytest.mark.parametrize("what", ["methods", "tasks"])
def test_the_listings_at_80_columns(cli, monkeypatch, what):
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = cli("list", what)
    assert code == 0
    headers = ["method", "description", "paper", "gold"] if what == "methods" else ["task", "dataset", "g*", "forget size", "skew", "default"]
    table = Table(*headers)
    check_readable(out, [table])
    if what == "tasks":
        assert "waterbirds/g2-r0.9-uniform" in out and "shapes/g2-r0.9-skew1.0" in out


def test_a_table_too_narrow_for_its_words_folds_rather_than_cuts():
    table = Table("Name", "Reason")
    table.add_row("x", Foldable("/a/very/long/path/that/does/not/fit/anywhere/at/all.py: " * 3))
    text = render(table, 30)
    assert "…" not in text and max(cell_len(line) for line in text.splitlines()) <= 30
    assert "Reason" in words(text)
    console = Console(width=80)
    assert console.measure(fitted(table)).maximum >= 30  # measures as the table
