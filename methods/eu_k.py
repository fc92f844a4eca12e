"""EU-k: exact-unlearning of the last k blocks: re-initialise them and retrain them on R."""

from __future__ import annotations

import torch

from methods.cf_k import CFk


class EUk(CFk):
    """As CF-k, but the last ``k`` stages and everything after them are first reset to the
    original's *initial* weights (and BatchNorm statistics), then trained from there on R with
    CE: the earlier blocks keep theta_0, the tail is learnt again without F."""

    description = "EU-k: re-initialise the last k blocks (and head) and retrain them on the retain set"
    in_default = False  # the full board (configs/board.yaml) runs it; the short default leaves it out
    paper = "Goel et al., Towards Adversarial Evaluation of Unlearning, 2022"

    def __init__(self, model, original, data, *, k: int = 1, epochs: int = 5, lr: float = 0.05, **common) -> None:
        super().__init__(model, original, data, k=k, epochs=epochs, lr=lr, **common)

    def unlearn(self) -> None:
        initial = self.data.initial_model().state_dict()
        owners = {name.rsplit(".", 1)[0] for name in self.model.tail_parameters(self.hparams.k)}
        with torch.no_grad():  # parameters and buffers (BatchNorm statistics) of the tail modules
            for name, value in self.model.state_dict().items():
                if name.rsplit(".", 1)[0] in owners:
                    value.copy_(initial[name])
