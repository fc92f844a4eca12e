"""Original: the model as trained, unchanged."""

from __future__ import annotations

from benchmark import Search, UnlearningMethod


class Original(UnlearningMethod):
    """theta = theta_0. Forgets nothing: the lower bound on forgetting, the upper bound on utility."""

    description = "the original model, unchanged (no unlearning)"
    search = Search({"lr": None, "epochs": None, "weight_decay": None, "batch_size": None}, reason="the original model itself: nothing is trained")
    paper = "baseline"
    reads_retain = False

    def __init__(self, model, original, data, *, epochs: int = 0, **common) -> None:
        super().__init__(model, original, data, epochs=epochs, **common)

    def trainer_arguments(self) -> dict:
        return {"max_epochs": 0}
