"""The task guide (docs/writing-a-task.md) and its worked example (examples/csv_task/): the code
the guide shows is the code in the files, the example runs through the CLI from its file and
installed as a package, a suite file's faults are one line, file tasks reach worker processes,
and a dataset's method settings take their place in the hyper-parameters' precedence."""

from __future__ import annotations

import dataclasses
import pickle
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from benchmark import registry
from benchmark.errors import BenchmarkError
from benchmark.method import default_hparams
from benchmark.run import tuned
from benchmark.run.keys import resolved_hparams
from benchmark.run.runner import Runner
from benchmark.run.spec import build_spec
from tests.conftest import read_json

ROOT = Path(__file__).parents[2]
GUIDE = ROOT / "docs" / "writing-a-task.md"
EXAMPLE = ROOT / "examples" / "csv_task"
SUITE = "examples/csv_task/csv_task.py:tasks"
EXAMPLE_FILES = ("csv_task.py", "config.yaml", "pyproject.toml")
#: a marker line naming a file, then the fenced block that must equal that file
SHOWN = re.compile(r"<!-- file: (?P<path>\S+) -->\n```\w*\n(?P<code>.*?)```", re.S)
#: the tiny run: r = 0.5 only (two tasks), one seed, one epoch, one method and its gold
TINY_RUN = {"methods": ["finetune"], "recipe": {"epochs": 1}, "seeds": [0], "hparams": {"finetune": {"epochs": 1}}, "workers": 1}
TASK_IDS = {"csv_task/g2-r0.5-skew1.0", "csv_task/g2-r0.5-uniform"}


# -- the guide shows the example as it is ----------------------------------------------------


def test_the_guide_shows_each_example_file_exactly():
    shown = {m["path"]: m["code"] for m in SHOWN.finditer(GUIDE.read_text())}
    assert set(shown) == {f"examples/csv_task/{f}" for f in EXAMPLE_FILES}
    for path, code in shown.items():
        assert code == (ROOT / path).read_text(), f"docs/writing-a-task.md shows {path} differently from the file"


def test_every_python_block_of_the_guide_compiles():
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), re.S)
    assert len(blocks) >= 2
    for block in blocks:
        compile(block, str(GUIDE), "exec")


def test_the_packaged_example_registers_the_suite_under_its_files_stem():
    project = yaml.safe_load((EXAMPLE / "config.yaml").read_text())
    assert project["tasks"] == [SUITE] and set(project["datasets"]) == {"csv_task"}
    import tomllib

    pyproject = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())
    assert pyproject["project"]["entry-points"]["unlearn_bench.tasks"] == {"csv_task": "csv_task:tasks"}


# -- the worked example, end to end ------------------------------------------------------------


def _run(cli, tmp_path: Path, name: str, tasks: str, **config) -> tuple[int, str, Path]:
    (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump({**TINY_RUN, "tasks": [tasks], **config}))
    code, out, err = cli("run", "--config", str(tmp_path / f"{name}.yaml"), "--out", str(tmp_path / name),
                         "--leaderboard", str(tmp_path / f"{name}-board"))
    return code, err, tmp_path / f"{name}-board" / "leaderboard.json"


@pytest.mark.slow
def test_the_example_runs_from_its_file(cli, tmp_path, monkeypatch, one_thread):
    """From the repository root, as the guide says; the cells run in a worker process, which
    gets the file's tasks by pickle. The leaderboard lists the example's tasks, and MIU's
    settings on them come from the dataset."""
    monkeypatch.chdir(ROOT)
    code, err, board = _run(cli, tmp_path, "from-file", f"{SUITE}:forget_size=0.5")
    assert code == 0, err
    assert {t["id"] for t in read_json(board)["tasks"]} == TASK_IDS
    assert {(e["method"], e["task"]) for e in read_json(board)["entries"]} == {(m, t) for m in ("finetune", "retrain") for t in TASK_IDS}
    result = read_json(tmp_path / "from-file" / "results" / "csv_task" / "g2-r0.5-skew1.0" / "finetune" / "seed-0.json")
    assert result["status"] == "done" and result["task"]["dataset_title"] == "CSV table (synthetic)"
    spec = build_spec({**TINY_RUN, "methods": ["miu"], "tasks": [SUITE]})
    miu = next(m for m in spec.methods if m.name == "miu")
    assert all(spec.method_arguments(miu, t)["lr"] == 0.01 for t in spec.tasks)


