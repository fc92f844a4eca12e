"""unlearn-bench: the engine. It knows no method or dataset by name; methods and tasks
arrive through the registry (entry points ``unlearn_bench.methods``/``unlearn_bench.tasks``).

This module is the one public surface: ``methods/``, ``tasks/`` and third-party plugins
import from ``benchmark`` only, never from its subpackages, so that the engine can be
regrouped without breaking a plugin. Names resolve lazily, so ``import benchmark`` stays cheap.

Subpackages by role: ``data`` (datasets, sources, splits, augmentation), ``metrics``
(inference, predictions, each metric family, the scorecard), ``run`` (spec, runtime, the
store, runner, pool), ``report`` (scoring, leaderboard, renderers, claims).
"""

from importlib import import_module

_EXPORTS = {
    # the Python API (what ``unlearn-bench run`` does)
    "Benchmark": "benchmark.api",
    "RunResult": "benchmark.api",
    # the contracts
    "UnlearningMethod": "benchmark.method",
    "Search": "benchmark.method",
    "Range": "benchmark.settings",
    "Task": "benchmark.task",
    "TaskData": "benchmark.task",
    "DatasetSource": "benchmark.source",
    "PresetSource": "benchmark.source",
    "DatasetWriter": "benchmark.source",
    "Report": "benchmark.source",
    "GroupDataset": "benchmark.dataset",
    "Split": "benchmark.dataset",
    "Batch": "benchmark.dataset",
    "Passes": "benchmark.dataset",
    "Classifier": "benchmark.model",
    "ModelSpec": "benchmark.model",
    "Recipe": "benchmark.training",
    "BenchmarkError": "benchmark.errors",
    # helpers for methods
    "KeepBestOnVal": "benchmark.training",
    "warmup_schedule": "benchmark.training",
    "frozen_copy": "benchmark.model",
    "eval_mode": "benchmark.inference",
    "to_unit_float": "benchmark.augment",
    "distillation_kl": "benchmark.losses",
    "random_wrong_labels": "benchmark.losses",
    "SampleWeights": "benchmark.influence",
    "influence_update": "benchmark.influence",
    "check_weighting": "benchmark.influence",
    "set_head": "benchmark.influence",
    # helpers for dataset loaders
    "column": "benchmark.data.hub",
    "labels": "benchmark.data.hub",
    "is_hub_copy": "benchmark.data.hub",
    "open_hub": "benchmark.data.hub",
    "decode_into": "benchmark.data.images",
    "decoding_pool": "benchmark.data.images",
    "existing_files": "benchmark.data.images",
    # helpers for task suites: where a copy is, seeded rows, the MIU grid (docs/writing-a-task.md)
    "LocalCopy": "benchmark.data.local",
    "Layout": "benchmark.data.local",
    "holds": "benchmark.data.local",
    "HUB": "benchmark.data.local",
    "seeded_split": "benchmark.data.sampling",
    "proportional_sample": "benchmark.data.sampling",
    "miu_grid": "benchmark.data.grid",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'benchmark' has no attribute {name!r}")
