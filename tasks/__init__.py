"""Built-in datasets and their task grids, registered through the ``unlearn_bench.tasks``
entry-point group exactly like a third-party plugin."""
