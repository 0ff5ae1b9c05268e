"""Keras-style sequential models written as data: a list of layer specs, built in order.

Report B's six models, report C's and E's tutorial CNNs and report D's VGG differ only in
their layer lists, so each is a short spec here instead of a copy of the same code.

Spec items:
    ("conv", filters, padding, activation)   3x3 conv, padding "valid" or "same"
    ("pool",)                                 2x2 max-pool, stride 2
    ("bn",)                                   batch norm (2d after convs, 1d after flatten)
    ("drop", p)                               dropout
    ("flatten",)
    ("dense", units, activation)              a hidden fully connected layer
A final ``dense(num_classes)`` returning logits is appended by :func:`build_sequential`.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from fmnist.models.layers import activation, batch_norm, conv, keras_init
from fmnist.models.registry import Shape, register_model

Spec = list[tuple[Any, ...]]


def build_sequential(spec: Spec, in_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """Build ``spec`` for inputs of ``in_shape`` (C, H, W); returns logits."""
    layers: list[nn.Module] = []
    shape: tuple[int, ...] = in_shape
    for op, *args in spec:
        if op == "conv":
            filters, padding, act = args
            if padding == "valid" and min(shape[1:]) < 3:
                raise ValueError(f"input {in_shape} too small for this model's convolutions")
            layers += [conv(shape[0], filters, padding), activation(act)]
            trim = 0 if padding == "same" else 2
            shape = (filters, shape[1] - trim, shape[2] - trim)
        elif op == "pool":
            layers.append(nn.MaxPool2d(2))
            shape = (shape[0], shape[1] // 2, shape[2] // 2)
        elif op == "bn":
            layers.append(batch_norm(shape[0], dims=2 if len(shape) == 3 else 1))
        elif op == "drop":
            layers.append(nn.Dropout(args[0]))
        elif op == "flatten":
            layers.append(nn.Flatten())
            shape = (shape[0] * shape[1] * shape[2],)
        elif op == "dense":
            units, act = args
            layers += [nn.Linear(shape[0], units), activation(act)]
            shape = (units,)
        else:
            raise ValueError(f"unknown layer spec {op!r}")
    layers.append(nn.Linear(shape[0], num_classes))
    return keras_init(nn.Sequential(*layers))


def _head(dropout: float, act: str) -> Spec:
    return [("flatten",), ("dense", 256, act), ("drop", dropout)]


def _convs(filters: tuple[int, int, int, int], act: str) -> Spec:
    """Report B's conv, conv, pool, conv, conv, pool body (same padding)."""
    a, b, c, d = filters
    return [
        ("conv", a, "same", act),
        ("conv", b, "same", act),
        ("pool",),
        ("conv", c, "same", act),
        ("conv", d, "same", act),
        ("pool",),
    ]


@register_model("seq1")
def seq1(
    in_shape: Shape = (1, 28, 28), num_classes: int = 10, activation: str = "relu"
) -> nn.Module:
    """Report B: conv(32), conv(64), flatten, dense(10); valid padding as its summary shows."""
    spec = [("conv", 32, "valid", activation), ("conv", 64, "valid", activation), ("flatten",)]
    return build_sequential(spec, in_shape, num_classes)


@register_model("seq2")
def seq2(
    in_shape: Shape = (1, 28, 28),
    num_classes: int = 10,
    activation: str = "relu",
    dropout: float = 0.5,
) -> nn.Module:
    """Report B: 8-16-pool-32-64-pool convs, flatten, bn, dense(256), drop, dense(10)."""
    spec = [
        *_convs((8, 16, 32, 64), activation),
        ("flatten",),
        ("bn",),
        ("dense", 256, activation),
        ("drop", dropout),
    ]
    return build_sequential(spec, in_shape, num_classes)


