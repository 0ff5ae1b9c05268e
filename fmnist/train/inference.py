"""Predictions of a trained model: large batches, autocast, test-time augmentation.

Shared by validation inside :func:`fmnist.train.engine.fit`, the evaluate stage, export
and predict, so every one of them sees a model exactly as the others do.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fmnist.train.batches import DeviceSplit, scale


def autocast(device: torch.device, dtype: torch.dtype | None) -> torch.autocast:
    """Mixed precision in ``dtype`` (see :func:`fmnist.train.device.autocast_dtype`), or off."""
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


def tta_views(x: torch.Tensor, flip: bool, shift: int = 0) -> list[torch.Tensor]:
    """The views test-time augmentation averages: the images, their mirror images
    (``flip``), and each of those moved ``shift`` pixels left, right, up and down, with
    zeros shifted in as the training crop's zero padding does."""
    bases = [x, x.flip(-1)] if flip else [x]
    views = list(bases)
    if shift:
        h, w = x.shape[-2:]
        for base in bases:
            padded = F.pad(base, (shift, shift, shift, shift))
            for dy, dx in ((0, shift), (0, -shift), (shift, 0), (-shift, 0)):
                top, left = shift + dy, shift + dx
                views.append(padded[..., top : top + h, left : left + w])
    return views


@torch.inference_mode()
def predict_logits(
    model: nn.Module,
    data: DeviceSplit,
    batch_size: int,
    tta: bool = False,
    precision: torch.dtype | None = None,
    tta_shift: int = 0,
) -> torch.Tensor:
    """Logits for every image of ``data``, in order, in large batches; with test-time
    augmentation (``tta``: mirror images; ``tta_shift``: shifted copies, see
    :func:`tta_views`) the mean of the views' logits."""
    model.eval()
    out = []
    for i in range(0, len(data), batch_size):
        x = scale(data.images[i : i + batch_size])
        with autocast(x.device, precision):
            views = tta_views(x, tta, tta_shift)
            out.append(sum(model(v).float() for v in views) / len(views))
    return torch.cat(out).float()


def evaluate(
    model: nn.Module, data: DeviceSplit, batch_size: int, precision: torch.dtype | None = None
) -> tuple[float, float]:
    """(mean cross-entropy loss, accuracy) of ``model`` on ``data``."""
    logits = predict_logits(model, data, batch_size, precision=precision)
    loss = F.cross_entropy(logits, data.labels).item()
    accuracy = (logits.argmax(1) == data.labels).float().mean().item()
    return loss, accuracy
