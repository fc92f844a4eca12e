"""A broken plugin (a method or task suite registered by an installed package that cannot be
loaded) is listed as broken with its one-line reason; everything else still lists and runs;
naming it is one error line; a default selection leaves it out with a warning line."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from benchmark import registry
from benchmark.run.spec import build_spec
from tests.conftest import TINY
from tests.helpers import one_line_error

MODULES = ("unlearn_bench_test_broken", "unlearn_bench_test_raises")
ENTRY_POINTS = """\
[unlearn_bench.methods]
brokenm = unlearn_bench_test_broken:Method
notamethod = unlearn_bench_test_raises:NotAMethod

[unlearn_bench.tasks]
brokent = unlearn_bench_test_broken:tasks
raisest = unlearn_bench_test_raises:tasks
"""


@pytest.fixture
def broken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """An installed package (a dist-info on sys.path) whose plugins are broken: one module fails
    to import; the other imports, but names a class that is no method and a suite that raises."""
    root = tmp_path / "site"
    dist = root / "unlearn_bench_test_broken-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: unlearn-bench-test-broken\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(ENTRY_POINTS)
    (root / "unlearn_bench_test_broken.py").write_text('raise ImportError("no module named torchvisionx")\n')
    (root / "unlearn_bench_test_raises.py").write_text(
        "class NotAMethod:\n    pass\n\ndef tasks(**settings):\n    raise RuntimeError('the data server is down')\n"
    )
    monkeypatch.setattr(registry, "_warned", set(), raising=False)
    monkeypatch.setenv("COLUMNS", "300")
    sys.path.insert(0, str(root))
    registry._entry_points.cache_clear()
    yield root
    sys.path.remove(str(root))
    for name in MODULES:
        sys.modules.pop(name, None)
    registry._entry_points.cache_clear()


def flat(text: str) -> str:
    """Table text with its borders and line breaks as single spaces."""
    return " ".join(re.sub(r"[│┃┏┓┗┛━─┳┻╇┡┩└┘┴┬╋┼]", " ", text).split())


def test_listings_show_broken_plugins_with_their_reason_and_everything_else(cli, broken):
    code, out, err = cli("list", "methods")
    assert code == 0, err
    text = flat(out)
    assert "brokenm broken: method plugin 'brokenm' (unlearn_bench_test_broken:Method) failed to load: ImportError: no module named torchvisionx" in text
    assert "notamethod broken: method 'notamethod' (unlearn_bench_test_raises:NotAMethod) is not an UnlearningMethod subclass" in text
    assert all(name in text for name in ("finetune", "retrain", "scrub", "original"))

    code, out, err = cli("list", "tasks")
    assert code == 0, err
    text = flat(out)
    assert "brokent broken: task plugin 'brokent' (unlearn_bench_test_broken:tasks) failed to load: ImportError: no module named torchvisionx" in text
    assert "raisest broken: task suite 'raisest' failed to build its tasks: RuntimeError: the data server is down" in text
    assert "shapes/g2-r0.9-skew1.0" in text and "adult/g2-r0.9-uniform" in text


def test_a_broken_row_at_80_columns_folds_without_cutting_the_other_rows(cli, broken, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = cli("list", "tasks")
    assert code == 0 and "…" not in out
    assert "waterbirds/g2-r0.9-uniform" in out  # the longest task id, whole
    assert "torchvisionx" in flat(out).replace(" ", "")  # the reason folds over lines, not cut


def test_naming_a_broken_plugin_is_one_error_line(cli, broken):
    line = one_line_error(cli, "run", "--methods", "brokenm", "--tasks", "shapes")
    assert line == "error: method plugin 'brokenm' (unlearn_bench_test_broken:Method) failed to load: ImportError: no module named torchvisionx"
    line = one_line_error(cli, "run", "--methods", "finetune", "--tasks", "brokent")
    assert "task plugin 'brokent'" in line and "ImportError: no module named torchvisionx" in line
    assert "not an UnlearningMethod" in one_line_error(cli, "run", "--methods", "notamethod")
    line = one_line_error(cli, "run", "--methods", "finetune", "--tasks", "raisest")  # its factory raises
    assert line == "error: task suite 'raisest' failed to build its tasks: RuntimeError: the data server is down"


def test_a_run_of_other_plugins_does_not_load_the_broken_ones(broken, capsys):
    spec = build_spec({**TINY, "tasks": None}, methods=["finetune"], tasks=["shapes"])
    assert [m.name for m in spec.methods] == ["retrain", "finetune"]  # the gold is found among the broken
    assert {t.id.split("/")[0] for t in spec.tasks} == {"shapes"}
    assert capsys.readouterr().err == ""  # nothing to warn about: nothing broken was asked for


def test_a_default_selection_leaves_broken_plugins_out_with_a_line_naming_each(broken, capsys):
    spec = build_spec({**TINY, "tasks": None})  # the default methods and the default tasks
    methods = {m.name for m in spec.methods}
    assert {"finetune", "retrain", "original"} <= methods and not {"brokenm", "notamethod"} & methods
    assert {t.id.split("/")[0] for t in spec.tasks} >= {"shapes"}
    assert not [t for t in spec.tasks if t.id.split("/")[0] in ("brokent", "raisest")]
    warnings = capsys.readouterr().err.splitlines()
    assert warnings == [
        "warning: method 'brokenm' left out of the default methods: method plugin 'brokenm' "
        "(unlearn_bench_test_broken:Method) failed to load: ImportError: no module named torchvisionx",
        "warning: method 'notamethod' left out of the default methods: method 'notamethod' "
        "(unlearn_bench_test_raises:NotAMethod) is not an UnlearningMethod subclass (got <class 'unlearn_bench_test_raises.NotAMethod'>)",
        "warning: task suite 'brokent' left out of the default tasks: task plugin 'brokent' "
        "(unlearn_bench_test_broken:tasks) failed to load: ImportError: no module named torchvisionx",
        "warning: task suite 'raisest' left out of the default tasks: task suite 'raisest' failed to build its tasks: "
        "RuntimeError: the data server is down",
    ]
    build_spec({**TINY, "tasks": None})
    assert capsys.readouterr().err == ""  # said once per process


def test_validate_finds_its_smoke_task_past_broken_suites(broken):
    from benchmark.submit.check import smoke_task

    assert smoke_task().source.name not in ("brokent", "raisest")
