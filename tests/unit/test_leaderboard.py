import json
import math

import pytest

from benchmark.errors import BenchmarkError
from benchmark.metrics import catalog
from benchmark.report.leaderboard import Leaderboard, validate
from benchmark.report.render import rank_text, rich_tables, to_html, to_markdown, write_views
from benchmark.report.scoring import score
from tests.unit.test_scoring import CELLS


def board_json():
    return score(CELLS).to_json()


@pytest.mark.parametrize(
    "breakage",
    [
        lambda d: d.pop("entries"),
        lambda d: d.update(schema_version=99),
        lambda d: d["entries"][0].pop("rank"),
        lambda d: d["entries"][0].update(task="nope"),
        lambda d: d["entries"][0]["metrics"].update(test_acc={"mean": 1}),
        lambda d: d["entries"][0]["metrics"]["test_acc"].pop("values"),
        lambda d: d["entries"][0]["metrics"]["test_acc"]["values"].pop(),
        lambda d: d["entries"][0]["metrics"]["test_acc"]["values"].__setitem__(0, "80"),
        lambda d: d["entries"][0]["metrics"]["test_acc"].update(n=5),
        lambda d: d["tasks"][0].pop("skew"),
    ],
)
def test_schema_rejects_broken_files(breakage):
    data = board_json()
    breakage(data)
    with pytest.raises(BenchmarkError, match="schema"):
        validate(data)


def test_views_come_from_the_json(tmp_path):
    paths = write_views(score(CELLS), tmp_path)
    assert [p.name for p in paths][:3] == ["leaderboard.json", "leaderboard.md", "index.html"]  # and schema.json where published
    stored = Leaderboard.load(paths[0])
    md, page = paths[1].read_text(), paths[2].read_text()
    assert md == to_markdown(stored) and page == to_html(stored)
    ga = next(e for e in stored.entries if e.method == "ga")
    assert "| gold | **retrain** (gold) |" in md and f"| {rank_text(ga)} | ga" in md
    assert '<table class="board">' in page and 'data-method="ft+rw"' in page
    assert json.loads(paths[0].read_text())["schema_version"] == 5


def test_nan_is_written_as_null(tmp_path):
    board = score([CELLS[2]])  # no gold: avg gap undefined, speed-up undefined
    board.save(tmp_path / "lb.json")
    text = (tmp_path / "lb.json").read_text()
    assert "NaN" not in text


def test_an_older_schema_is_named_with_the_way_out():
    data = board_json()
    data["schema_version"] = 1
    with pytest.raises(BenchmarkError, match="schema_version is 1 .*unlearn-bench leaderboard"):
        validate(data)


def test_undefined_per_seed_values_are_null_and_read_back_as_nan(tmp_path):
    cells = [CELLS[0], CELLS[1], CELLS[2], {**CELLS[3], "metrics": {**CELLS[3]["metrics"], "test_acc": None}}]
    score(cells).save(tmp_path / "lb.json")
    data = json.loads((tmp_path / "lb.json").read_text())
    ft = next(e for e in data["entries"] if e["method"] == "ft")
    assert ft["metrics"]["test_acc"] == {"mean": 80.0, "std": 0.0, "n": 1, "values": [80.0, None], "ci": None, "boot": None}
    stat = next(e for e in Leaderboard.load(tmp_path / "lb.json").entries if e.method == "ft").metrics["test_acc"]
    assert stat.values[0] == 80.0 and math.isnan(stat.values[1])


def header(board: Leaderboard) -> list[str]:
    line = next(line for line in to_markdown(board).splitlines() if line.startswith("| Rank"))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_the_columns_are_the_catalogs_with_an_autoattack_budget_only_where_carried():
    board = score(CELLS)
    fixed = [m.label for m in catalog.columns() if not m.optional]
    assert header(board) == ["Rank", "Method", *fixed]
    stored = board.to_json()
    seeds = len(stored["entries"][0]["seeds"])
    stored["entries"][0]["metrics"]["autoattack_reduced_acc"] = {"mean": 12.5, "std": 0.0, "n": seeds, "values": [12.5] * seeds,
                                                                 "ci": [12.5, 12.5], "boot": None}
    with_reduced = Leaderboard.from_json(stored)
    assert header(with_reduced) == ["Rank", "Method", *fixed[:-1], "AutoAttack (reduced) acc", fixed[-1]]
    assert "| 12.5 ± 0.0 |" in to_markdown(with_reduced)
    terminal = next(rich_tables(board))
    assert [c.header for c in terminal.columns] == ["Rank", "Method"] + [m.label for m in catalog.columns() if m.terminal]
