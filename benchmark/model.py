"""The model contract: a backbone (timm's, or a small MLP for tables) behind ``logits``,
``features`` and ``head``.

Normalisation lives inside the wrapper, so everything outside it (training, metrics,
adversarial attacks) feeds inputs in [0, 1].
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

import timm
import torch
from torch import Tensor, nn

from benchmark.errors import BenchmarkError
from benchmark.settings import Range, check_fields, fault

MODEL_RULES = {"image_size": Range(0), "in_features": Range(0)}
MLP_DEFAULT = (128, 64)
COMPILE_OPTIONS: dict[str, Any] = {}  # torch.compile's keyword arguments for ``ModelSpec.compile``


@dataclass(frozen=True)
class ModelSpec:
    """What to build: a timm model name (or ``mlp:<width>,<width>`` for table rows of
    ``in_features`` columns), its input size, normalisation (none when ``mean`` is empty) and
    initial weights: ``pretrained`` '' (random), 'timm' (timm's, downloaded) or a weights file.
    ``compile`` runs the backbone through torch.compile (the weights and their names unchanged)."""

    backbone: str = "test_resnet"
    image_size: int = 24
    mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    std: tuple[float, ...] = (0.5, 0.5, 0.5)
    channels_last: bool = True
    pretrained: str = ""
    in_features: int = 0
    compile: bool = False

    def __post_init__(self) -> None:
        check_fields(self, "model", MODEL_RULES)
        if self.backbone.partition(":")[0] == "mlp" and mlp_widths(self.backbone) is None:
            raise fault("model.backbone", "a timm model name or mlp:<width>,<width>,... with widths >= 1", self.backbone)
        if len(self.std) != len(self.mean) or not all(s > 0 for s in self.std):
            raise fault("model.std", f"{len(self.mean)} numbers > 0, one per number of model.mean", self.std)

    def identity(self) -> dict[str, Any]:
        """What names this model in cache keys: every field, ``compile`` only when on (its
        kernels may differ in the last digits; off, the keys of stores made before it stay valid)."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {k: v for k, v in fields.items() if k != "compile" or v}


def mlp_widths(backbone: str) -> tuple[int, ...] | None:
    """The widths of ``mlp:<width>,<width>,...`` (``mlp`` alone: MLP_DEFAULT); None when malformed."""
    name, _, text = backbone.partition(":")
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if name != "mlp" or not all(p.isdigit() and int(p) >= 1 for p in parts):
        return None
    return tuple(int(p) for p in parts) or MLP_DEFAULT


class MLP(nn.Module):
    """Linear-BatchNorm-ReLU blocks for table rows; ``feature_info`` names its stages like timm's."""

    def __init__(self, in_features: int, widths: tuple[int, ...]) -> None:
        super().__init__()
        sizes = (in_features, *widths)
        self.blocks = nn.Sequential(
            *(nn.Sequential(nn.Linear(a, b), nn.BatchNorm1d(b), nn.ReLU()) for a, b in zip(sizes, sizes[1:]))
        )
        self.num_features = sizes[-1]
        self.feature_info = [{"module": f"blocks.{i}"} for i in range(len(widths))]

    def forward(self, x: Tensor) -> Tensor:
        return self.blocks(x.flatten(1))


def _backbone(spec: ModelSpec) -> nn.Module:
    widths = mlp_widths(spec.backbone)
    if widths is not None:
        return MLP(spec.in_features, widths)
    overlay = {"file": spec.pretrained} if spec.pretrained not in ("", "timm") else None
    try:
        return timm.create_model(spec.backbone, pretrained=bool(spec.pretrained), num_classes=0, pretrained_cfg_overlay=overlay)
    except RuntimeError as err:  # timm's "Unknown model", or weights it could not load
        raise BenchmarkError(f"cannot build backbone {spec.backbone!r}: {err}") from None
    except Exception as err:  # a download that cannot happen here
        raise BenchmarkError(
            f"cannot fetch pretrained weights for {spec.backbone!r} ({type(err).__name__}); "
            "pass --pretrained PATH to a local weights file"
        ) from None


class Classifier(nn.Module):
    """``logits(x) = head(features(x))`` with ``features`` the pooled penultimate layer."""

    def __init__(self, spec: ModelSpec, num_classes: int) -> None:
        super().__init__()
        self.spec = spec
        self.backbone = _backbone(spec)
        self.head = nn.Linear(self.backbone.num_features, num_classes)
        shape = (1, -1, 1, 1) if spec.image_size else (1, -1)
        self.register_buffer("mean", torch.tensor(spec.mean or (0.0,)).view(shape), persistent=False)
        self.register_buffer("std", torch.tensor(spec.std or (1.0,)).view(shape), persistent=False)
        if spec.channels_last:
            self.to(memory_format=torch.channels_last)

    @property
    def num_features(self) -> int:
        return self.head.in_features

    def features(self, x: Tensor) -> Tensor:
        x = (x - self.mean) / self.std
        if self.spec.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return self._backbone_forward()(x)

    def _backbone_forward(self) -> Callable[[Tensor], Tensor]:
        """The backbone, or its torch.compile'd forward when the spec asks, made once per copy
        and kept outside the module tree (state dict, parameters and modes are the backbone's)."""
        if not self.spec.compile:
            return self.backbone
        if "_compiled" not in self.__dict__:
            self.__dict__["_compiled"] = torch.compile(self.backbone, **COMPILE_OPTIONS)
        return self.__dict__["_compiled"]

    def __getstate__(self) -> dict[str, Any]:
        """Copied or pickled without the compiled forward, which wraps this copy's backbone."""
        return {k: v for k, v in self.__dict__.items() if k != "_compiled"}

    def logits(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.logits(x)

    def stages(self) -> list[str]:
        """The backbone's stages in order (timm's feature_info modules that hold parameters),
        as module names under ``backbone``: ResNet layer1..layer4, ViT blocks.0..blocks.N."""
        modules = dict(self.backbone.named_modules())
        names = [info["module"] for info in getattr(self.backbone, "feature_info", [])]
        return [n for n in names if n in modules and any(True for _ in modules[n].parameters())]

    def tail_parameters(self, k: int) -> list[str]:
        """Names of the parameters of the last ``k`` stages and of everything after them
        (final norms, the head): CF-k's and EU-k's "last k blocks". k = 0 is the head part only."""
        names = [n for n, _ in self.named_parameters()]
        stages = self.stages()
        if not 0 <= k <= len(stages):
            raise ValueError(f"k must be between 0 and the {len(stages)} stages of {self.spec.backbone}, not {k}")
        if k == 0:
            after_last = f"backbone.{stages[-1]}." if stages else None
            last = max((i for i, n in enumerate(names) if after_last and n.startswith(after_last)), default=-1)
            return names[last + 1 :]
        first = next(i for i, n in enumerate(names) if n.startswith(f"backbone.{stages[-k]}."))
        return names[first:]


def build_model(spec: ModelSpec, num_classes: int, seed: int) -> Classifier:
    """A freshly initialised model; the same (spec, classes, seed) gives the same weights."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Classifier(spec, num_classes)


def frozen_copy(model: Classifier) -> Classifier:
    """A copy in eval mode with no gradients: the original model a method may consult."""
    import copy

    twin = copy.deepcopy(model).eval()
    twin.requires_grad_(False)
    return twin
