"""fairness_gap (seed 002): how unequal the spread of channels is at each normalisation layer.

For every normalisation layer l (BatchNorm, LayerNorm, GroupNorm), σ_c^l is the standard
deviation of channel c of the layer's *input* over TEST (all samples and positions; our
reading of seed 002, via forward pre-hooks), and

    ε^l = max_c σ_c^l − min_c σ_c^l,        fairness_gap = mean_l ε^l.

The per-layer profile {layer: ε^l} goes into the result file; the σ's into the predictions
file, so the gap is recomputed offline. A layer whose channels have equal spread has ε = 0.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

try:  # timm's channels-first LayerNorm normalises dim 1 of NCHW inputs
    from timm.layers import LayerNorm2d
except ImportError:  # pragma: no cover
    LayerNorm2d = ()

NORMS = (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm)


def channel_dim(module: nn.Module) -> int:
    if isinstance(module, nn.LayerNorm) and not isinstance(module, LayerNorm2d):
        return -1
    return 1


class ChannelSpread:
    """Context manager: while active, accumulates per-channel moments of every norm layer's input."""

    def __init__(self, model: nn.Module) -> None:
        self.layers = {name: m for name, m in model.named_modules() if isinstance(m, NORMS)}
        self.moments: dict[str, list[Tensor]] = {}
        self._handles: list = []

    def __enter__(self) -> ChannelSpread:
        for name, module in self.layers.items():
            self._handles.append(module.register_forward_pre_hook(self._hook(name, channel_dim(module))))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _hook(self, name: str, dim: int):
        def record(module: nn.Module, inputs: tuple[Tensor, ...]) -> None:
            x = inputs[0].detach().double().movedim(dim, -1)
            x = x.reshape(-1, x.shape[-1])
            stats = torch.stack([torch.full_like(x[0], len(x)), x.sum(0), x.square().sum(0)])
            if name in self.moments:
                self.moments[name] += stats
            else:
                self.moments[name] = stats

        return record

    def stds(self) -> dict[str, np.ndarray]:
        """σ_c per layer (population standard deviation over everything seen)."""
        out = {}
        for name, (n, s, ss) in ((k, v.cpu()) for k, v in self.moments.items()):
            mean = s / n
            out[name] = (ss / n - mean.square()).clamp_min(0).sqrt().numpy()
        return out


def fairness_gap(stds: dict[str, np.ndarray]) -> tuple[float, dict[str, float]]:
    """(mean over layers of ε^l, the profile {layer: ε^l})."""
    profile = {name: float(s.max() - s.min()) for name, s in stds.items()}
    return (float(np.mean(list(profile.values()))) if profile else float("nan")), profile
