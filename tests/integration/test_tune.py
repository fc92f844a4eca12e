"""Tuning: search spaces from declared ranges, the tuned settings' precedence and label, a
leak-free objective (poisoned TEST labels and reported seeds change nothing), a killed study
that resumes as if it had not been killed, and two processes sharing one study."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import torch
import yaml

from benchmark import Range, Search, UnlearningMethod
from benchmark.errors import BenchmarkError
from benchmark.registry import load_method
from benchmark.run import tuned
from benchmark.run.spec import build_spec
from benchmark.task import Task
from benchmark.tune.objective import tuning_view
from benchmark.tune.space import search_space
from benchmark.tune.study import open_study, plan_studies, settled
from benchmark.tune.tuning import tune
from tasks.shapes import ShapesSource
from tests.conftest import TINY

TASK = "shapes/g2-r0.9-skew1.0"
FAST = {**TINY, "tasks": [TASK], "hparams": {}}


# -- the search space ------------------------------------------------------------------


class Plain(UnlearningMethod):
    def __init__(self, model, original, data, *, beta: float = 0.5, steps: int = 4, **common) -> None:
        super().__init__(model, original, data, **common)


def _space(cls: type) -> dict[str, Any]:
    return {d.name: d for d in search_space(cls, cls.__name__)}


def test_the_space_is_the_common_ranges_log_where_they_span_decades_and_integers_as_integers():
    space = _space(Plain)
    assert set(space) == {"lr", "epochs", "weight_decay", "batch_size"}  # the method's own: only what it declares
    assert space["lr"].log and not space["lr"].integer
    assert space["epochs"].integer and space["batch_size"].integer
    assert (space["lr"].low, space["lr"].high) == (1e-4, 1e-1)


def test_a_method_adds_its_own_ranges_and_narrows_or_drops_common_ones_with_a_reason():
    class Narrowed(Plain):
        search = Search({"beta": Range(0.1, 0.9), "steps": Range(1, 100), "lr": Range(1e-3, 1e-2), "epochs": None}, reason="why")

    space = _space(Narrowed)
    assert "epochs" not in space and (space["lr"].low, space["lr"].high) == (1e-3, 1e-2)
    assert not space["beta"].log and not space["beta"].integer  # 9x: uniform
    assert space["steps"].integer and space["steps"].log


@pytest.mark.parametrize(
    "search, message",
    [
        (Search({"lr": Range(1e-5, 1e-1)}, reason="r"), "widens the common range"),
        (Search({"epochs": Range(1, 50)}, reason="r"), "widens the common range"),
        (Search({"lr": Range(1e-3, 1e-2)}), "needs a reason"),
        (Search({"gamma": Range(0, 1)}), "has no such hyper-parameter"),
        (Search({"beta": Range(0.0)}), "finite bounds"),
    ],
)
def test_a_search_declaration_cannot_widen_the_budget_or_name_what_is_not_there(search, message):
    cls = type("Bad", (Plain,), {"search": search})
    with pytest.raises(BenchmarkError, match=message):
        search_space(cls, "Bad")


def test_every_registered_method_declares_a_valid_space_and_those_that_train_search_the_lr():
    from benchmark.registry import method_names

    for name in method_names():
        ref = load_method(name)
        space = _space(ref.cls)
        if not ref.cls.is_gold and space and "lr" not in space:
            assert ref.cls.search.reason, name  # dropping the lr is said, with a reason


# -- the tuned settings file: precedence, context, label ----------------------------------


def _spec(tmp_path: Path, **config) -> Any:
    return build_spec({**FAST, "out": str(tmp_path / "runs"), "tuned": str(tmp_path / "tuned"), **config}, methods=["miu"], tasks=[TASK])


def _write_tuned(spec: Any, hparams: dict[str, Any]) -> None:
    task = spec.tasks[0]
    entry = {"hparams": hparams, "trials": 5, "failures": 1, "seconds": 12.0, "best_objective": 1.5}
    tuned.write(spec.tuned, task, spec.tuning_context(task), {"trials": 5}, "miu", entry)


def test_tuned_settings_sit_between_the_dataset_overrides_and_the_users_hparams(tmp_path):
    spec = _spec(tmp_path, hparams={"miu": {"lambda_mi": 3.0}})
    _write_tuned(spec, {"lr": 0.05, "lambda_mi": 2.0})
    miu, task = next(m for m in spec.methods if m.name == "miu"), spec.tasks[0]
    arguments = spec.method_arguments(miu, task)
    assert arguments["epochs"] == 3  # MIU's shapes override, not tuned
    assert arguments["lr"] == 0.05  # tuned beats the dataset override (0.01)
    assert arguments["lambda_mi"] == 3.0  # the user's hparams beat tuned
    assert spec.tuning_of(miu, task) == {"from": "tuned", "trials": 5, "failures": 1, "seconds": 12.0, "best_objective": 1.5, "overridden": ["lambda_mi"]}

    defaults = dataclasses.replace(spec, hparams_from="defaults")
    assert defaults.method_arguments(miu, task)["lr"] == 0.01
    assert defaults.tuning_of(miu, task) == {"from": "defaults"}


def test_tuned_settings_found_for_another_recipe_or_dataset_are_not_used(tmp_path):
    spec = _spec(tmp_path)
    _write_tuned(spec, {"lr": 0.05})
    for changed in (_spec(tmp_path, recipe={"epochs": 2}), _spec(tmp_path, datasets={"shapes": {"n_train": 200, "n_val": 40, "n_test": 80}})):
        miu = next(m for m in changed.methods if m.name == "miu")
        assert changed.method_arguments(miu, changed.tasks[0])["lr"] == 0.01
        assert changed.tuning_of(miu, changed.tasks[0]) == {"from": "defaults"}


def test_reported_seeds_and_tuning_seeds_never_meet(tmp_path):
    with pytest.raises(BenchmarkError, match="tuning seeds"):
        _spec(tmp_path, seeds=[0, 1000])
    with pytest.raises(BenchmarkError, match="tune.seeds"):
        _spec(tmp_path, tune={"seeds": [2]})
    with pytest.raises(BenchmarkError, match="tune.trials"):
        _spec(tmp_path, tune={"trials": 0})


def test_the_tuning_view_puts_val_in_tests_place_and_is_named_apart():
    from benchmark.dataset import GroupDataset, Split

    def split(n: int, offset: int) -> Split:
        return Split(torch.arange(n).float()[:, None] + offset, torch.zeros(n, dtype=torch.long), torch.zeros(n, dtype=torch.long))

    ds = GroupDataset("d", split(8, 0), split(4, 100), split(6, 200), 2, 2, "fp")
    view = tuning_view(ds)
    assert torch.equal(view.test.x, ds.val.x) and torch.equal(view.val.x, ds.val.x) and torch.equal(view.train.x, ds.train.x)
    assert view.fingerprint != ds.fingerprint and len(view.groups("test")) == 4


# -- a leak-free objective -------------------------------------------------------------


@dataclass(frozen=True)
class ShuffledTest(ShapesSource):
    """Shapes with TEST's labels shuffled (and groups with them): any leak of TEST into tuning shows."""

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "poisoned": "test labels shuffled"}

    def write(self, out, report=None) -> None:
        super().write(out, report)
        rng = np.random.default_rng(7)
        for part in ("y", "a"):
            path = out.directory / f"test.{part}.npy"
            np.save(path, rng.permutation(np.load(path)))


