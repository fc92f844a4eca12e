"""Running a benchmark: spec and runtime, the store of every artefact, the runner and its executors."""
