"""Building blocks that behave like the Keras layers the reports used.

Keras defaults matter for reproducing the reports: Glorot-uniform weights with zero
biases, batch norm with momentum 0.99 (PyTorch's 0.01) and epsilon 1e-3, LeakyReLU 0.1
where report A used it.
"""

from __future__ import annotations

import torch
from torch import nn

ACTIVATIONS = ("relu", "tanh", "sigmoid", "leaky_relu")


def activation(name: str) -> nn.Module:
    """The activation module for ``name`` (one of :data:`ACTIVATIONS`)."""
    if name == "relu":
        return nn.ReLU()
    if name == "tanh":
        return nn.Tanh()
    if name == "sigmoid":
        return nn.Sigmoid()
    if name == "leaky_relu":
        return nn.LeakyReLU(0.1)
    raise ValueError(f"activation {name!r}; valid: {', '.join(ACTIVATIONS)}")


def batch_norm(channels: int, dims: int = 2) -> nn.Module:
    """Batch norm with Keras's momentum (0.99 -> PyTorch 0.01) and epsilon (1e-3)."""
    cls = nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d
    return cls(channels, eps=1e-3, momentum=0.01)


def conv(c_in: int, c_out: int, padding: str = "valid") -> nn.Conv2d:
    """A 3x3, stride-1 convolution with Keras's ``valid``/``same`` padding."""
    return nn.Conv2d(c_in, c_out, kernel_size=3, padding=1 if padding == "same" else 0)


def keras_init(model: nn.Module) -> nn.Module:
    """Glorot-uniform weights and zero biases for every conv and linear layer (Keras)."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    return model


def flat_size(features: nn.Module, in_shape: tuple[int, int, int]) -> int:
    """Number of features ``features`` produces for one input of ``in_shape``."""
    with torch.no_grad():
        return int(features(torch.zeros(1, *in_shape)).numel())
