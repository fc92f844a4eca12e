"""MyMethod, the worked example of docs/writing-a-method.md.

Every step pairs a retain batch with a forget batch. On the retain batch it descends on the
cross-entropy, as fine-tuning does; on the forget batch it ascends on the cross-entropy, but only
until that loss reaches log C, the loss of a uniform guess over C classes, so the forget rows
end up uncertain rather than confidently wrong and the ascent cannot run away.
"""

from __future__ import annotations

import math

from torch import Tensor

from benchmark import Batch, Classifier, TaskData, UnlearningMethod
from helpers import capped_ascent


class MyMethod(UnlearningMethod):
    """Minimise CE(R) + forget_weight * max(0, log C - CE(F)) over pairs of retain and forget
    batches, starting from the original model."""

    name = "my_method"
    description = "descend on the retain set; ascend on the forget set up to a uniform guess's loss"
    paper = "worked example, docs/writing-a-method.md"

    def __init__(
        self,
        model: Classifier,
        original: Classifier,
        data: TaskData,
        *,
        forget_weight: float = 1.0,
        epochs: int = 2,
        lr: float = 0.01,
        **common,
    ) -> None:
        super().__init__(model, original, data, epochs=epochs, lr=lr, **common)

    def train_dataloader(self):
        return self.forget_and_retain()

    def training_step(self, batch: dict[str, Batch], batch_idx: int) -> Tensor:
        ceiling = math.log(self.data.num_classes)
        forget = capped_ascent(self.cross_entropy(batch["forget"]), ceiling)
        return self.cross_entropy(batch["retain"]) + self.hparams.forget_weight * forget
