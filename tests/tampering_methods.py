"""Plugins that try to change what they, or the cells after them, are scored on (the isolation
tests load them by file, ``tests/tampering_methods.py:Class``, like any user's plugin). None
of them changes the model in a way that should lift its own score honestly."""

from __future__ import annotations

import torch

from benchmark import UnlearningMethod


class _NoTraining(UnlearningMethod):
    reads_retain = False

    def __init__(self, model, original, data, *, epochs: int = 0, **common):
        super().__init__(model, original, data, epochs=epochs, **common)


class ZeroesLabels(_NoTraining):
    """Zeroes the shared TEST and VAL labels in place and biases its head to class 0."""

    def unlearn(self):
        self.data.dataset.test.y.zero_()
        self.data.dataset.val.y.zero_()
        with torch.no_grad():
            self.model.head.bias[0] += 1e3


class ForgetsRetainRows(_NoTraining):
    """Overwrites its forget rows with retain rows (changes no weight)."""

    def unlearn(self):
        forget, retain = self.data.forget_idx, self.data.retain_idx
        forget.copy_(retain[: len(forget)])


class EditsGroups(_NoTraining):
    """Rewrites the shared TRAIN group ids, from which the forget set is drawn."""

    def unlearn(self):
        self.data.dataset.groups("train").zero_()


class SetsDefaultDtype(_NoTraining):
    def unlearn(self):
        torch.set_default_dtype(torch.float64)


class DisablesGrad(_NoTraining):
    def unlearn(self):
        torch.set_grad_enabled(False)


class SetsMatmulPrecision(_NoTraining):
    def unlearn(self):
        torch.set_float32_matmul_precision("medium")


class HooksItsModel(_NoTraining):
    """Registers a forward hook that makes the model answer class 0 (only while scored)."""

    def unlearn(self):
        def answer_zero(module, inputs, output):
            fixed = torch.full_like(output, -1e3)
            fixed[:, 0] = 1e3
            return fixed

        self.model.register_forward_hook(answer_zero)


class ZeroesLabelsWhenBuilt(UnlearningMethod):
    """Zeroes the shared TEST labels while it is being built (validation builds every method once)."""

    def __init__(self, model, original, data, **common):
        super().__init__(model, original, data, **common)
        data.dataset.test.y.zero_()


class WritesInputs(_NoTraining):
    """Writes into the shared TRAIN inputs (memory-mapped read-only: the process dies)."""

    def unlearn(self):
        self.data.dataset.train.x[0].zero_()


class ReplacesLabels(_NoTraining):
    """Swaps the shared TEST labels for its own tensor, through the frozen dataclass."""

    def unlearn(self):
        test = self.data.dataset.test
        object.__setattr__(test, "y", torch.zeros_like(test.y))
