"""A Keras-style model summary: layer, output shape, parameters; totals at the bottom.

Parameters are counted the Keras way, so they match the reports: batch norm's running
mean and variance (buffers in PyTorch) count as non-trainable parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

KERAS_BUFFERS = ("running_mean", "running_var")


@dataclass(frozen=True)
class LayerRow:
    name: str
    kind: str
    output_shape: tuple[int, ...]
    trainable: int
    non_trainable: int


def keras_param_counts(model: nn.Module) -> tuple[int, int]:
    """(trainable, non-trainable) parameters as Keras counts them.

    Two conventions differ from PyTorch's: batch norm's running mean and variance are
    buffers in PyTorch but non-trainable weights in Keras (counted here), and PyTorch's
    recurrent layers keep two bias vectors (``bias_ih`` and ``bias_hh``) where Keras keeps
    one (``bias_hh`` is not counted: it is frozen at zero, see
    :mod:`fmnist.models.recurrent`, and only ever appears in the sum with ``bias_ih``).
    """
    duplicate = {
        id(p)
        for m in model.modules()
        if isinstance(m, nn.RNNBase)
        for name, p in m.named_parameters(recurse=False)
        if name.startswith("bias_hh")
    }
    params = [p for p in model.parameters() if id(p) not in duplicate]
    trainable = sum(p.numel() for p in params if p.requires_grad)
    frozen = sum(p.numel() for p in params if not p.requires_grad)
    buffers = sum(b.numel() for n, b in model.named_buffers() if n.endswith(KERAS_BUFFERS))
    return trainable, frozen + buffers


def layer_rows(model: nn.Module, in_shape: tuple[int, int, int]) -> list[LayerRow]:
    """One row per leaf module, with its output shape for a single input."""
    rows: list[LayerRow] = []
    hooks = []
    for name, module in model.named_modules():
        if list(module.children()):
            continue

        def hook(mod: nn.Module, _inp: object, out: torch.Tensor, name: str = name) -> None:
            out = out[0] if isinstance(out, tuple) else out
            trainable, non_trainable = keras_param_counts(mod)
            shape = (None, *out.shape[1:])
            rows.append(LayerRow(name, type(mod).__name__, shape, trainable, non_trainable))

        hooks.append(module.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            device = next(model.parameters()).device
            model(torch.zeros(1, *in_shape, device=device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return rows


def summary(model: nn.Module, in_shape: tuple[int, int, int], title: str = "") -> str:
    """The summary as text, like Keras's ``model.summary()``."""
    rows = layer_rows(model, in_shape)
    lines = [f'Model: "{title}"'] if title else []
    header = f"{'Layer (type)':<34}{'Output Shape':<24}{'Param #':>12}"
    rule = "=" * len(header)
    lines += [rule, header, rule]
    for r in rows:
        shape = "(" + ", ".join("None" if d is None else str(d) for d in r.output_shape) + ")"
        layer = f"{r.name} ({r.kind})"
        lines.append(f"{layer:<34}{shape:<24}{r.trainable + r.non_trainable:>12,}")
    trainable, non_trainable = keras_param_counts(model)
    lines += [
        rule,
        f"Total params: {trainable + non_trainable:,}",
        f"Trainable params: {trainable:,}",
        f"Non-trainable params: {non_trainable:,}",
        rule,
    ]
    return "\n".join(lines) + "\n"
