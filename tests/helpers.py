"""Building and running one method on a tiny task, outside the CLI; reading a leaderboard's numbers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable

import torch
from torch.nn import functional as F

from benchmark.inference import predict_probs
from benchmark.run.runner import Cell, Runner
from benchmark.run.spec import build_spec
from tests.conftest import TINY


# an original that has learnt something (TINY's barely has), for tests that compare outputs
TRAINED = {"datasets": {"shapes": {"n_train": 480, "n_val": 40, "n_test": 80}}, "recipe": {"epochs": 4}}


#: the cache of a store holding the tiny originals, trained once per session (set by
#: tests/integration/conftest.py; None in the unit tier, whose tests start cold)
warm_cache: Callable[[], Path] | None = None


def tiny_runner(tmp_path: Path, methods: list[str], trained: bool = False, **config) -> Runner:
    """A runner of ``methods`` on the tiny shapes task (``trained``: with an original that has
    learnt something), its store under ``tmp_path``, started from ``warm_cache`` when there is one:
    an original of the same key is then loaded, not trained."""
    base = {**TINY, **(TRAINED if trained else {})}
    hparams = {**TINY["hparams"], **config.pop("hparams", {})}
    spec = build_spec(
        {**base, "out": str(tmp_path / "runs"), "hparams": hparams, **config}, methods=methods, tasks=["shapes/g2-r0.9-skew1.0"]
    )
    if warm_cache is not None and not spec.out.exists():
        shutil.copytree(warm_cache(), spec.out / "cache")
    return Runner(spec)


def cell(runner: Runner, name: str) -> Cell:
    return next(c for c in runner.plan() if c.method.name == name)


def forget_loss(model: torch.nn.Module, method) -> float:
    """Mean CE of ``model`` on the method's forget rows (eval mode, no augmentation)."""
    data = method.data
    x, y = data.dataset.train.x[data.forget_idx], data.dataset.train.y[data.forget_idx]
    probs = predict_probs(model, x)
    return F.nll_loss(probs.clamp_min(1e-12).log(), y).item()


COST = ("seconds", "speedup", "memory")  # what may differ between two runs of the same cells


def board_numbers(leaderboard: Path) -> dict:
    """A leaderboard directory's per-seed numbers, cost metrics aside, by (method, task)."""
    board = json.loads((leaderboard / "leaderboard.json").read_text())
    return {
        (e["method"], e["task"]): {k: v["values"] for k, v in e["metrics"].items() if not any(c in k for c in COST)}
        for e in board["entries"]
    }


def workers_of(pid: int) -> list[int]:
    """Live processes whose parent is ``pid`` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def one_line_error(cli, *args: str) -> str:
    """The one ``error:`` line of a CLI call that must fail without a traceback."""
    code, out, err = cli(*args)
    assert code != 0
    assert "Traceback" not in out + err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]