@dataclass(frozen=True)
class PoisonedSeeds(Task):
    """The reported seeds' forget sets are nonsense (all of g*'s rows and then some)."""

    reported: ClassVar[int] = 1000

    def split(self, dataset, seed: int):
        if seed < self.reported:
            rows = torch.arange(len(dataset.train))
            return rows[: len(rows) // 2], rows[len(rows) // 2 :]
        return super().split(dataset, seed)


def _tuned_values(tmp_path: Path, name: str, poison: bool) -> dict[str, Any]:
    spec = build_spec({**FAST, "out": str(tmp_path / name), "tuned": str(tmp_path / name / "tuned"), "tune": {"trials": 3}}, methods=["finetune"], tasks=[TASK])
    if poison:
        task = spec.tasks[0]
        source = ShuffledTest(**{f.name: getattr(task.source, f.name) for f in dataclasses.fields(task.source)})
        poisoned = PoisonedSeeds(**{**{f.name: getattr(task, f.name) for f in dataclasses.fields(task)}, "source": source})
        spec = dataclasses.replace(spec, tasks=[poisoned])
    result = tune(spec, 1, lambda line: None, lambda n: None)
    ((key, entry),) = result.entries.items()
    return {"hparams": entry["hparams"], "best": entry["best_objective"], "start": entry["start_objective"]}


def test_poisoned_test_labels_and_reported_seeds_leave_the_tuned_settings_identical(tmp_path):
    clean = _tuned_values(tmp_path, "clean", poison=False)
    poisoned = _tuned_values(tmp_path, "poisoned", poison=True)
    assert clean == poisoned


# -- a killed tune resumes; two processes share a study ---------------------------------


def _config(tmp_path: Path, trials: int, **more) -> Path:
    path = tmp_path / "tune.yaml"
    config = {**FAST, "tune": {"trials": trials}, "tuned": str(tmp_path / "tuned"), **more}
    path.write_text(yaml.safe_dump(config))
    return path


def _tune_process(config: Path, out: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "benchmark.cli", "tune", "--config", str(config), "--methods", "finetune", "--out", str(out), "--workers", "1"]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)


