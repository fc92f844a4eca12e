"""The plugin guide (docs/writing-a-method.md) and its worked example (examples/my_method/):
the code the guide shows is the code in the files, the example runs through the CLI, and the
behaviours the guide promises (names, hyper-parameters by name, helper modules) hold."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml

from benchmark.errors import BenchmarkError
from benchmark.registry import load_method
from benchmark.run.spec import build_spec
from benchmark.run.validate import build_method
from tests.conftest import TINY, read_json
from tests.helpers import cell, tiny_runner

ROOT = Path(__file__).parents[2]
GUIDE = ROOT / "docs" / "writing-a-method.md"
EXAMPLE = ROOT / "examples" / "my_method"
PLUGIN = "examples/my_method/my_method.py:MyMethod"
TASK = "shapes/g2-r0.9-skew1.0"
#: a marker line naming a file, then the fenced block that must equal that file
SHOWN = re.compile(r"<!-- file: (?P<path>\S+) -->\n```\w*\n(?P<code>.*?)```", re.S)

PLAIN = '''
from benchmark import UnlearningMethod

class MyMethod(UnlearningMethod):
    {attribute}
    def __init__(self, model, original, data, *, strength: float = 1.0, epochs: int = 1, **common):
        super().__init__(model, original, data, epochs=epochs, **common)

    def train_dataloader(self):
        return self.loader("retain")
'''

USES_HELPER = '''
from benchmark import UnlearningMethod
from helpers import VALUE

class UsesHelper(UnlearningMethod):
    value = VALUE
'''


def write_plugin(folder: Path, attribute: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "plugin.py"
    path.write_text(PLAIN.format(attribute=attribute))
    return path


# -- the guide shows the example as it is ----------------------------------------------------


def test_the_guide_shows_each_example_file_exactly():
    shown = {m["path"]: m["code"] for m in SHOWN.finditer(GUIDE.read_text())}
    assert set(shown) == {f"examples/my_method/{f}" for f in ("my_method.py", "helpers.py", "config.yaml")}
    for path, code in shown.items():
        assert code == (ROOT / path).read_text(), f"docs/writing-a-method.md shows {path} differently from the file"


@pytest.mark.parametrize("page", [GUIDE, ROOT / "README.md"], ids=["guide", "readme"])
def test_every_python_block_compiles(page):
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(), re.S)
    assert blocks
    for block in blocks:
        compile(block, str(page), "exec")


# -- names and hyper-parameters ----------------------------------------------------------------


def test_a_file_plugin_gets_its_hparams_by_its_name_attribute(tmp_path):
    plugin = write_plugin(tmp_path / "a", 'name = "my_method"')
    runner = tiny_runner(tmp_path, [f"{plugin}:MyMethod"], hparams={"my_method": {"strength": 0.25, "lr": 0.02}})
    c = cell(runner, "my_method")
    data = runner.artefacts.task_data(c.task, c.seed)
    method = build_method(c.method, data.initial_model(), data, runner.spec.method_arguments(c.method, c.task))
    assert method.hparams.strength == 0.25 and method.hparams.lr == 0.02
    with pytest.raises(BenchmarkError, match=r"hparams.MyMethod: no method 'MyMethod'.*my_method"):
        tiny_runner(tmp_path, [f"{plugin}:MyMethod"], hparams={"MyMethod": {"strength": 0.25}})


def test_without_a_name_attribute_a_plugin_goes_by_its_class_name(tmp_path):
    plugin = write_plugin(tmp_path / "a")
    assert load_method(f"{plugin}:MyMethod").name == "MyMethod"
    assert load_method(f"{plugin}:MyMethod+rw").name == "MyMethod+rw"


def test_two_plugins_of_one_class_name_are_told_to_set_a_name(tmp_path):
    a, b = write_plugin(tmp_path / "a"), write_plugin(tmp_path / "b")
    config = {**TINY, "tasks": [TASK]}
    with pytest.raises(BenchmarkError) as caught:
        build_spec(config, methods=[f"{a}:MyMethod", f"{b}:MyMethod"])
    assert "two methods are named 'MyMethod'" in str(caught.value) and "`name`" in str(caught.value)
    assert "\n" not in str(caught.value)
    b.write_text(PLAIN.format(attribute='name = "my_other_method"'))
    spec = build_spec(config, methods=[f"{a}:MyMethod", f"{b}:MyMethod"])
    assert {"MyMethod", "my_other_method"} <= {m.name for m in spec.methods}


@pytest.mark.parametrize("name", ["my method", "a/b", "x+rw", "", 3])
def test_a_name_that_cannot_name_results_is_refused(tmp_path, name):
    plugin = write_plugin(tmp_path / "a", f"name = {name!r}")
    if name == "":  # empty: the class name
        assert load_method(f"{plugin}:MyMethod").name == "MyMethod"
        return
    with pytest.raises(BenchmarkError, match=r"name .* must be a string of letters, digits"):
        load_method(f"{plugin}:MyMethod")


# -- modules beside the plugin file ------------------------------------------------------------


def test_a_plugin_imports_the_module_beside_it_and_each_folder_gets_its_own(tmp_path):
    refs = []
    for folder, value in (("one", 1), ("two", 2)):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "helpers.py").write_text(f"VALUE = {value}\n")
        (tmp_path / folder / "plugin.py").write_text(USES_HELPER)
        refs.append(load_method(f"{tmp_path / folder / 'plugin.py'}:UsesHelper"))
    assert [r.cls.value for r in refs] == [1, 2]
    assert str(tmp_path / "one") not in sys.path and "helpers" not in sys.modules  # nothing left behind


def test_a_plugin_beside_a_package_imported_before_leaves_its_modules_loaded(tmp_path, monkeypatch):
    """A plugin file in a folder that holds a package already in use (a plugin in the root of a
    clone, beside ``benchmark/``) must not unload that package's modules."""
    (tmp_path / "sharedpkg").mkdir()
    (tmp_path / "sharedpkg" / "__init__.py").write_text("")
    (tmp_path / "sharedpkg" / "extra.py").write_text("VALUE = 3\n")
    (tmp_path / "plugin.py").write_text(USES_HELPER.replace("from helpers import", "from sharedpkg.extra import"))
    monkeypatch.syspath_prepend(str(tmp_path))
    import sharedpkg

    assert load_method(f"{tmp_path / 'plugin.py'}:UsesHelper").cls.value == 3
    assert "sharedpkg.extra" in sys.modules and sharedpkg.extra is sys.modules["sharedpkg.extra"]
    for name in ("sharedpkg.extra", "sharedpkg"):
        monkeypatch.delitem(sys.modules, name)