@pytest.mark.slow
def test_the_example_runs_installed_as_a_package(cli, tmp_path, monkeypatch, one_thread):
    """``pip install`` of examples/csv_task (a copy: the build leaves files beside it) into a
    folder on the path: the suite is an entry point, named by its entry point's name, its
    settings under that name (here a CSV file written by the example)."""
    project = tmp_path / "project"
    project.mkdir()
    for name in ("csv_task.py", "pyproject.toml"):
        shutil.copy(EXAMPLE / name, project / name)
    site = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index", "--target", str(site), str(project)]
    subprocess.run(pip, check=True, capture_output=True)
    assert (site / "csv_task.py").is_file()
    monkeypatch.syspath_prepend(str(site))
    registry._entry_points.cache_clear()
    try:
        assert "csv_task" in registry.suite_names()
        import csv_task  # the installed module, as `python csv_task.py table.csv` runs it

        assert Path(csv_task.__file__).parent == site
        (tmp_path / "table.csv").write_text(csv_task.synthetic_csv())
        code, err, board = _run(cli, tmp_path, "installed", "csv_task:forget_size=0.5,skew=1.0", data={"csv_task": str(tmp_path / "table.csv")})
        assert code == 0, err
        assert {t["id"] for t in read_json(board)["tasks"]} == {"csv_task/g2-r0.5-skew1.0"}
        result = read_json(tmp_path / "installed" / "results" / "csv_task" / "g2-r0.5-skew1.0" / "retrain" / "seed-0.json")
        assert result["status"] == "done" and result["task"]["dataset_title"] == "CSV table (table.csv)"
    finally:
        sys.modules.pop("csv_task", None)
        registry._entry_points.cache_clear()


def test_the_example_reads_its_csv_file_as_it_reads_the_synthetic_table(tmp_path):
    sys.path.insert(0, str(EXAMPLE))
    try:
        import csv_task
    finally:
        sys.path.remove(str(EXAMPLE))
        sys.modules.pop("csv_task", None)
    (tmp_path / "table.csv").write_text(csv_task.synthetic_csv())
    synthetic, from_file = csv_task.CsvSource(), csv_task.CsvSource(path=str(tmp_path / "table.csv"))
    assert synthetic.fingerprint() == from_file.fingerprint()  # the content names the data, not the path
    assert synthetic.model.in_features == 5 and synthetic.recipe.epochs == 8
    data = synthetic.load(tmp_path / "cache")
    assert [len(data.split(s)) for s in ("train", "val", "test")] == [720, 240, 240]
    assert float(data.train.x.min()) == 0.0 and float(data.train.x.max()) == 1.0
    assert min(data.group_counts("train")) == data.group_counts("train")[2]  # g* = 2 is the smallest group
    assert data.group_name(2) == "label=1, group=0"
    with pytest.raises(BenchmarkError, match="csv_task: .* has no column 'race'"):
        csv_task.CsvSource(attribute="race").table()


# -- a suite from a file: names, settings, faults ---------------------------------------------

SUITE_FILE = '''
from dataclasses import dataclass

import numpy as np

from benchmark import ModelSpec, PresetSource, Recipe, Task

ROWS = {"train": 80, "val": 20, "test": 20}


@dataclass(frozen=True)
class Tiny(PresetSource):
    rows: int = 80
    preset: str = "quick"
    name: str = "tiny_table"

    presets = {"quick": (ModelSpec(backbone="mlp:8", image_size=0, mean=(), std=(), channels_last=False, in_features=3),
                         Recipe(epochs=1, batch_size=16))}
    method_settings = SETTINGS

    def identity(self):
        return {"version": 1, "rows": self.rows}

    def write(self, out, report):
        rng = np.random.default_rng(0)
        for split, n in {**ROWS, "train": self.rows}.items():
            g = np.arange(n) % 4
            out.put(split, rng.random((n, 3)).astype(np.float32), g // 2, g % 2)
        out.finish(num_classes=2, num_attributes=2, augment="none")


def tasks(rows: int = 80, preset: str = "quick"):
    return [Task(Tiny(rows, preset), 2, 0.5), Task(Tiny(rows, preset), 2, 0.5, skew="uniform")]
'''


def write_suite(folder: Path, settings: str = "{}", name: str = "tiny_suite.py", body: str = SUITE_FILE) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(body.replace("SETTINGS", settings))
    return path


