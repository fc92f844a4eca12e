"""Methods that go wrong in each way a plugin can, for the fault-injection tests (loaded by
file, ``tests/faulty_methods.py:Class``, like any user's plugin)."""

from __future__ import annotations

import time

import torch
from torch.nn import functional as F

from benchmark import UnlearningMethod


class _TrainsOnRetain(UnlearningMethod):
    def __init__(self, model, original, data, *, epochs: int = 1, **common):
        super().__init__(model, original, data, epochs=epochs, **common)

    def train_dataloader(self):
        return self.loader("retain")


class _DoesNotTrain(UnlearningMethod):
    reads_retain = False

    def __init__(self, model, original, data, *, epochs: int = 0, **common):
        super().__init__(model, original, data, epochs=epochs, **common)


class Diverges(_TrainsOnRetain):
    """Its loss turns NaN on the first batch."""

    def training_step(self, batch, batch_idx):
        return F.cross_entropy(self.model(batch.x), batch.y) * float("nan")


class Raises(_TrainsOnRetain):
    """Raises inside its training step."""

    def training_step(self, batch, batch_idx):
        raise RuntimeError("a bug in the plugin's loss")


class Wraps(_DoesNotTrain):
    """Replaces the model it was given with a wrapper around it."""

    def unlearn(self):
        self.model = torch.nn.Sequential(self.model)


class Halves(_DoesNotTrain):
    """Leaves the model in half precision."""

    def unlearn(self):
        self.model.half()


class Hangs(_DoesNotTrain):
    """Never finishes (for the timeout)."""

    def unlearn(self):
        time.sleep(3600)


# -- for `unlearn-bench validate` (tests/integration/test_validate_plugin.py) ---------------------------


class NoDefaults(_TrainsOnRetain):
    """A hyper-parameter without a default: the runner could not build it."""

    def __init__(self, model, original, data, *, lr, epochs: int = 1, **common):
        super().__init__(model, original, data, epochs=epochs, lr=lr, **common)


class MutatesOriginal(_TrainsOnRetain):
    """Trains, and nudges the frozen original's head on every step."""

    def training_step(self, batch, batch_idx):
        with torch.no_grad():
            self.original.head.weight.add_(0.01)
        return F.cross_entropy(self.model(batch.x), batch.y)


class Nondeterministic(_DoesNotTrain):
    """Adds noise from a generator seeded by the clock: two runs with one seed differ."""

    def unlearn(self):
        generator = torch.Generator().manual_seed(time.time_ns())
        with torch.no_grad():
            for p in self.model.parameters():
                p.add_(1e-3 * torch.randn(p.shape, generator=generator))