def test_a_missing_helper_module_is_one_line(tmp_path):
    (tmp_path / "plugin.py").write_text(USES_HELPER)
    with pytest.raises(BenchmarkError, match=r"failed to import: ModuleNotFoundError: No module named 'helpers'$"):
        load_method(f"{tmp_path / 'plugin.py'}:UsesHelper")


# -- the worked example, end to end ------------------------------------------------------------


@pytest.mark.slow
def test_the_worked_example_runs_from_its_config(cli, tmp_path, monkeypatch):
    """The example's config, run from the repository root as the guide says, on the tiny data
    and one task; the cell runs in a worker process, which imports the plugin (and its helper)
    again."""
    config = yaml.safe_load((EXAMPLE / "config.yaml").read_text())
    assert PLUGIN in config["methods"] and config["hparams"]["my_method"]["forget_weight"] == 0.5
    tiny = {**config, **{k: TINY[k] for k in ("datasets", "recipe", "seeds")}, "tasks": [TASK]}
    tiny["methods"] = [PLUGIN]  # the gold is added; the other methods only add time
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(tiny))
    monkeypatch.chdir(ROOT)
    code, out, err = cli("run", "--config", str(tmp_path / "tiny.yaml"), "--out", str(tmp_path / "runs"),
                         "--leaderboard", str(tmp_path / "leaderboard"))
    assert code == 0, err
    result = read_json(tmp_path / "runs" / "results" / TASK / "my_method" / "seed-0.json")
    assert result["status"] == "done" and result["method_source"] == PLUGIN
    assert result["hparams"]["forget_weight"] == 0.5 and result["hparams"]["epochs"] == 2
    board = read_json(tmp_path / "leaderboard" / "leaderboard.json")
    assert {e["method"] for e in board["entries"]} == {"my_method", "retrain"}


def test_editing_a_module_beside_a_plugin_changes_its_source_hash(tmp_path):
    """A cell's key holds its method's source hash: for a file plugin, the helper modules beside
    it count too, so editing one re-runs its cells instead of reusing stale ones."""
    from benchmark.registry import load_method
    from benchmark.run.keys import source_hash

    (tmp_path / "helper_mod.py").write_text("SCALE = 1\n")
    plugin = tmp_path / "plugin_beside.py"
    plugin.write_text(PLUGIN_USING_A_HELPER)
    before = source_hash(load_method(f"{plugin}:UsesHelper").cls)
    (tmp_path / "helper_mod.py").write_text("SCALE = 2\n")
    after = source_hash(load_method(f"{plugin}:UsesHelper").cls)
    assert before and after and before != after


PLUGIN_USING_A_HELPER = """
from helper_mod import SCALE

from benchmark import UnlearningMethod


class UsesHelper(UnlearningMethod):
    def __init__(self, model, original, data, *, epochs: int = 0, **common):
        super().__init__(model, original, data, epochs=epochs, **common)
"""
