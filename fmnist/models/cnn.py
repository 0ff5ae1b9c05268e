"""Report A's CNNs: ``cnn1`` ("class model") and ``cnn2`` ("researched model").

Each family has a plain and a ``-bn`` variant; both are one builder whose options
(activation, batchnorm, dropout) are the variations the report tried, so every variant
is a ``dvc exp run -S models.cnn1.arch...`` away.
"""

from __future__ import annotations

from torch import nn

from fmnist.models.layers import activation, batch_norm, conv, flat_size, keras_init
from fmnist.models.registry import register_model


def _cnn1(
    in_shape: tuple[int, int, int],
    num_classes: int,
    activation_name: str,
    batchnorm: bool,
    conv_dropout: float,
    dropout: float,
) -> nn.Module:
    layers: list[nn.Module] = []
    c_in = in_shape[0]
    for c_out in (32, 64):
        layers += [conv(c_in, c_out), activation(activation_name)]
        if batchnorm:
            layers.append(batch_norm(c_out))
        if conv_dropout:
            layers.append(nn.Dropout(conv_dropout))
        layers.append(nn.MaxPool2d(2))
        c_in = c_out
    features = nn.Sequential(*layers, nn.Flatten())
    head = nn.Sequential(nn.Dropout(dropout), nn.Linear(flat_size(features, in_shape), num_classes))
    return keras_init(nn.Sequential(*features, *head))


@register_model("cnn1")
def cnn1(
    in_shape: tuple[int, int, int] = (1, 28, 28),
    num_classes: int = 10,
    activation: str = "relu",
    batchnorm: bool = False,
    conv_dropout: float = 0.0,
    dropout: float = 0.5,
) -> nn.Module:
    """conv(32), pool, conv(64), pool, flatten, drop(0.5), dense(10): 34,826 params."""
    return _cnn1(in_shape, num_classes, activation, batchnorm, conv_dropout, dropout)


@register_model("cnn1-bn")
def cnn1_bn(
    in_shape: tuple[int, int, int] = (1, 28, 28),
    num_classes: int = 10,
    activation: str = "relu",
    batchnorm: bool = True,
    conv_dropout: float = 0.1,
    dropout: float = 0.5,
) -> nn.Module:
    """cnn1 with batch norm and drop(0.1) after each conv (report A's 92.53% model)."""
    return _cnn1(in_shape, num_classes, activation, batchnorm, conv_dropout, dropout)


def _cnn2(
    in_shape: tuple[int, int, int],
    num_classes: int,
    activation_name: str,
    batchnorm: bool,
    dropouts: tuple[float, float, float],
) -> nn.Module:
    def block(c_in: int, c_out: int, padding: str) -> list[nn.Module]:
        layers = [conv(c_in, c_out, padding), activation(activation_name)]
        return [*layers, batch_norm(c_out)] if batchnorm else layers

    features = nn.Sequential(
        *block(in_shape[0], 32, "same"),
        nn.MaxPool2d(2),
        nn.Dropout(dropouts[0]),
        *block(32, 64, "same"),
        nn.MaxPool2d(2),
        nn.Dropout(dropouts[1]),
        *block(64, 128, "valid"),
        nn.Flatten(),
    )
    head = nn.Sequential(
        nn.Linear(flat_size(features, in_shape), 128),
        activation(activation_name),
        nn.Dropout(dropouts[2]),
        nn.Linear(128, num_classes),
    )
    return keras_init(nn.Sequential(*features, *head))


@register_model("cnn2")
def cnn2(
    in_shape: tuple[int, int, int] = (1, 28, 28),
    num_classes: int = 10,
    activation: str = "leaky_relu",
    batchnorm: bool = False,
    dropout1: float = 0.3,
    dropout2: float = 0.5,
    dropout3: float = 0.3,
) -> nn.Module:
    """LeakyReLU(0.1): conv(32,same) pool drop, conv(64,same) pool drop, conv(128),
    dense(128) drop, dense(10)."""
    return _cnn2(in_shape, num_classes, activation, batchnorm, (dropout1, dropout2, dropout3))


@register_model("cnn2-bn")
def cnn2_bn(
    in_shape: tuple[int, int, int] = (1, 28, 28),
    num_classes: int = 10,
    activation: str = "leaky_relu",
    batchnorm: bool = True,
    dropout1: float = 0.3,
    dropout2: float = 0.5,
    dropout3: float = 0.3,
) -> nn.Module:
    """cnn2 with batch norm after each of its three convs (report A's best, 93.38%)."""
    return _cnn2(in_shape, num_classes, activation, batchnorm, (dropout1, dropout2, dropout3))
