"""Soft-weighted unlearning (seed 001): an influence-function update of the last linear layer,
with a real weight for every forget row from a closed-form quadratic programme:

    theta_w = theta_0 - H^-1 sum_{j in F} w_j g_j,   w = -1 (hard) or
    w = |F_0| (|u|^2 f - (f^T u) u) / (|f|^2 |u|^2 - (f^T u)^2) (soft)

with g_j the per-sample gradient of the head's loss, H its Hessian over TRAIN (damped) and u, f
the influences of the forget rows on the VAL loss and on the VAL gap F (F_0 its value). The
maths lives in the engine (``benchmark/influence.py``, where each formula is derived), so that
other methods (finetune, neggrad) take the same weights from ``benchmark`` too.
"""

from __future__ import annotations

from typing import Any

from benchmark import Search, UnlearningMethod, check_weighting, influence_update, set_head


class SoftWeighted(UnlearningMethod):
    """theta_head <- theta_head - H^-1 sum_{j in F} w_j g_j on the last linear layer with the
    original's frozen features; w = -1 (``hard``: first-order removal of F) or the
    closed-form soft weights (``soft``: cancel the VAL gap F of ``target`` to first order,
    leave the VAL loss unchanged to first order). The maths, with its formulas, is the
    engine's ``benchmark/influence.py``.

    Hyper-parameters: ``scheme`` ('soft'); ``target`` ('eo': the gap in recall of class y*
    between g* and the rest of its class, which is the failure group-robust unlearning is
    about, since forgetting rows of g* costs g* its accuracy; unlike 'robust' it is smooth,
    with no worst group to switch under the step that the first-order model assumes fixed);
    ``damping`` (lam; None: |TRAIN| x the recipe's weight decay, which makes H the exact
    Hessian of the original head's training objective); ``batch_size`` (feature extraction).
    No training step; the backbone is untouched.
    """

    description = "soft-weighted influence update of the last layer: closed-form weights on F"
    search = Search(
        {"lr": None, "epochs": None, "weight_decay": None, "batch_size": None},
        reason="a closed-form influence update of the last layer: no optimiser step, and its weights are computed, not chosen",
    )
    paper = "Soft Weighted Machine Unlearning, 2025"
    reads_retain = False

    def __init__(
        self,
        model,
        original,
        data,
        *,
        scheme: str = "soft",
        target: str = "eo",
        damping: float | None = None,
        batch_size: int = 256,
        epochs: int = 0,
        **common,
    ) -> None:
        check_weighting(scheme, target, damping)
        super().__init__(model, original, data, epochs=epochs, batch_size=batch_size, **common)

    def unlearn(self) -> None:
        hp = self.hparams
        set_head(self.model.head, influence_update(self.original, self.data, hp.scheme, hp.target, hp.damping, hp.batch_size))

    def trainer_arguments(self) -> dict[str, Any]:
        return {"max_epochs": 0}


class HardWeighted(SoftWeighted):
    """SoftWeighted with ``scheme='hard'`` by default: w = -1 on every forget row, the
    first-order removal of F from the head (seed 001's binary baseline), so the default
    benchmark runs the soft and hard schemes side by side."""

    description = "hard-weighted influence update of the last layer: w = -1 on every row of F"
    in_default = False  # the full board (configs/board.yaml) runs it; the short default leaves it out

    def __init__(self, model, original, data, *, scheme: str = "hard", **kwargs) -> None:
        super().__init__(model, original, data, scheme=scheme, **kwargs)
