"""Wide residual networks (Zagoruyko & Komodakis, 2016) sized for 28x28 inputs.

WRN-d-k: a 3x3 stem, then three groups of (d - 4) / 6 pre-activation basic blocks at
28x28, 14x14 and 7x7 with 16k, 32k and 64k channels, global average pooling, one linear
layer. Published Fashion-MNIST results for this family reach 96%+ (WRN-28-10 with random
erasing). ``wrn-16-4`` (2.7M parameters) is the accuracy model for a GPU; ``wrn-16-1``
(0.18M) is the same design small enough to train on a laptop CPU.
"""

from __future__ import annotations

import torch
from torch import nn

from fmnist.models.registry import register_model


class WideBlock(nn.Module):
    """BN-ReLU-conv, BN-ReLU-(dropout)-conv, plus the input (1x1 conv when the shape
    changes)."""

    def __init__(self, c_in: int, c_out: int, stride: int, dropout: float) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.drop = nn.Dropout(dropout) if dropout else nn.Identity()
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.shortcut = (
            nn.Conv2d(c_in, c_out, 1, stride, bias=False) if stride != 1 or c_in != c_out else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(x))
        skip = x if self.shortcut is None else self.shortcut(out)
        out = self.conv1(out)
        out = self.conv2(self.drop(torch.relu(self.bn2(out))))
        return out + skip


def _wrn(
    in_shape: tuple[int, int, int], num_classes: int, depth: int, widen: int, dropout: float
) -> nn.Module:
    if depth < 10 or (depth - 4) % 6:
        raise ValueError(f"depth must be 6n + 4 with n >= 1 (10, 16, 22, 28...), got {depth}")
    if widen < 1:
        raise ValueError(f"widen must be >= 1, got {widen}")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    blocks = (depth - 4) // 6
    widths = (16 * widen, 32 * widen, 64 * widen)
    layers: list[nn.Module] = [nn.Conv2d(in_shape[0], 16, 3, 1, 1, bias=False)]
    c_in = 16
    for group, width in enumerate(widths):
        for b in range(blocks):
            stride = 2 if group > 0 and b == 0 else 1
            layers.append(WideBlock(c_in, width, stride, dropout))
            c_in = width
    layers += [
        nn.BatchNorm2d(c_in),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(c_in, num_classes),
    ]
    model = nn.Sequential(*layers)
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    return model


@register_model("wrn-16-4")
def wrn_16_4(
    in_shape: tuple[int, int, int] = (1, 28, 28),
    num_classes: int = 10,
    depth: int = 16,
    widen: int = 4,
    dropout: float = 0.0,
) -> nn.Module:
    """WRN-16-4: 2.75M parameters; the best-accuracy model (GPU)."""
    return _wrn(in_shape, num_classes, depth, widen, dropout)


@register_model("wrn-16-1")
def wrn_16_1(
    in_shape: tuple[int, int, int] = (1, 28, 28),
    num_classes: int = 10,
    depth: int = 16,
    widen: int = 1,
    dropout: float = 0.0,
) -> nn.Module:
    """WRN-16-1: 0.18M parameters; a residual network a laptop CPU can train."""
    return _wrn(in_shape, num_classes, depth, widen, dropout)
