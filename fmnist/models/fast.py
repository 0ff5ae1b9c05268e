"""``fastcnn``: the default model, designed for a good test accuracy quickly on a laptop CPU.

Three 3x3 convs of 32/64/128 filters, each followed by max-pool *then* batch norm and
ReLU: pooling first means the normalisation and activation touch a quarter of the
values (max-pool commutes with the monotonic ReLU; BN after the pool is a design
choice, not a rewrite of a reference model). With its recipe (conf/model/fastcnn.yaml:
Adam one-cycle, flips, label smoothing, flip TTA, 10 epochs on all 60,000 training
images) it reaches the best report's figure in about five minutes of a 2-core CPU.
"""

from __future__ import annotations

from torch import nn

from fmnist.models.layers import activation as make_activation
from fmnist.models.layers import conv, flat_size
from fmnist.models.registry import register_model


@register_model("fastcnn")
@register_model("fastcnn-photo")  # the same layers; its recipe trains them for photos
def fastcnn(
    in_shape: tuple[int, int, int] = (1, 28, 28),
    num_classes: int = 10,
    width: int = 32,
    activation: str = "relu",
    dropout: float = 0.25,
    stem: int = 0,
) -> nn.Module:
    """conv(w,same) pool bn act, conv(2w) pool bn act, conv(4w) bn act, drop, dense(10).

    ``stem`` > 0 puts a conv(stem,same) bn act in front, at full resolution: the layers
    before the first pool decide how much fine detail survives (a strided first layer
    cost 0.8 points), so that is where a little extra compute may pay most."""
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ValueError(f"width must be a whole number >= 1, got {width!r}")
    if isinstance(stem, bool) or not isinstance(stem, int) or stem < 0:
        raise ValueError(f"stem must be a whole number >= 0 (0: no stem), got {stem!r}")
    w = width
    head = (
        [conv(in_shape[0], stem, "same"), nn.BatchNorm2d(stem), make_activation(activation)]
        if stem
        else []
    )
    features = nn.Sequential(
        *head,
        conv(stem or in_shape[0], w, "same"),
        nn.MaxPool2d(2),
        nn.BatchNorm2d(w),
        make_activation(activation),
        conv(w, 2 * w),
        nn.MaxPool2d(2),
        nn.BatchNorm2d(2 * w),
        make_activation(activation),
        conv(2 * w, 4 * w),
        nn.BatchNorm2d(4 * w),
        make_activation(activation),
        nn.Flatten(),
    )
    return nn.Sequential(
        *features, nn.Dropout(dropout), nn.Linear(flat_size(features, in_shape), num_classes)
    )


@register_model("fastcnn-wide")
def fastcnn_wide(
    in_shape: tuple[int, int, int] = (1, 28, 28),
    num_classes: int = 10,
    width: int = 64,
    activation: str = "relu",
    dropout: float = 0.25,
    stem: int = 0,
) -> nn.Module:
    """fastcnn at twice the width (64/128/256 filters): its recipe adds a 16-filter
    stem, trains longer, with shifts, and averages shifted views at test time. The stem
    stays off by default so that runs from before it keep their meaning."""
    return fastcnn(in_shape, num_classes, width, activation, dropout, stem)


@register_model("fastcnn-hour")
def fastcnn_hour(
    in_shape: tuple[int, int, int] = (1, 28, 28),
    num_classes: int = 10,
    width: int = 64,
    activation: str = "relu",
    dropout: float = 0.25,
    stem: int = 16,
) -> nn.Module:
    """fastcnn-wide's layers (16-filter stem included) under their own name, for a CPU
    budget of an hour: its recipe is fastcnn-wide's for as many epochs as an hour of the
    project's slowest CPU kind (AVX2 only, fp32) trains."""
    return fastcnn(in_shape, num_classes, width, activation, dropout, stem)
