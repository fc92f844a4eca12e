"""Batch augmentation on the device: inputs arrive as uint8 and leave as float in [0, 1]."""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.nn import functional as F


def to_unit_float(x: Tensor) -> Tensor:
    """uint8 images to float in [0, 1]; float inputs (tables) pass through."""
    return x.float().div_(255) if x.dtype == torch.uint8 else x.float()


def crop_flip(x: Tensor, pad: int = 2) -> Tensor:
    """Random translation by up to ``pad`` pixels (edge-replicated) and a random horizontal flip.

    The cheap CIFAR-style stand-in for RandomResizedCrop at small resolutions; one gather
    for the whole batch.
    """
    b, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    oy = torch.randint(0, 2 * pad + 1, (b, 1), device=x.device)
    ox = torch.randint(0, 2 * pad + 1, (b, 1), device=x.device)
    rows = (oy + torch.arange(h, device=x.device)).view(b, 1, h, 1)
    cols = (ox + torch.arange(w, device=x.device)).view(b, 1, 1, w)
    flip = torch.rand(b, device=x.device) < 0.5
    cols = torch.where(flip.view(b, 1, 1, 1), cols.flip(-1), cols)
    batch = torch.arange(b, device=x.device).view(b, 1, 1, 1)
    chan = torch.arange(x.shape[1], device=x.device).view(1, -1, 1, 1)
    return padded[batch, chan, rows, cols]


def resized_crop_flip(x: Tensor, scale: tuple[float, float] = (0.08, 1.0), ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> Tensor:
    """RandomResizedCrop + horizontal flip, per sample, on the device: a box of a random share
    ``scale`` of the image's area and aspect ``ratio`` (log-uniform), resized back to the
    input size (bilinear, via roi_align). Applied to the cached centre crops, so it is
    RandomResizedCrop of the evaluation view rather than of the full original image."""
    from torchvision.ops import roi_align

    b, _, h, w = x.shape
    area = torch.empty(b, device=x.device).uniform_(*scale) * h * w
    log_ratio = torch.empty(b, device=x.device).uniform_(math.log(ratio[0]), math.log(ratio[1]))
    aspect = log_ratio.exp()
    bw = (area * aspect).sqrt().clamp(1, w)
    bh = (area / aspect).sqrt().clamp(1, h)
    x0 = torch.rand(b, device=x.device) * (w - bw)
    y0 = torch.rand(b, device=x.device) * (h - bh)
    boxes = torch.stack([torch.arange(b, device=x.device, dtype=x.dtype), x0, y0, x0 + bw, y0 + bh], 1).to(x.dtype)
    out = roi_align(x, boxes, output_size=(h, w), spatial_scale=1.0, sampling_ratio=2, aligned=True)
    flip = torch.rand(b, device=x.device) < 0.5
    return torch.where(flip.view(b, 1, 1, 1), out.flip(-1), out)


AUGMENTATIONS = {"crop_flip": crop_flip, "resized_crop_flip": resized_crop_flip, "none": lambda x: x}


def augment(x: Tensor, name: str) -> Tensor:
    if name not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation {name!r}; known: {sorted(AUGMENTATIONS)}")
    return AUGMENTATIONS[name](x)
