"""``unlearn-bench submit``: a plugin from outside the repository validated, run on a tiny custom
grid and written as a leaderboard entry that every later leaderboard build merges in."""

import json
import re
from pathlib import Path

import pytest
import yaml

from tests.conftest import read_json
from tests.integration.test_cli import PLUGIN as CLI_PLUGIN
from tests.helpers import one_line_error

PLUGIN = CLI_PLUGIN + '''
class NoDefault(SmoothFinetune):
    def __init__(self, model, original, data, *, smoothing, **common):
        super().__init__(model, original, data, smoothing=smoothing, **common)
'''
TASK = "shapes/g2-r0.9-skew1.0"
PROVENANCE = {"plugin", "source_hash", "versions", "spec_hash", "hardware", "precision", "grid", "created", "tuned"}


@pytest.fixture
def plugin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A plugin file outside the repository and the working directory."""
    path = tmp_path_factory.mktemp("elsewhere") / "smooth.py"
    path.write_text(PLUGIN)
    return path


def methods_in(board: dict) -> set[str]:
    return {e["method"] for e in board["entries"]}


@pytest.mark.slow
def test_submit_writes_an_entry_that_the_leaderboard_merges(cli, tiny_config, plugin, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # the terminal tables show whole names
    config = yaml.safe_load(tiny_config.read_text())
    tiny_config.write_text(yaml.safe_dump({**config, "tune": {"trials": 2}}))
    code, out, err = cli("submit", f"{plugin}:SmoothFinetune", "--config", str(tiny_config), "--tasks", TASK, "--seeds", "0")
    assert code == 0, err
    assert "all 7 checks passed" in out and 'the entry is marked grid "custom"' in out
    assert "tuning" in out and "SmoothFinetune · shapes/g2-r0.9-skew1.0: 2 trials" in out.replace("\n", " ")
    entry = read_json(Path("leaderboard/entries/SmoothFinetune.json"))
    assert entry["schema_version"] == 1 and entry["method"] == "SmoothFinetune"
    provenance = entry["provenance"]
    assert set(provenance) == PROVENANCE
    assert provenance["plugin"] == "smooth.py:SmoothFinetune" and provenance["grid"] == "custom" and provenance["precision"] == "32-true"
    assert len(provenance["source_hash"]) == 16 and len(provenance["spec_hash"]) == 16 and "torch" in provenance["versions"]
    [cell] = entry["cells"]
    assert cell == read_json(Path(f"runs/results/{TASK}/SmoothFinetune/seed-0.json"))  # the cell as stored
    assert provenance["tuned"] is True and cell["tuning"]["from"] == "tuned" and cell["tuning"]["trials"] == 2
    tuned = yaml.safe_load(Path("configs/tuned/shapes.yaml").read_text())
    assert cell["hparams"]["lr"] == tuned["tasks"][TASK]["methods"]["SmoothFinetune"]["hparams"]["lr"]
    assert "SmoothFinetune" in methods_in(read_json(Path("leaderboard/leaderboard.json")))
    md = Path("leaderboard/leaderboard.md").read_text()
    assert re.search(r"\| SmoothFinetune( ≈ gold)? · tuned, 2 trials \|", md) and "## Tuning: the same trial budget for every method" in md
    assert "| SmoothFinetune | shapes/g2-r0.9-skew1.0 | 2 | 0 |" in md  # its study: trials, failed trials, ...
    assert "SmoothFinetune" in Path("leaderboard/index.html").read_text()
    code, out, _ = cli("leaderboard", "--show")
    assert code == 0 and "SmoothFinetune" in out and "retrain" in out

    # the store loses the plugin's cells: the entry still puts them on the leaderboard
    for path in Path(f"runs/results/{TASK}/SmoothFinetune").iterdir():
        path.unlink()
    code, out, err = cli("leaderboard", "--runs", "runs", "--leaderboard", "leaderboard")
    assert code == 0, err
    assert "and 1 from leaderboard/entries" in out.replace("\n", " ")
    board = read_json(Path("leaderboard/leaderboard.json"))
    assert "SmoothFinetune" in methods_in(board)
    smooth = next(e for e in board["entries"] if e["method"] == "SmoothFinetune")
    assert smooth["gap_to_gold"]  # scored against the store's gold

    # a corrupt entry is named in one warning and skipped; nothing else is lost
    Path("leaderboard/entries/broken.json").write_text("{not json")
    Path("leaderboard/entries/stale.json").write_text(json.dumps({**entry, "schema_version": 0}))
    code, out, err = cli("leaderboard", "--runs", "runs", "--leaderboard", "leaderboard")
    assert code == 0
    warnings = [line for line in err.splitlines() if line.strip()]
    assert len(warnings) == 2 and all(line.startswith("warning: skipped the leaderboard entry leaderboard/entries/") for line in warnings)
    assert "broken.json: not JSON (" in warnings[0] and "stale.json: " in warnings[1]
    assert methods_in(read_json(Path("leaderboard/leaderboard.json"))) == methods_in(board)

    # --no-tune: the hand-set settings, and the entry says so
    code, out, err = cli("submit", f"{plugin}:SmoothFinetune", "--config", str(tiny_config), "--tasks", TASK, "--seeds", "0", "--no-tune")
    assert code == 0, err
    entry = read_json(Path("leaderboard/entries/SmoothFinetune.json"))
    assert entry["provenance"]["tuned"] is False and entry["cells"][0]["tuning"] == {"from": "defaults"}


def test_a_plugin_that_fails_validation_is_not_submitted(cli, plugin):
    code, out, err = cli("submit", f"{plugin}:NoDefault")
    assert code == 1 and "✗" in out and "Traceback" not in out + err
    assert err.strip().endswith("hyper-parameter 'smoothing' has no default")
    assert not Path("leaderboard").exists() and not Path("runs/results").exists()


def test_show_without_a_leaderboard(cli):
    line = one_line_error(cli, "leaderboard", "--show", "--leaderboard", "nowhere")
    assert line == "error: no leaderboard at nowhere/leaderboard.json: build one with `unlearn-bench run` or `unlearn-bench leaderboard`"
