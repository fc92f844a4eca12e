"""unlearn-bench: the engine. It knows no method or dataset by name; methods and tasks
arrive through the registry (entry points ``unlearn_bench.methods``/``unlearn_bench.tasks``).

The contracts a plugin author needs are importable from here lazily, so that ``import
benchmark`` stays cheap: ``UnlearningMethod``, ``Task``, ``DatasetSource``, ``TaskData``,
``GroupDataset``, ``Split``, ``Batch``, ``Classifier``, ``ModelSpec``, ``Recipe``,
``BenchmarkError``.
"""

from importlib import import_module

_EXPORTS = {
    "UnlearningMethod": "benchmark.method",
    "Task": "benchmark.task",
    "DatasetSource": "benchmark.source",
    "TaskData": "benchmark.task",
    "GroupDataset": "benchmark.data",
    "Split": "benchmark.data",
    "Batch": "benchmark.data",
    "Classifier": "benchmark.model",
    "ModelSpec": "benchmark.model",
    "Recipe": "benchmark.training",
    "BenchmarkError": "benchmark.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'benchmark' has no attribute {name!r}")
