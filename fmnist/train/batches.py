"""The data on the device: each split moved there once as uint8, batches as index slices.

Following cifar10-airbench rather than a DataLoader: no per-sample work and no worker
processes; every batch is sliced, scaled to [0, 1] (and augmented, :mod:`augment`) on
the device.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from fmnist.train import distributed

PIXEL_SCALE = 1 / 255  # the reports' input convention: x / 255, no mean/std shift


@dataclass
class DeviceSplit:
    """One split on the device: uint8 images (N, C, H, W) and int64 labels (N,)."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)


def to_device(images: np.ndarray, labels: np.ndarray, device: torch.device) -> DeviceSplit:
    """Move a uint8 split, (N, H, W) grayscale or (N, H, W, C) colour, to ``device`` once,
    as (N, C, H, W)."""
    x = torch.from_numpy(np.ascontiguousarray(images))
    x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2).contiguous()
    y = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    return DeviceSplit(x.to(device), y.to(device))


def scale(batch: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float32 in [0, 1], on the batch's device."""
    return batch.float().mul_(PIXEL_SCALE)


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffled order of epoch ``epoch``: a function of (seed, epoch) alone, so every
    DDP process agrees on it and a resumed run needs no generator state for it."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))


def batch_indices(order: torch.Tensor, batch_size: int) -> Iterator[torch.Tensor]:
    """Global batches of ``order``, each cut to this process's shard; a trailing batch of
    one is dropped (batch norm cannot train on a single image)."""
    n = len(order)
    for start in range(0, n, batch_size):
        idx = order[start : start + batch_size]
        if len(idx) > 1 or n == 1:
            yield distributed.shard(idx)
