"""Built-in unlearning methods, one per module, registered through the
``unlearn_bench.methods`` entry-point group exactly like a third-party plugin."""
