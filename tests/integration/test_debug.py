"""``--debug`` on a non-finite loss: the traceback names the method's own lines that returned
it (not only the engine's check that found it); without ``--debug`` nothing is installed."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from benchmark.run import debugging
from tests.helpers import cell, tiny_runner

PLUGIN = '''
from torch.nn import functional as F
from benchmark import UnlearningMethod


class NaNPenalty(UnlearningMethod):
    def __init__(self, model, original, data, *, epochs: int = 1, **common):
        super().__init__(model, original, data, epochs=epochs, **common)

    def train_dataloader(self):
        return self.loader("retain")

    def penalty(self, logits):
        return logits.sum() * float("nan")  # PENALTY LINE

    def training_step(self, batch, batch_idx):
        logits = self.model(batch.x)
        loss = F.cross_entropy(logits, batch.y) + self.penalty(logits)
        return self.scaled(loss)  # STEP LINE

    def scaled(self, loss):
        return loss  # SCALED LINE
'''

ROOT = Path(__file__).resolve().parents[2]


def line_of(path: Path, marker: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if marker in line)


def test_a_non_finite_loss_names_the_methods_lines_in_debug_mode_only(tmp_path, monkeypatch, one_thread):
    plugin = tmp_path / "nan_penalty.py"
    plugin.write_text(PLUGIN)
    runner = tiny_runner(tmp_path, [f"{plugin}:NaNPenalty"])
    target = cell(runner, "NaNPenalty")

    # without --debug: no profile hook, no traceback, the one-line reason
    monkeypatch.delenv(debugging.ENV, raising=False)
    hooks = []
    monkeypatch.setattr(debugging.LossWatch, "start", lambda self: hooks.append(self))
    outcome = runner.cells.execute(target)
    assert outcome.status == "failed" and outcome.error == "non-finite loss (nan) at epoch 0, batch 0"
    assert hooks == [] and outcome.record.traceback == ""
    monkeypatch.undo()

    # with --debug (the switch the CLI sets for its workers): the method's own lines
    monkeypatch.setenv(debugging.ENV, "1")
    runner.cells.debug = True
    outcome = runner.cells.execute(target)  # the failed cell runs again
    assert outcome.status == "failed" and outcome.error == "non-finite loss (nan) at epoch 0, batch 0"  # still one line
    assert sys.getprofile() is None  # the hook is gone with the step
    text = outcome.record.traceback
    assert "CellFailure: non-finite loss (nan) at epoch 0, batch 0" in text
    after = text.split("CellFailure: non-finite loss", 1)[1]
    step, scaled, penalty = (line_of(plugin, m) for m in ("STEP LINE", "SCALED LINE", "PENALTY LINE"))
    assert f'File "{plugin}", line {step}, in training_step\n    return self.scaled(loss)' in after
    assert f'File "{plugin}", line {scaled}, in scaled\n    return loss' in after
    assert after.index("in training_step") < after.index("in scaled")  # outermost first
    assert "the first non-finite value the method's code returned in that step:" in after
    assert f'File "{plugin}", line {penalty}, in penalty\n    return logits.sum() * float("nan")' in after
    assert "site-packages" not in after and f"{os.sep}benchmark{os.sep}" not in after  # only the method's frames


@pytest.mark.slow
def test_debug_on_the_command_line_shows_the_methods_frame(cli, tiny_config):
    faulty = ROOT / "tests" / "faulty_methods.py"
    code, _, err = cli("run", "--config", str(tiny_config), "--tasks", "shapes/g2-r0.9-skew1.0", "--workers", "1",
                       "--methods", f"{faulty}:Diverges", "--debug")
    assert code == 1
    line = line_of(faulty, 'return F.cross_entropy(self.model(batch.x), batch.y) * float("nan")')
    tail = err.split("CellFailure: non-finite loss (nan) at epoch 0, batch 0", 1)[1]
    assert "the method's code that returned the non-finite loss" in tail
    assert f'File "{faulty}", line {line}, in training_step' in tail
    assert debugging.ENV not in os.environ  # the switch is the run's only
