"""The integration tier's fixtures: its tiny originals (TINY's and TRAINED's, seed 0), trained
once per session in a child process and copied into the store of each ``tiny_runner`` (a child,
because training in the pytest process leaves autograd's threads behind, which later
fork-started workers cannot live with); and ``cli_at_root``, the CLI run in this process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

from tests import helpers
from tests.conftest import CLI

ROOT = Path(__file__).resolve().parents[2]
TRAIN_ORIGINALS = """
import sys
from pathlib import Path
from tests.helpers import tiny_runner
for trained in (False, True):
    runner = tiny_runner(Path(sys.argv[1]), ["original"], trained=trained)
    runner.artefacts.original(runner.spec.tasks[0], 0)
"""


@pytest.fixture(scope="session")
def tiny_originals(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The cache of a store that holds both tiny originals."""
    directory = tmp_path_factory.mktemp("originals")
    done = subprocess.run([sys.executable, "-c", TRAIN_ORIGINALS, str(directory)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return directory / "runs" / "cache"


@pytest.fixture(autouse=True)
def _warm_tiny_runner(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """``tiny_runner`` starts from the session's originals (trained on first use)."""
    monkeypatch.setattr(helpers, "warm_cache", lambda: request.getfixturevalue("tiny_originals"))


@pytest.fixture
def cli_at_root(capfd: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> Callable[[list[str]], subprocess.CompletedProcess]:
    """The CLI's ``main`` called in this process from the repository root, as ``python -m
    benchmark.cli`` would run there (the same tuned settings apply), its output and its workers'
    read at the file descriptors. For a run that is not signalled or raced: it spares the
    subprocess a fresh interpreter's imports (about 6 s here)."""
    monkeypatch.chdir(ROOT)
    cli = CLI(capfd, ROOT)

    def run(args: list[str]) -> subprocess.CompletedProcess:
        capfd.readouterr()  # only this run's output
        return subprocess.CompletedProcess(args, *cli(*args))

    return run
