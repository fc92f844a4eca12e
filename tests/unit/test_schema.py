"""The published JSON Schema (benchmark/schema.json): it is a valid Draft 2020-12
schema; the leaderboard (the committed one, and one scored now) matches it; a broken field is
named by its JSON path in one line; older leaderboards read with the new fields empty; result
cells are checked on write and on read; submission entry files."""

from __future__ import annotations

import copy
import json
from dataclasses import fields
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from benchmark.errors import BenchmarkError
from benchmark.report import leaderboard
from benchmark.report.leaderboard import SCHEMA_PATH, Entry, Leaderboard, Stat, validate
from benchmark.schema import validate_submission
from benchmark.report.scoring import score
from benchmark.run.record import CELL_SCHEMA_VERSION, DONE, FAILED, MEASURED, CellRecord, read_record, write_record
from benchmark.run.store import Store
from tests.unit.test_scoring import CELLS

COMMITTED = Path(__file__).parents[2] / "leaderboard" / "leaderboard.json"


def schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())


def one_line_error(data, match: str) -> str:
    with pytest.raises(BenchmarkError, match=match) as info:
        validate(data)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_the_schema_is_draft_2020_12_and_the_board_matches_it():
    Draft202012Validator.check_schema(schema())
    data = score(CELLS).to_json()
    Draft202012Validator(schema()).validate(data)  # plain jsonschema, the root of the file
    assert data["schema_version"] == leaderboard.SCHEMA_VERSION == 5
    assert set(data["statistics"]) >= {"level", "seeds", "bootstrap", "n_resamples", "rank_band", "like_gold"}
    ga = next(e for e in data["entries"] if e["method"] == "ga")
    assert set(ga) >= {"rank_band", "vs_gold", "like_gold"} and set(ga["metrics"]["test_acc"]) == {"mean", "std", "n", "values", "ci", "boot"}


def test_the_committed_leaderboard_validates():
    data = json.loads(COMMITTED.read_text())
    validate(data)
    Leaderboard.load(COMMITTED)


@pytest.mark.parametrize(
    "breakage, path",
    [
        (lambda d: d["entries"][0]["metrics"]["test_acc"]["values"].__setitem__(0, "80"), r"\$\.entries\[0\]\.metrics\.test_acc\.values\[0\]: '80' is not of type"),
        (lambda d: d["entries"][1].update(rank="first"), r"\$\.entries\[1\]\.rank: 'first' is not of type"),
        (lambda d: d["entries"][2]["metrics"]["avg_gap"].pop("ci"), r"\$\.entries\[2\]\.metrics\.avg_gap: 'ci' is a required property"),
        (lambda d: d["entries"][2]["metrics"]["avg_gap"].update(ci=[2.0]), r"\$\.entries\[2\]\.metrics\.avg_gap\.ci: \[2\.0\] is too short"),
        (lambda d: d["entries"][3].update(vs_gold={"test_acc": [1.0, 0.0]}), r"\$\.entries\[3\]\.vs_gold\.test_acc: low 1\.0 is above high 0\.0"),
        (lambda d: d["entries"][0]["metrics"]["test_acc"].update(n=5), r"\$\.entries\[0\]\.metrics\.test_acc\.n: n = 5 but 2 values"),
        (lambda d: d["statistics"].pop("level"), r"\$\.statistics: 'level' is a required property"),
        (lambda d: d["tasks"][0].update(skew="steep"), r"\$\.tasks\[0\]\.skew"),
    ],
)
def test_a_broken_field_is_named_by_its_path_in_one_line(breakage, path):
    data = score(CELLS).to_json()
    breakage(data)
    message = one_line_error(data, path)
    assert message.startswith("leaderboard does not match schema 5: $.")


def test_an_older_file_reads_with_the_new_fields_empty(tmp_path):
    data = score(CELLS).to_json()
    data["schema_version"] = 3
    del data["statistics"]
    for e in data["entries"]:
        for key in ("rank_band", "vs_gold", "like_gold", "tuning"):
            del e[key]
        for s in e["metrics"].values():
            del s["ci"], s["boot"]
    (tmp_path / "old.json").write_text(json.dumps(data))
    board = Leaderboard.load(tmp_path / "old.json")
    ga = next(e for e in board.entries if e.method == "ga")
    assert ga.rank == 1 and ga.rank_band is None and ga.vs_gold == {} and ga.like_gold is None
    assert ga.metrics["test_acc"].ci is None and ga.metrics["test_acc"].boot is None and board.statistics == {} and ga.tuning == {"from": "defaults"}
    validate(board.to_json())  # and written back as it is, still schema 3
    fresh = copy.deepcopy(data)
    fresh["schema_version"] = 4  # but a schema-4 file must carry them
    one_line_error(fresh, r"\$: 'statistics' is a required property")
    newest = score(CELLS).to_json()
    del newest["entries"][0]["tuning"]  # and a schema-5 file each entry's tuning
    one_line_error(newest, r"\$\.entries\[0\]: 'tuning' is a required property")


