"""The model file: weights plus everything needed to rebuild the model alone.

Saved with ``torch.save`` as plain containers and tensors, loaded with
``weights_only=True``: loading a checkpoint can never execute code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, BinaryIO

import torch
from torch import nn

from fmnist.core.atomic import atomic_path
from fmnist.core.errors import PipelineError
from fmnist.models import build_model
from fmnist.train.batches import PIXEL_SCALE

FORMAT_VERSION = 1


def save_checkpoint(
    path: str | Path,
    *,
    model_name: str,
    arch: dict[str, Any],
    state_dict: dict[str, torch.Tensor],
    classes: tuple[str, ...],
    in_shape: tuple[int, int, int],
    extra: dict[str, Any] | None = None,
) -> None:
    """Write the checkpoint atomically."""
    payload = {
        "format": FORMAT_VERSION,
        "model": model_name,
        "arch": dict(arch),
        "classes": list(classes),
        "input": {"shape": list(in_shape), "scale": PIXEL_SCALE, "mean": 0.0, "std": 1.0},
        "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
        "extra": dict(extra or {}),
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | Path, device: torch.device | str = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild the model from ``path``; returns (model in eval mode, checkpoint metadata)."""
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"{path} is missing; run `dvc repro train` first")
    return read_checkpoint(path, str(path), device)


def read_checkpoint(
    source: Path | BinaryIO, name: str, device: torch.device | str = "cpu"
) -> tuple[nn.Module, dict]:
    """:func:`load_checkpoint` from a file or an in-memory stream (a checkpoint read from
    the DVC cache of another revision); ``name`` says which in errors."""
    try:
        payload = torch.load(source, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise PipelineError(f"{name}: not a valid checkpoint ({exc}); retrain the model") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_VERSION:
        raise PipelineError(f"{name}: not a checkpoint of this project (format); retrain")
    in_shape = tuple(payload["input"]["shape"])
    model = build_model(payload["model"], payload["arch"], in_shape, len(payload["classes"]))
    model.load_state_dict(payload["state_dict"])
    meta = {k: v for k, v in payload.items() if k != "state_dict"}
    return model.to(device).eval(), meta