@register_model("seq3")
def seq3(
    in_shape: Shape = (1, 28, 28),
    num_classes: int = 10,
    activation: str = "relu",
    dropout: float = 0.5,
) -> nn.Module:
    """Report B: conv(32) bn pool, conv(64) bn pool, dense(256), drop, dense(10)."""
    spec = [
        ("conv", 32, "same", activation),
        ("bn",),
        ("pool",),
        ("conv", 64, "same", activation),
        ("bn",),
        ("pool",),
        *_head(dropout, activation),
    ]
    return build_sequential(spec, in_shape, num_classes)


@register_model("seq4")
def seq4(
    in_shape: Shape = (1, 28, 28),
    num_classes: int = 10,
    activation: str = "relu",
    dropout: float = 0.5,
) -> nn.Module:
    """Report B: 64-32-pool-16-8-pool convs, dense(256), drop, dense(10)."""
    spec = [*_convs((64, 32, 16, 8), activation), *_head(dropout, activation)]
    return build_sequential(spec, in_shape, num_classes)


@register_model("seq5")
def seq5(
    in_shape: Shape = (1, 28, 28),
    num_classes: int = 10,
    activation: str = "relu",
    dropout: float = 0.5,
) -> nn.Module:
    """Report B: 16-16-pool-32-32-pool convs, dense(256), drop, dense(10)."""
    spec = [*_convs((16, 16, 32, 32), activation), *_head(dropout, activation)]
    return build_sequential(spec, in_shape, num_classes)


@register_model("seq6")
def seq6(
    in_shape: Shape = (1, 28, 28),
    num_classes: int = 10,
    activation: str = "relu",
    dropout: float = 0.5,
) -> nn.Module:
    """Report B: 32-32-pool-16-16-pool convs, dense(256), drop, dense(10)."""
    spec = [*_convs((32, 32, 16, 16), activation), *_head(dropout, activation)]
    return build_sequential(spec, in_shape, num_classes)


def _tutorial(hidden: int, act: str) -> Spec:
    """The TensorFlow tutorial CNN: conv(32) pool conv(64) pool conv(64) dense(hidden)."""
    return [
        ("conv", 32, "valid", act),
        ("pool",),
        ("conv", 64, "valid", act),
        ("pool",),
        ("conv", 64, "valid", act),
        ("flatten",),
        ("dense", hidden, act),
    ]


@register_model("cnn3")
def cnn3(
    in_shape: Shape = (1, 28, 28), num_classes: int = 10, activation: str = "relu", hidden: int = 54
) -> nn.Module:
    """Report C: the TensorFlow tutorial CNN with dense(54); logits (not its sigmoid)."""
    return build_sequential(_tutorial(hidden, activation), in_shape, num_classes)


@register_model("cifar-cnn")
def cifar_cnn(
    in_shape: Shape = (1, 28, 28), num_classes: int = 10, activation: str = "relu", hidden: int = 64
) -> nn.Module:
    """Report E: the CIFAR-10 tutorial CNN (122,570 params on 32x32x3) on any input."""
    return build_sequential(_tutorial(hidden, activation), in_shape, num_classes)


@register_model("vgg")
def vgg(
    in_shape: Shape = (1, 28, 28),
    num_classes: int = 10,
    activation: str = "tanh",
    dense_activation: str = "relu",
    dropout1: float = 0.2,
    dropout2: float = 0.3,
    dropout3: float = 0.4,
    head_dropout: float = 0.5,
) -> nn.Module:
    """Report D: 3 VGG blocks [conv tanh, bn, conv tanh, bn, pool, drop] of 32/64/128,
    then dense(16) relu, bn, drop(0.5), dense(10)."""
    spec: Spec = []
    for filters, p in ((32, dropout1), (64, dropout2), (128, dropout3)):
        spec += [
            ("conv", filters, "same", activation),
            ("bn",),
            ("conv", filters, "same", activation),
            ("bn",),
            ("pool",),
            ("drop", p),
        ]
    spec += [("flatten",), ("dense", 16, dense_activation), ("bn",), ("drop", head_dropout)]
    return build_sequential(spec, in_shape, num_classes)
