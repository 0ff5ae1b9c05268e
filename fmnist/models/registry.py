"""The model registry: ``@register_model`` a builder, build it by name, list the names.

A builder is a function whose keyword arguments are the model's architecture options
(activation, dropout, batch-norm...). Those arguments *are* the schema of the
``arch:`` block of a recipe (conf/model/), so a misspelt option is refused with the valid list.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from fmnist.core.errors import PipelineError
from fmnist.core.machine import memory_bytes
from fmnist.models.speedups import speed_up

# what training holds per parameter: fp32 weights, gradients and two optimizer moments
TRAINING_BYTES_PER_PARAMETER = 16
Builder = Callable[..., nn.Module]
Shape = tuple[int, int, int]  # channels, height, width
_REGISTRY: dict[str, Builder] = {}
# Options every builder receives from the data, not from the user's arch block.
DATA_OPTIONS = ("in_shape", "num_classes")


def register_model(name: str) -> Callable[[Builder], Builder]:
    """Register ``builder`` under ``name`` (a decorator)."""

    def wrap(builder: Builder) -> Builder:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} registered twice")
        _REGISTRY[name] = builder
        return builder

    return wrap


def list_models() -> list[str]:
    """All registered model names, sorted."""
    return sorted(_REGISTRY)


def builder_summary(name: str) -> str:
    """The first paragraph of ``name``'s builder docstring, on one line: its layers."""
    doc = inspect.getdoc(_builder(name)) or ""
    return " ".join(doc.split("\n\n")[0].split())


def arch_defaults(name: str) -> dict[str, Any]:
    """The architecture options of ``name`` with their default values."""
    signature = inspect.signature(_builder(name))
    return {
        key: p.default
        for key, p in signature.parameters.items()
        if key not in DATA_OPTIONS and p.default is not inspect.Parameter.empty
    }


def check_arch(
    name: str,
    arch: dict[str, Any],
    in_shape: Shape = (1, 28, 28),
    num_classes: int = 10,
) -> list[str]:
    """Problems with ``arch`` for model ``name`` (unknown keys, bad values, a size this
    machine cannot train), as messages.

    The model is built on PyTorch's meta device, which allocates nothing: shapes and
    parameter counts in a fraction of a second at any size, so a bad activation name,
    an input the layers cannot take or a width of 10**9 is reported with the other
    params problems before any work starts, and before any memory is spent.
    """
    valid = arch_defaults(name)
    problems = [
        f"model.arch.{key} is not an option of {name}; valid: {', '.join(sorted(valid))}"
        for key in arch
        if key not in valid
    ]
    if problems:
        return problems
    try:
        with torch.device("meta"):
            model = _builder(name)(in_shape=in_shape, num_classes=num_classes, **arch)
    except (ValueError, TypeError, RuntimeError, OverflowError) as exc:
        return [f"model.arch: {name} cannot be built with {arch}: {_first_line(exc)}"]
    size = sum(t.numel() for t in [*model.parameters(), *model.buffers()])
    if size * TRAINING_BYTES_PER_PARAMETER > memory_bytes() // 2:
        problems.append(
            f"model.arch: {name} with {arch} has {size:,} parameters, "
            f"{size * TRAINING_BYTES_PER_PARAMETER / 2**30:,.1f} GiB to train (weights, "
            f"gradients, optimizer state), over half of this machine's "
            f"{memory_bytes() / 2**30:.0f} GiB; use a smaller model"
        )
    return problems


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def build_model(
    name: str,
    arch: dict[str, Any] | None = None,
    in_shape: tuple[int, int, int] = (1, 28, 28),
    num_classes: int = 10,
    fast: bool = True,
) -> nn.Module:
    """Build model ``name`` with architecture options ``arch``; it returns logits.

    ``fast`` applies :func:`fmnist.models.speedups.speed_up` (same math, faster layers);
    ``fast=False`` gives the layers exactly as the reference describes them (summaries,
    the benchmark's plain baseline).
    """
    arch = dict(arch or {})
    problems = check_arch(name, arch, in_shape, num_classes)
    if problems:
        raise PipelineError("; ".join(problems))
    # Every recorded run drew its initial weights after one build of the default-shaped
    # layers (the check built them, before it moved to the meta device): drawing the same
    # way keeps the same seed giving the same weights, and so the recorded results.
    _builder(name)(**arch)
    try:
        model = _builder(name)(in_shape=in_shape, num_classes=num_classes, **arch)
    except ValueError as exc:  # e.g. an input shape the layers cannot take
        raise PipelineError(f"model {name} cannot be built: {exc}") from None
    return speed_up(model) if fast else model


def _builder(name: str) -> Builder:
    if name not in _REGISTRY:
        raise PipelineError(f"unknown model {name!r}; valid names: {', '.join(list_models())}")
    return _REGISTRY[name]