def test_a_suite_file_takes_overrides_and_its_settings_under_its_stem(tmp_path):
    suite = write_suite(tmp_path)
    tasks = registry.load_tasks(f"{suite}:tasks")
    assert [t.id for t in tasks] == ["tiny_table/g2-r0.5-skew1.0", "tiny_table/g2-r0.5-uniform"]
    assert [t.id for t in registry.load_tasks(f"{suite}:tasks:skew=0.5,forget_size=10")] == ["tiny_table/g2-n10-skew0.5"]
    spec = build_spec({"methods": ["finetune"], "tasks": [f"{suite}:tasks"], "datasets": {"tiny_suite": {"rows": 40}}, "preset": "quick"})
    assert {(t.source.rows, t.source.preset) for t in spec.tasks} == {(40, "quick")}
    with pytest.raises(BenchmarkError, match=r"datasets.tiny_table: no task suite 'tiny_table'; known: .*tiny_suite"):
        build_spec({"methods": ["finetune"], "tasks": [f"{suite}:tasks"], "datasets": {"tiny_table": {"rows": 40}}})


def test_file_tasks_reach_a_fresh_process_by_pickle(tmp_path):
    """A spawned worker (CUDA) or a Ray node has not imported the suite file: its tasks pickle
    by the way to build their source's class again there, and keep their state."""
    suite = write_suite(tmp_path / "suite")
    spec = build_spec({"methods": ["finetune"], "tasks": [f"{suite}:tasks"], "datasets": {"tiny_suite": {"rows": 44}}})
    (tmp_path / "spec.pickle").write_bytes(pickle.dumps(spec))
    (tmp_path / "elsewhere").mkdir()
    show = ("import pickle, sys; spec = pickle.load(open(sys.argv[1], 'rb')); "
            "print([(t.id, t.source.rows, t.source.fingerprint(), type(t.source).__name__) for t in spec.tasks])")
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", show, str(tmp_path / "spec.pickle")], cwd=tmp_path / "elsewhere",
                          capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == repr([(t.id, 44, t.source.fingerprint(), "Tiny") for t in spec.tasks])
    again = pickle.loads(pickle.dumps(spec.tasks))  # in this process: the very same class
    assert again == spec.tasks and type(again[0].source) is type(spec.tasks[0].source)


FAULTS = {
    "no file": ("missing.py:tasks", None, r"plugin file not found: missing\.py"),
    "no function": ("suite.py:tasks", "def other():\n    return []\n", r"plugin file suite\.py has no 'tasks'"),
    "import fails": ("suite.py:tasks", "import not_a_module_anywhere\n", r"suite\.py failed to import: ModuleNotFoundError"),
    "raises": ("suite.py:tasks", "def tasks():\n    raise RuntimeError('no table here')\n",
               r"task suite suite\.py:tasks failed with settings \{\}: RuntimeError: no table here"),
    "not tasks": ("suite.py:tasks", "def tasks():\n    return [1, 2]\n",
                  r"task suite suite\.py:tasks must return a list of benchmark\.Task, not a list holding a int"),
    "nothing": ("suite.py:tasks", "def tasks():\n    return None\n", r"must return a list of benchmark\.Task, not a NoneType"),
    "no tasks": ("suite.py:tasks", "def tasks():\n    return []\n", r"task suite suite\.py:tasks returned no tasks"),
    "not a function": ("suite.py:tasks", "tasks = 3\n", r"task suite suite\.py:tasks is not a function"),
    "bad name": ("suite.py:my-tasks", "", r"expected FILE\.py:FUNCTION"),
    "no function named": ("suite.py", "", r"name the function that returns its tasks, suite\.py:FUNCTION"),
    "bad override": ("suite.py:tasks:size=3", SUITE_FILE.replace("SETTINGS", "{}"), r"a task has no setting 'size'"),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_faulty_suite_file_is_one_line_and_exit_2(cli, tmp_path, fault):
    given, body, message = FAULTS[fault]
    if body is not None:
        (tmp_path / "suite.py").write_text(body)
    code, out, err = cli("run", "--tasks", given, "--methods", "finetune")
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert re.search(message, err), err


def test_settings_a_suite_file_does_not_take_are_one_line(cli, tmp_path):
    write_suite(tmp_path, name="suite.py")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({"tasks": ["suite.py:tasks"], "datasets": {"suite": {"colour": "red"}}}))
    code, out, err = cli("run", "--config", str(tmp_path / "c.yaml"), "--methods", "finetune")
    assert code == 2 and err.count("\n") == 1
    assert "task suite suite.py:tasks failed with settings {'colour': 'red'}: TypeError" in err and "colour" in err


# -- a dataset's method settings: precedence and checks ---------------------------------------

LEVELS = '''
from benchmark import UnlearningMethod


class Levels(UnlearningMethod):
    name = "levels"
    dataset_overrides = {"tiny_table": {"from_method": 1.0, "from_dataset": 1.0, "from_tuned": 1.0, "from_user": 1.0}}

    def __init__(self, model, original, data, *, from_default: float = 0.0, from_method: float = 0.0,
                 from_dataset: float = 0.0, from_tuned: float = 0.0, from_user: float = 0.0, epochs: int = 0, **common):
        super().__init__(model, original, data, epochs=epochs, **common)
'''


