"""What is measured: per-sample predictions, one module per metric family, the scorecard (given a model and a ``Forward``, never a Runtime)."""
