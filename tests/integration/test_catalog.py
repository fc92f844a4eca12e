"""The metric catalog against what uses it: its own consistency, docs/metrics.md, and the
keys of a real tiny run's result cells and leaderboard entries (no name missing, none extra)."""

import json
import re
from pathlib import Path

import pytest
import yaml

from benchmark.cli import main
from benchmark.metrics import catalog
from benchmark.report.scoring import seed_scores
from tests.conftest import TINY
from tests.unit.test_scoring import CELLS

DOCS = Path(__file__).parents[2] / "docs" / "metrics.md"
CELL_SOURCES = ("predictions", "original", "attack", "run")  # what a result cell measures itself


def definitions(text: str) -> dict[str, str]:
    """Each JSON name defined in a ``| name | definition |`` table (the backticked names of a
    row's first cell), with the heading of the section it is in."""
    found, section, in_table = {}, "", False
    for line in text.splitlines():
        if line.startswith("## "):
            section = line[3:]
        if re.fullmatch(r"\|\s*name\s*\|\s*definition\s*\|", line.strip()):
            in_table = True
        elif not line.startswith("|"):
            in_table = False
        elif in_table and not line.startswith("|---"):
            found.update(dict.fromkeys(re.findall(r"`([^`]+)`", line.split("|")[1]), section))
    return found


# -- the catalog itself -----------------------------------------------------------------
def test_names_are_unique_and_columns_are_numbered_in_order():
    names = [m.name for m in catalog.METRICS]
    assert len(names) == len(set(names))
    assert [m.column for m in catalog.columns()] == list(range(1, len(catalog.columns()) + 1))
    assert all(m.column is not None for m in catalog.METRICS if m.terminal)


def test_find_resolves_group_names_and_nothing_else():
    assert catalog.find("group_acc/12").name == "group_acc/<g>"
    assert catalog.find("group_acc/x") is None and catalog.find("test_acc/0") is None
    assert catalog.select(["group_acc/0", "pgd_acc", "avg_gap", "nope"], "predictions") == ["group_acc/0"]
    assert catalog.missing(["group_acc/3"], ["predictions"]) == [n for n in catalog.names(source="predictions") if n != "group_acc/<g>"]


def test_a_record_refuses_an_unknown_choice():
    with pytest.raises(ValueError, match="source"):
        catalog.Metric("x", "utility", "X", "percent", "higher", "somewhere", "ours")


def test_scoring_adds_exactly_the_catalogs_gold_metrics():
    for cell, gold in ((CELLS[2], CELLS[0]), (CELLS[0], None)):  # a method against its gold; a gold row
        metrics, _ = seed_scores(cell, gold)
        added = [k for k in metrics if k not in cell["metrics"]]
        assert sorted(added) == sorted(catalog.names(source="gold"))


# -- docs/metrics.md ------------------------------------------------------------------
def test_every_name_is_defined_in_the_docs_under_its_family_and_nothing_else_is():
    defined = definitions(DOCS.read_text())
    assert sorted(set(catalog.names()) - set(defined)) == []  # in the catalog, not defined in the docs
    assert sorted(set(defined) - set(catalog.names())) == []  # defined in the docs, not in the catalog
    misplaced = [m.name for m in catalog.METRICS if m.family not in defined[m.name].lower()]
    assert misplaced == []


# -- a real tiny run ------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """original (and its gold, retrain) on one shapes task and seed, through the CLI."""
    root = tmp_path_factory.mktemp("catalog")
    (root / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    code = main(["run", "--config", str(root / "tiny.yaml"), "--methods", "original",
                 "--tasks", "shapes/g2-r0.9-skew1.0", "--seeds", "0", "--workers", "1",
                 "--out", str(root / "runs"), "--leaderboard", str(root / "leaderboard")])
    assert code == 0
    return root


def budget_names(record: dict) -> set[str]:
    """The optional names a record carries: those of the AutoAttack budget its attacks met."""
    budget = record["metric_settings"]["attacks"]["budget"]
    return {f"autoattack_{budget}_acc", f"autoattack_{budget}_worst_group_acc"}


def assert_catalog_keys(keys: list[str], sources: tuple[str, ...], optional: set[str]) -> None:
    assert [k for k in keys if catalog.find(k) is None] == []  # no key without its catalog entry
    assert catalog.missing(keys, sources) == []  # no catalog name of those sources missing
    assert {k for k in keys if catalog.find(k).optional} == optional


@pytest.mark.slow
def test_a_result_cell_carries_exactly_the_catalogs_names(tiny_run):
    cells = [json.loads(p.read_text()) for p in sorted((tiny_run / "runs" / "results").rglob("seed-0.json"))]
    assert sorted(c["method"] for c in cells) == ["original", "retrain"]
    for c in cells:
        keys = list(c["metrics"])
        # of the gold metrics a cell may store the speed-up (scoring recomputes it), no other
        assert [k for k in catalog.select(keys, "gold") if k != "speedup_vs_gold"] == []
        assert_catalog_keys(keys, CELL_SOURCES, budget_names(c))


@pytest.mark.slow
def test_a_leaderboard_entry_carries_exactly_the_catalogs_names(tiny_run):
    board = json.loads((tiny_run / "leaderboard" / "leaderboard.json").read_text())
    cell = json.loads(next((tiny_run / "runs" / "results").rglob("seed-0.json")).read_text())
    assert sorted(e["method"] for e in board["entries"]) == ["original", "retrain"]
    for e in board["entries"]:
        assert_catalog_keys(list(e["metrics"]), catalog.SOURCES, budget_names(cell))
        assert [k for k in e["gap_to_gold"] if catalog.find(k) is None] == []