def _study(config: Path, out: Path) -> Any:
    spec = build_spec({**yaml.safe_load(config.read_text()), "out": str(out)}, methods=["finetune"])
    (plan,), _ = plan_studies(spec)
    return open_study(plan)


def _trials(study: Any) -> dict[int, tuple[dict, float | None]]:
    return {slot: (t.params, t.value) for slot, t in sorted(settled(study).items())}


def _wait(until, seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while not until():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_killed_tune_resumes_the_same_study_and_ends_as_an_uninterrupted_one(tmp_path):
    from optuna.trial import TrialState

    config = _config(tmp_path, trials=5)
    whole = _tune_process(config, tmp_path / "whole")  # uninterrupted, beside the one to be killed
    killed = _tune_process(config, tmp_path / "killed")
    journal = tmp_path / "killed"

    def running_after_one() -> bool:
        if not any(journal.rglob("*.journal")):
            return False
        trials = _study(config, journal).get_trials(deepcopy=False)
        done = [t for t in trials if t.state == TrialState.COMPLETE]
        return len(done) >= 1 and any(t.state == TrialState.RUNNING and "slot" in t.user_attrs for t in trials)

    _wait(running_after_one)
    os.killpg(killed.pid, signal.SIGKILL)  # the command and its worker, mid-trial
    killed.wait()
    interrupted = [t for t in _study(config, journal).get_trials() if t.state == TrialState.RUNNING]
    assert interrupted
    assert whole.wait(timeout=300) == 0, whole.stderr.read().decode()

    again = _tune_process(config, journal)
    assert again.wait(timeout=300) == 0, again.stderr.read().decode()
    study = _study(config, journal)
    assert _trials(study) == _trials(_study(config, tmp_path / "whole"))  # the same trials, the same values
    assert len(_trials(study)) == 5
    failed = [t for t in study.get_trials() if t.state == TrialState.FAIL]
    assert failed and all("error" not in t.user_attrs for t in failed)  # the interrupted one, counted for nothing


def test_two_tune_processes_on_one_study_split_its_trials(tmp_path):
    config = _config(tmp_path, trials=8, datasets={"shapes": {"n_train": 600, "n_val": 40, "n_test": 80}})
    out = tmp_path / "shared"
    first, second = _tune_process(config, out), _tune_process(config, out)
    assert first.wait(timeout=300) == 0 and second.wait(timeout=300) == 0
    study = _study(config, out)
    slots = settled(study)
    assert sorted(slots) == list(range(8))  # every slot once
    assert len({t.user_attrs["worker"] for t in slots.values()}) == 2  # and both processes ran some
    assert len(study.get_trials()) == 8  # no trial twice


@pytest.mark.parametrize("content, message", [("tasks: [1, 2", "is not valid YAML"), ("- a list", "must hold a mapping")])
@pytest.mark.parametrize("command", ["run", "tune"])
def test_a_malformed_tuned_file_is_one_error_line_before_any_work(cli, content, message, command):
    Path("configs/tuned").mkdir(parents=True)
    Path("configs/tuned/shapes.yaml").write_text(content)
    code, out, err = cli(command, "--methods", "finetune", "--tasks", TASK)
    assert code == 2 and err.startswith("error: tuned settings file configs/tuned/shapes.yaml") and message in err, err
    assert len(err.strip().splitlines()) == 1 and not Path("runs/results").exists() and not Path("runs/tuning/studies").exists()
