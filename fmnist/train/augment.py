"""Augmentation on whole batches, on the device, seeded; no per-sample Python.

Keras ImageDataGenerator-style (the reports): one random affine transform per image
(shift, rotation, zoom) with ``affine_grid``/``grid_sample``, plus a horizontal flip.
Modern recipes add a random crop of the zero-padded image and random erasing; the
recipe for real photos adds random tones (the garment's gamma and gain), as a photo's
lighting and a garment's colour give them after conversion.
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
    crop_padding: int = 0  # random crop of the image padded by this many pixels
    erasing: float = 0.0  # probability of erasing one random rectangle per image
    tones: float = 0.0  # per image: gamma in [1/(1+t), 1+t], gain in [1-t/2, 1]; black stays black

    @property
    def affine(self) -> bool:
        return bool(self.shift or self.rotation or self.zoom or self.hflip)

    @property
    def enabled(self) -> bool:
        return self.affine or bool(self.crop_padding or self.erasing or self.tones)


def augment_batch(x: torch.Tensor, aug: Augment, generator: torch.Generator) -> torch.Tensor:
    """Return an augmented copy of float images ``x`` (N, C, H, W) in [0, 1]."""
    if not aug.enabled:
        return x
    if aug.affine and not (aug.shift or aug.rotation or aug.zoom):
        x = _random_flip(x, generator)
    elif aug.affine:
        x = _affine(x, aug, generator)
    if aug.crop_padding:
        x = _random_crop(x, aug.crop_padding, generator)
    if aug.erasing:
        x = _random_erasing(x, aug.erasing, generator)
    if aug.tones:
        x = _random_tones(x, aug.tones, generator)
    return x


def _random_tones(x: torch.Tensor, t: float, generator: torch.Generator) -> torch.Tensor:
    """Each image's pixels raised to a random gamma and scaled by a random gain: a dark
    or a pale garment, lit softly or hard. The background (0) stays 0."""
    n = x.shape[0]
    gamma = torch.exp((2 * _uniform(n, generator, x) - 1) * math.log1p(t))
    gain = 1 - t / 2 * _uniform(n, generator, x)
    return x.clamp(min=0).pow(gamma[:, None, None, None]) * gain[:, None, None, None]


def _uniform(n: int, generator: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    return torch.rand(n, generator=generator, device=generator.device).to(like.device)


def _random_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each image mirrored left-right with probability 1/2: the same images as the
    affine path gives for a flip alone, without resampling."""
    flip = _uniform(x.shape[0], generator, x) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def _random_crop(x: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Each image shifted by up to ``pad`` pixels (a crop of its zero-padded copy)."""
    n, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = (_uniform(n, generator, x) * (2 * pad + 1)).long().clamp_(max=2 * pad)
    dx = (_uniform(n, generator, x) * (2 * pad + 1)).long().clamp_(max=2 * pad)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    channel = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, channel, rows, cols]


def _random_erasing(x: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """With probability ``p`` per image, zero a random rectangle of 2-33% of its area."""
    n, _, h, w = x.shape
    area = (0.02 + 0.31 * _uniform(n, generator, x)) * h * w
    ratio = torch.exp((_uniform(n, generator, x) - 0.5) * 2 * math.log(3.0))
    eh = (area * ratio).sqrt().clamp(1, h)
    ew = (area / ratio).sqrt().clamp(1, w)
    top = _uniform(n, generator, x) * (h - eh + 1)
    left = _uniform(n, generator, x) * (w - ew + 1)
    apply = _uniform(n, generator, x) < p
    ys = torch.arange(h, device=x.device)[None, :, None]
    xs = torch.arange(w, device=x.device)[None, None, :]
    inside = (
        (ys >= top[:, None, None])
        & (ys < (top + eh)[:, None, None])
        & (xs >= left[:, None, None])
        & (xs < (left + ew)[:, None, None])
        & apply[:, None, None]
    )
    return x.masked_fill(inside[:, None], 0.0)


def _affine(x: torch.Tensor, aug: Augment, generator: torch.Generator) -> torch.Tensor:
    """Random shift, rotation, zoom and flip, one transform per image."""
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