def levels_spec(tmp_path: Path, settings: str, **config):
    method = tmp_path / "levels.py"
    method.write_text(LEVELS)
    suite = write_suite(tmp_path, settings)
    base = {"methods": [f"{method}:Levels"], "tasks": [f"{suite}:tasks"], "seeds": [0], "out": str(tmp_path / "runs"),
            "tuned": str(tmp_path / "tuned")}
    return build_spec({**base, **config})


def test_the_precedence_of_hyper_parameters_level_by_level(tmp_path):
    """defaults < the method's dataset_overrides < the dataset's method_settings < tuned < hparams."""
    spec = levels_spec(tmp_path, '{"levels": {"from_dataset": 2.0, "from_tuned": 2.0, "from_user": 2.0}}',
                       hparams={"levels": {"from_user": 4.0}})
    levels, task = next(m for m in spec.methods if m.name == "levels"), spec.tasks[0]
    entry = {"hparams": {"from_tuned": 3.0, "from_user": 3.0}, "trials": 2}
    tuned.write(spec.tuned, task, spec.tuning_context(task), {"trials": 2}, "levels", entry)
    arguments = {**default_hparams(levels.cls), **spec.method_arguments(levels, task)}
    assert {k: v for k, v in arguments.items() if k.startswith("from_")} == {
        "from_default": 0.0, "from_method": 1.0, "from_dataset": 2.0, "from_tuned": 3.0, "from_user": 4.0
    }
    assert spec.tuning_of(levels, task)["overridden"] == ["from_user"]
    # each level taken away in turn: the one below shows through
    assert dataclasses.replace(spec, hparams={}).method_arguments(levels, task)["from_user"] == 3.0
    assert dataclasses.replace(spec, hparams_from="defaults").method_arguments(levels, task)["from_tuned"] == 2.0
    plain = levels_spec(tmp_path, "{}")
    assert plain.method_arguments(levels, plain.tasks[0])["from_dataset"] == 1.0
    assert "from_default" not in plain.method_arguments(levels, plain.tasks[0])


def test_a_datasets_settings_for_the_rw_variant_and_in_the_cell_key(tmp_path):
    spec = levels_spec(tmp_path, '{"finetune": {"lr": 0.02}, "finetune+rw": {"lr": 0.03}, "levels": {"from_dataset": 5.0}}',
                       methods=["finetune", "finetune+rw"])
    finetune, rw = (next(m for m in spec.methods if m.name == n) for n in ("finetune", "finetune+rw"))
    assert spec.method_arguments(finetune, spec.tasks[0])["lr"] == 0.02
    assert spec.method_arguments(rw, spec.tasks[0])["lr"] == 0.03
    runner = Runner(spec)
    cell = next(c for c in runner.plan() if c.method.name == "finetune")
    assert resolved_hparams(runner.spec, cell)["lr"] == 0.02
    other = Runner(levels_spec(tmp_path, '{"finetune": {"lr": 0.04}}', methods=["finetune"]))
    same = next(c for c in other.plan() if c.method.name == "finetune" and c.task.id == cell.task.id)
    assert other.index.key(same) != runner.index.key(cell)  # the dataset's settings are in the key


@pytest.mark.parametrize(
    "settings, message",
    [
        ('{"levels": {"lrr": 0.1}}', r"dataset tiny_table: method_settings\.levels: method levels has no hyper-parameter 'lrr'"),
        ('{"finetune": {"lr": "fast"}}', r"dataset tiny_table: method_settings\.finetune\.lr must be"),
        ('{"finetune": {"epochs": -1}}', r"dataset tiny_table: method_settings\.finetune\.epochs must be"),
        ('{"finetune": {"reweight": True}}', r"method_settings\.finetune\.reweight: REWEIGHT is chosen by .*\+rw"),
        ('{"finetune": 0.1}', r"dataset tiny_table: method_settings must map method names to mappings"),
    ],
)
def test_bad_method_settings_of_a_dataset_are_one_line_naming_it(tmp_path, settings, message):
    with pytest.raises(BenchmarkError, match=message) as caught:
        levels_spec(tmp_path, settings, methods=[f"{tmp_path / 'levels.py'}:Levels", "finetune"])
    assert "\n" not in str(caught.value)


def test_settings_for_a_method_not_installed_are_not_used(tmp_path):
    spec = levels_spec(tmp_path, '{"someone_elses_method": {"anything": 1}}', methods=["finetune"])
    assert spec.tasks
