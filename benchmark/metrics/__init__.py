"""What is measured: inference and per-sample predictions, one module per metric family, the scorecard, rescore."""
