"""Keras ImageDataGenerator-style augmentation on whole batches, on the device, seeded.

One random affine transform per image (shift, rotation, zoom) is applied with
``affine_grid``/``grid_sample``, plus an optional horizontal flip; no per-sample Python.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Augment:
    """Amounts as in Keras: shifts and zoom as fractions, rotation in degrees."""

    shift: float = 0.0
    rotation: float = 0.0
    zoom: float = 0.0
    hflip: bool = False

    @property
    def enabled(self) -> bool:
        return bool(self.shift or self.rotation or self.zoom or self.hflip)


def augment_batch(x: torch.Tensor, aug: Augment, generator: torch.Generator) -> torch.Tensor:
    """Return an augmented copy of float images ``x`` (N, C, H, W) in [0, 1]."""
    if not aug.enabled:
        return x
    n = x.shape[0]

    def uniform(low: float, high: float) -> torch.Tensor:
        r = torch.rand(n, generator=generator, device=generator.device)
        return (low + (high - low) * r).to(x.device, x.dtype)

    angle = uniform(-aug.rotation, aug.rotation) * (math.pi / 180)
    scale = uniform(1 - aug.zoom, 1 + aug.zoom)
    tx, ty = uniform(-aug.shift, aug.shift) * 2, uniform(-aug.shift, aug.shift) * 2
    flip = torch.ones_like(scale)
    if aug.hflip:
        flip = torch.where(uniform(0, 1) < 0.5, -1.0, 1.0).to(x.dtype)
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    theta = torch.stack(
        [torch.stack([cos * flip, -sin, tx], 1), torch.stack([sin * flip, cos, ty], 1)], 1
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.clamp_(0, 1)
