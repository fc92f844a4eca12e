"""The fault drill: does to `unlearn-bench run` on the tiny task what a hostile environment
does, and prints a table of each fault's outcome, exit status, data lost and time to recover
(the closing table of issue 10). Each fault runs the real CLI in a subprocess.

    python scripts/fault_drill.py [--workdir DIR]

Data lost counts result cells that had finished before the fault and were not found intact
(same key, same numbers) afterwards. Time to recover is the wall time of the run that repairs
the fault (a resume, a rebuild); '–' where the fault ends the run with a clean error.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
TINY = {
    "datasets": {"shapes": {"n_train": 240, "n_val": 40, "n_test": 80}},
    "recipe": {"epochs": 1},
    "seeds": [0],
    "hparams": {"finetune": {"epochs": 1}},
    "tasks": ["shapes/g2-r0.9-skew1.0"],
    "workers": 1,
}
METHODS = ["original", "retrain", "finetune"]
PLUGINS = ROOT / "tests" / "faulty_methods.py"
COST = ("seconds", "speedup", "memory")


def command(directory: Path, *extra: str, methods: list[str] = METHODS, config: dict | None = None) -> list[str]:
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(config or TINY))
    return [sys.executable, "-m", "benchmark.cli", "run", "--config", str(path), "--out", str(directory / "runs"),
            "--leaderboard", str(directory / "leaderboard"), "--methods", *methods, *extra]  # fmt: skip


def run(directory: Path, *extra: str, **kwargs) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    result = subprocess.run(command(directory, *extra, **kwargs), cwd=ROOT, capture_output=True, text=True)
    return result, time.monotonic() - started


def cells(directory: Path) -> dict[str, tuple[str, dict]]:
    """Each finished cell file: its key and numbers (cost aside)."""
    found = {}
    for path in (directory / "runs" / "results").rglob("seed-*.json"):
        try:
            record = json.loads(path.read_text())
        except ValueError:
            continue
        if record.get("status") == "done":
            numbers = {k: v for k, v in record["metrics"].items() if not any(c in k for c in COST)}
            found[str(path.relative_to(directory))] = (record["key"], numbers)
    return found


def lost(before: dict, after: dict) -> int:
    return sum(after.get(name) != value for name, value in before.items())


def board_numbers(directory: Path) -> dict:
    board = json.loads((directory / "leaderboard" / "leaderboard.json").read_text())
    return {(e["method"], e["task"]): {k: v["values"] for k, v in e["metrics"].items() if not any(c in k for c in COST)} for e in board["entries"]}


def signal_at(directory: Path, signum: int, after: float) -> tuple[int, dict, int]:
    """Start a run, send ``signum`` after ``after`` seconds; (exit status, cells then, orphans)."""
    process = subprocess.Popen(command(directory), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(after)
    children = [int(p.parent.name) for p in Path("/proc").glob("[0-9]*/stat") if _ppid(p) == process.pid]
    process.send_signal(signum)
    process.wait(timeout=120)
    time.sleep(12 if signum == signal.SIGKILL else 1)  # orphans of a SIGKILL exit within a few seconds
    orphans = sum(Path(f"/proc/{c}").exists() and "Z" not in _state(c) for c in children)
    return process.returncode, cells(directory), orphans


def _ppid(stat: Path) -> int:
    try:
        return int(stat.read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def drill(work: Path) -> list[tuple[str, str, str, str, str]]:
    rows = []
    reference = work / "reference"
    result, duration = run(reference)
    assert result.returncode == 0, result.stderr
    expected = board_numbers(reference)
    rows.append(("none (reference run)", "scored", str(result.returncode), "0", f"{duration:.0f} s"))

    for name, signum, fraction in (("SIGKILL early", signal.SIGKILL, 0.35), ("SIGKILL midway", signal.SIGKILL, 0.6), ("SIGKILL late", signal.SIGKILL, 0.85), ("SIGTERM", signal.SIGTERM, 0.6), ("SIGINT (Ctrl-C)", signal.SIGINT, 0.6)):
        directory = work / f"{name.split()[0].lower()}-{fraction}"
        code, before, orphans = signal_at(directory, signum, duration * fraction)
        resumed, seconds = run(directory)
        same = board_numbers(directory) == expected
        outcome = f"{len(before)} cells kept, {orphans} orphan processes; resume exit {resumed.returncode}, leaderboard {'identical' if same else 'DIFFERENT'}"
        rows.append((f"{name} at {fraction:.0%} of the run", outcome, str(code), str(lost(before, cells(directory))), f"{seconds:.0f} s"))

    directory = work / "plugins"
    broken = ("Diverges", "Raises", "Wraps", "Halves", "Hangs")
    result, seconds = run(directory, "--timeout", "45", methods=[*METHODS, *(f"{PLUGINS}:{b}" for b in broken)])
    board = json.loads((directory / "leaderboard" / "leaderboard.json").read_text())
    for b in broken:
        reason = next((f["error"] for f in board["failed"] if f["method"] == b), "NOT FAILED")
        rows.append((f"plugin {b}", f"failed cell: {reason[:70]}", str(result.returncode), "0", "–"))
    rows.append(("(the same run)", f"{len(board['entries'])} other methods scored", str(result.returncode), "0", f"{seconds:.0f} s"))

    directory = work / "corrupt"
    shutil.copytree(reference / "runs", directory / "runs")
    before = cells(directory)
    runs = directory / "runs"
    victims = {
        "garbage original checkpoint": next(runs.glob("cache/models/original-*.pt")),
        "truncated result file": next(runs.glob("results/**/finetune/seed-0.json")),
        "truncated predictions": next(runs.glob("results/**/retrain/seed-0.preds.npz")),
        "garbage dataset cache file": next(runs.glob("cache/datasets/*/train.x.npy")),
    }
    for label, path in victims.items():
        data = path.read_bytes()
        path.write_bytes(os.urandom(len(data)) if "garbage" in label else data[: len(data) // 2])
    result, seconds = run(directory, methods=[*METHODS, "neggrad"])
    for label, path in victims.items():
        named = str(path if "dataset" not in label else path.parent) in result.stderr
        rows.append((label, f"{'named, moved to quarantine/, rebuilt' if named else 'NOT NAMED'}", str(result.returncode), "–", "–"))
    repaired = {k: v for k, v in board_numbers(directory).items() if k[0] != "neggrad"} == expected
    rows.append(("(the same repair run, + neggrad)", f"leaderboard {'identical' if repaired else 'DIFFERENT'}", str(result.returncode), str(lost(before, cells(directory))), f"{seconds:.0f} s"))

    directory = work / "concurrent"
    processes = [subprocess.Popen(command(directory, methods=[*METHODS, "neggrad"]), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    started = time.monotonic()
    outputs = [p.communicate() for p in processes]
    ran = [int(out.split(" cells run")[0].split()[-1]) for out, _ in outputs]
    same = {k: v for k, v in board_numbers(directory).items() if k[0] in METHODS} == expected
    rows.append(("two runs started together on one --out", f"cells run {ran[0]} + {ran[1]} = {sum(ran)} of 4; leaderboard {'identical' if same else 'DIFFERENT'}", f"{processes[0].returncode}, {processes[1].returncode}", "0", f"{time.monotonic() - started:.0f} s"))

    directory = work / "subset"
    shutil.copytree(reference / "runs", directory / "runs")
    result, seconds = run(directory, "--precision", "32-true", methods=["finetune"])
    rows.append(("subset run (--methods finetune --precision 32-true) on a full store", f"{result.stdout.split(' cells run')[0].split()[-1]} cells run; leaderboard {'full' if board_numbers(directory) == expected else 'SHRUNK'}", str(result.returncode), "0", f"{seconds:.0f} s"))

    directory = work / "stale-gold"
    shutil.copytree(reference / "runs", directory / "runs")
    changed = {**TINY, "datasets": {"shapes": {**TINY["datasets"]["shapes"], "n_train": 300}}}
    result, seconds = run(directory, methods=["retrain"], config=changed)
    refused = json.loads((directory / "leaderboard" / "leaderboard.json").read_text())["refused"]
    rows.append(("dataset changed, only the gold re-run", f"{len(refused)} old cells refused and named, not scored", str(result.returncode), "0", "–"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, help="where the drill's runs go (default: a temporary directory)")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="fault-drill-"))
    rows = drill(work)
    print("| fault | outcome | exit | cells lost | time to recover |")
    print("|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
