"""``unlearn-bench validate``: a good plugin passes every check; each broken one gets its one
line, ``FILE:LINE: what is wrong``, and exit status 1; a plugin that cannot be found, exit 2."""

import inspect
from pathlib import Path

import pytest

from tests import faulty_methods
from tests.helpers import one_line_error
from tests.integration.test_cli import PLUGIN

FAULTY = Path(faulty_methods.__file__).resolve()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One store for the module: the tiny task's data and original are made once."""
    return tmp_path_factory.mktemp("validate-store")


def line_of(obj) -> int:
    return inspect.getsourcelines(obj)[1]


def problems(cli, plugin: str, store: Path | None = None) -> list[str]:
    """The problem lines of a validation that fails (exit 1, no traceback)."""
    code, out, err = cli("validate", plugin, *(["--out", str(store)] if store else []))
    assert code == 1, out + err
    assert "Traceback" not in out + err and "✗" in out
    return [line for line in err.splitlines() if line.strip()]


def test_a_good_plugin_passes_every_check(cli, tmp_path):
    plugin = tmp_path / "my_method.py"
    plugin.write_text(PLUGIN)
    code, out, err = cli("validate", f"{plugin}:SmoothFinetune")  # in a temporary store
    assert code == 0, err
    assert err == ""
    for check in ("imports", "UnlearningMethod subclass", "JSON default", "finite losses", "float32 Classifier",
                  "changes the model", "frozen original untouched", "identical weights"):
        assert check in out
    assert out.count("✓") == 7 and "all 7 checks passed in" in out


def test_a_hyper_parameter_without_a_default(cli):
    line = line_of(faulty_methods.NoDefaults.__init__)
    assert problems(cli, f"{FAULTY}:NoDefaults") == [f"{FAULTY}:{line}: hyper-parameter 'lr' has no default"]


def test_a_nan_loss_names_its_training_step_and_batch(cli, store):
    line = line_of(faulty_methods.Diverges.training_step)
    assert problems(cli, f"{FAULTY}:Diverges", store) == [f"{FAULTY}:{line}: non-finite loss (nan) at epoch 0, batch 0"]


def test_a_method_that_edits_the_frozen_original(cli, store):
    line = line_of(faulty_methods.MutatesOriginal)
    assert problems(cli, f"{FAULTY}:MutatesOriginal", store) == [
        f"{FAULTY}:{line}: the frozen original changed (head.weight); read self.original, never train or edit it"
    ]


def test_a_method_seeded_by_the_clock_is_not_deterministic(cli, store):
    line = line_of(faulty_methods.Nondeterministic)
    [problem] = problems(cli, f"{FAULTY}:Nondeterministic", store)
    assert problem.startswith(f"{FAULTY}:{line}: two runs with seed 0 gave different weights (")
    assert "self.data.seed" in problem


def test_a_registered_method_that_changes_nothing(cli, store):
    from methods.original import Original

    [problem] = problems(cli, "original", store)
    assert problem == f"{Path(inspect.getsourcefile(Original)).resolve()}:{line_of(Original)}: self.model's weights are the " \
        "original's after the run; an unlearning method must change them"


def test_an_import_error_names_the_file_and_line(cli, tmp_path):
    broken = tmp_path / "broken.py"  # in the working directory: named relative to it
    broken.write_text("import os\n\nclass X(object)\n    pass\n")
    assert problems(cli, f"{broken}:X") == ["broken.py:3: SyntaxError: expected ':'"]
    broken.write_text("import os\nimport not_a_module_anywhere\n")
    assert problems(cli, "broken.py:X") == ["broken.py:2: ModuleNotFoundError: No module named 'not_a_module_anywhere'"]
    broken.write_text("from benchmark import UnlearningMethod\n\nclass X(UnlearningMethod):\n    lr = 1 / 0\n")
    assert problems(cli, "broken.py:X") == ["broken.py:4: ZeroDivisionError: division by zero"]


def test_a_class_that_is_not_a_method(cli, tmp_path):
    plugin = tmp_path / "my_method.py"
    plugin.write_text(PLUGIN)
    line = PLUGIN.splitlines().index("class NotAMethod:") + 1
    assert problems(cli, f"{plugin}:NotAMethod") == [f"my_method.py:{line}: NotAMethod is not an UnlearningMethod subclass (it is a class)"]


def test_malformed_defaults_and_dataset_overrides(cli, tmp_path):
    plugin = tmp_path / "odd.py"
    plugin.write_text(
        "from benchmark import UnlearningMethod\n"
        "\n"
        "class Odd(UnlearningMethod):\n"
        "    dataset_overrides = {'shapes': {'lr': -1.0}, 'nowhere': {}, 'shapes r=0.90': {'colour': 1}}\n"
        "\n"
        "    def __init__(self, model, original, data, *, ratio: object = object(),\n"
        "                 lr: float = 0.0, **common):\n"
        "        super().__init__(model, original, data, lr=lr, **common)\n"
    )
    lines = problems(cli, f"{plugin}:Odd")
    assert lines[0] == "odd.py:7: hyper-parameter 'lr': default 0.0 must be > 0"
    assert lines[1].startswith("odd.py:6: hyper-parameter 'ratio': default <object object at ")
    assert lines[1].endswith("does not serialise to JSON")
    assert lines[2] == "odd.py:4: dataset_overrides['shapes']: lr = -1.0 must be > 0"
    assert lines[3].startswith("odd.py:4: dataset_overrides['nowhere']: unknown dataset 'nowhere'; known: ")
    assert lines[4:] == [
        "odd.py:4: dataset_overrides['shapes r=0.90']: r must be a fraction in (0, 1] written as task ids write it (0.9, not 0.90), not '0.90'",
        "odd.py:4: dataset_overrides['shapes r=0.90']: no hyper-parameter 'colour'; the method takes: batch_size, epochs, lr, "
        "momentum, ratio, reweight, schedule, warmup_epochs, weight_decay",
    ]


def test_a_plugin_that_cannot_be_found_is_bad_input(cli, tmp_path):
    assert one_line_error(cli, "validate", "nope").startswith("error: unknown method 'nope'; known: ")
    assert one_line_error(cli, "validate", "missing.py:Thing") == "error: plugin file not found: missing.py"
    plugin = tmp_path / "my_method.py"
    plugin.write_text(PLUGIN)
    assert one_line_error(cli, "validate", f"{plugin}:Nothing") == f"error: plugin file {plugin} has no 'Nothing'"