# -- result cells ---------------------------------------------------------------------
TASK = {"id": "toy/g2-n10-skew1.0", "dataset": "toy", "forget_group": 2, "forget_size": 10, "skew": 1.0}


def record(**changes) -> CellRecord:
    return CellRecord(key="abc", status="done", method="ft", task=TASK, seed=0, gold_method="retrain",
                      metrics={"test_acc": 80.0, "ece": float("nan")}, **changes)


def test_the_schema_names_the_dataclasses_fields_and_versions():
    defs = schema()["$defs"]
    assert set(defs["cell"]["properties"]) == {f.name for f in fields(CellRecord)}
    assert defs["cell"]["properties"]["status"]["enum"] == [DONE, FAILED, MEASURED]
    assert defs["cell"]["properties"]["schema_version"]["const"] == CELL_SCHEMA_VERSION
    assert defs["leaderboard"]["properties"]["schema_version"]["enum"] == list(leaderboard.READABLE)
    assert defs["entry_v5"]["required"] == list(defs["entry"]["properties"]) == [f.name for f in fields(Entry)]
    assert defs["entry_v4"]["required"] == [f.name for f in fields(Entry) if f.name != "tuning"]  # what version 5 added
    assert list(defs["stat"]["properties"]) == [f.name for f in fields(Stat)]


def test_a_cell_round_trips_and_matches_the_schema():
    text = record().to_json()
    Draft202012Validator({**schema(), "$ref": "#/$defs/cell"}).validate(json.loads(text))
    again = CellRecord.from_json(text)
    assert again.metrics["test_acc"] == 80.0 and again.metrics["ece"] != again.metrics["ece"]  # null read back as NaN


@pytest.mark.parametrize(
    "change, path",
    [
        (lambda d: d.update(seed="0"), r"\$\.seed: '0' is not of type 'integer'"),
        (lambda d: d["metrics"].update(test_acc="80"), r"\$\.metrics\.test_acc: '80' is not of type"),
        (lambda d: d.update(status="running"), r"\$\.status: 'running' is not one of"),
        (lambda d: d.update(colour="blue"), r"\$: Additional properties are not allowed \('colour'"),
        (lambda d: d["task"].pop("skew"), r"\$\.task: 'skew' is a required property"),
    ],
)
def test_a_cell_that_does_not_match_is_refused_on_read(change, path):
    data = json.loads(record().to_json())
    change(data)
    with pytest.raises(ValueError, match=path) as info:
        CellRecord.from_json(json.dumps(data))
    assert "\n" not in str(info.value)


def test_a_wrong_cell_in_the_store_counts_as_corrupt(tmp_path):
    store = Store(tmp_path, warn=lambda message: None)
    path = store.cell(TASK["id"], "ft", 0)
    write_record(store, path, record())
    assert read_record(store, path).metrics["test_acc"] == 80.0
    data = json.loads(path.read_text())
    data["metrics"]["test_acc"] = "80"
    path.write_text(json.dumps(data))
    path.with_name(path.name + ".sha256").unlink()  # a file with no digest, adopted only if its reader accepts it
    assert read_record(store, path) is None
    assert not path.exists() and list((tmp_path / "quarantine").rglob("seed-0.json*"))


def test_a_cell_that_does_not_match_is_not_written():
    bad = record()
    bad.metrics = {"test_acc": "high"}
    with pytest.raises(ValueError, match=r"\$\.metrics\.test_acc: 'high' is not of type"):
        bad.to_json()


# -- submission entry files -----------------------------------------------------------
def submission() -> dict:
    cell = json.loads(record().to_json())
    return {
        "schema_version": 1,
        "method": "ft",
        "provenance": {"plugin": "methods.finetune:Finetune", "source_hash": "c598967e85330c13",
                       "versions": {"torch": "2.5.1"}, "spec_hash": "0123abcd", "hardware": "cpu",
                       "precision": "32-true", "grid": "official", "created": "2026-01-01T00:00:00Z"},
        "cells": [cell, {**cell, "seed": 1}],
    }


@pytest.mark.parametrize(
    "change, path",
    [
        (lambda d: d["provenance"].pop("grid"), r"\$\.provenance: 'grid' is a required property"),
        (lambda d: d["provenance"].update(grid="mine"), r"\$\.provenance\.grid: 'mine' is not one of"),
        (lambda d: d.update(schema_version=2), r"\$\.schema_version: 1 was expected"),
        (lambda d: d["cells"][1].update(seed=None), r"\$\.cells\[1\]\.seed: None is not of type 'integer'"),
        (lambda d: d["cells"].append(d["cells"][0]), r"\$\.cells\[2\]: a second cell of task toy/g2-n10-skew1\.0, method ft, seed 0"),
        (lambda d: d.update(cells=[]), r"\$\.cells: \[\] should be non-empty"),
    ],
)
def test_submission_entries(change, path):
    validate_submission(submission())
    data = submission()
    change(data)
    with pytest.raises(BenchmarkError, match=path) as info:
        validate_submission(data)
    assert str(info.value).startswith("not a submission entry of schema 1: $") and "\n" not in str(info.value)
