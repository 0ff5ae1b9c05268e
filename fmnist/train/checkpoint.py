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
from fmnist.models import build_model, list_models
from fmnist.models.classic import ClassicModel
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
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(payload, f)  # a file object: a path would name the archive after tmp


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
    the DVC cache of another revision); ``name`` says which in errors.

    Nothing is built from the file's word alone: its structure is checked, the model is
    built first on the meta device (no memory) and its tensor shapes compared with the
    file's, so a forged architecture option cannot allocate terabytes.
    """
    try:
        payload = torch.load(source, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch's own message suggests an unsafe retry: not shown
        raise PipelineError(
            f"{name}: not a checkpoint that loads safely ({type(exc).__name__}); it is "
            "corrupt or not this project's: retrain (dvc repro train) or restore it "
            "(dvc checkout)"
        ) from None
    problem = _structure_problem(payload)
    if problem:
        raise PipelineError(f"{name}: not a checkpoint of this project ({problem}); retrain")
    in_shape = tuple(payload["input"]["shape"])
    classes = len(payload["classes"])
    _check_shapes(payload, in_shape, classes, name)
    model = build_model(payload["model"], payload["arch"], in_shape, classes)
    try:
        model.load_state_dict(payload["state_dict"])
    except (RuntimeError, ValueError, KeyError, TypeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise PipelineError(
            f"{name}: its weights do not fit its model ({first}); the file is corrupt or "
            "edited: retrain (dvc repro train) or restore it (dvc checkout)"
        ) from None
    tensors = [t for t in model.state_dict().values() if t.is_floating_point()]
    if not all(torch.isfinite(t).all() for t in tensors):
        raise PipelineError(
            f"{name}: its weights are not all finite (NaN or inf): the training diverged or "
            "the file is corrupt; retrain with a lower model.lr"
        )
    meta = {k: v for k, v in payload.items() if k != "state_dict"}
    return model.to(device).eval(), meta


def _structure_problem(payload: Any) -> str:
    """What is wrong with a loaded payload's structure, or ''."""
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_VERSION:
        return "format"
    kinds = {"model": str, "arch": dict, "classes": list, "input": dict, "state_dict": dict}
    for key, kind in kinds.items():
        if not isinstance(payload.get(key), kind):
            return f"{key} missing or not a {kind.__name__}"
    if payload["model"] not in list_models():
        return f"unknown model {payload['model']!r}"
    if not all(isinstance(v, (bool, int, float, str)) for v in payload["arch"].values()):
        return "architecture options must be plain numbers or names"
    if not 2 <= len(payload["classes"]) <= 1000:
        return f"{len(payload['classes'])} classes"
    shape = payload["input"].get("shape")
    if not (
        isinstance(shape, list)
        and len(shape) == 3
        and all(isinstance(d, int) for d in shape)
        and 1 <= shape[0] <= 4
        and all(8 <= d <= 512 for d in shape[1:])
    ):
        return f"input shape {shape!r}"
    if not all(isinstance(v, torch.Tensor) for v in payload["state_dict"].values()):
        return "state_dict holds something other than tensors"
    return ""


def _check_shapes(payload: dict, in_shape: tuple, classes: int, name: str) -> None:
    """Refuse a checkpoint whose architecture options do not describe its own tensors."""
    try:
        with torch.device("meta"):
            skeleton = build_model(payload["model"], payload["arch"], in_shape, classes)
    except PipelineError as exc:
        raise PipelineError(f"{name}: its architecture is refused ({exc}); retrain") from None
    if isinstance(skeleton, ClassicModel):
        return  # a fitted estimator's sizes come from the fit, not the options
    expected = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    actual = {k: tuple(v.shape) for k, v in payload["state_dict"].items()}
    if expected != actual:
        wrong = sorted(set(expected) ^ set(actual)) or [
            k for k in expected if expected[k] != actual[k]
        ]
        raise PipelineError(
            f"{name}: its weights do not fit its architecture options (first: {wrong[0]}); "
            "the file is corrupt or edited: retrain (dvc repro train)"
        )
