"""Export the trained model to ONNX and TorchScript, and prove the ONNX copy agrees.

Both files take float32 images (N, C, H, W) scaled to [0, 1] (pixel / 255) and return
class probabilities; ``contract.json`` beside them says exactly that, with the class
names, so a user of the files needs nothing from this project.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from fmnist.core import layout
from fmnist.core.atomic import atomic_group, atomic_path, write_json
from fmnist.core.errors import PipelineError
from fmnist.data.prepared import load_split
from fmnist.train.batches import PIXEL_SCALE
from fmnist.train.checkpoint import load_checkpoint

ONNX = layout.MODELS / "model.onnx"
TORCHSCRIPT = layout.MODELS / "model.ts"
CONTRACT = layout.MODELS / "contract.json"
EXPORT_JSON = layout.METRICS / "export.json"
MIN_AGREEMENT = 0.999


class WithSoftmax(nn.Module):
    """The model with probabilities as its output (what a deployed model should return)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(images), dim=1)


def export(model_path: Path = layout.MODEL, test_path: Path | None = None) -> dict[str, Any]:
    """Write model.onnx, model.ts and contract.json; check ONNX parity on the test set."""
    model, meta = load_checkpoint(model_path, "cpu")
    wrapped = WithSoftmax(model).eval()
    shape = tuple(meta["input"]["shape"])
    example = torch.zeros(2, *shape)
    test = load_split(test_path or layout.split_path("test"))
    with atomic_group() as stage:  # all four, or (a failure) none and the last good ones
        onnx_path = stage(ONNX)
        with atomic_path(onnx_path) as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's deprecation chatter
            torch.onnx.export(
                wrapped,
                (example,),
                str(tmp),
                dynamo=False,
                opset_version=17,
                input_names=["images"],
                output_names=["probabilities"],
                dynamic_axes={"images": {0: "batch"}, "probabilities": {0: "batch"}},
            )
        with atomic_path(stage(TORCHSCRIPT)) as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with open(tmp, "wb") as f:  # a path would name the archive after the temp file
                torch.jit.save(torch.jit.trace(wrapped, example), f)
        write_json(stage(CONTRACT), contract(meta))
        result = {"export": parity(wrapped, test.images, onnx_path)}
        if result["export"]["onnx_agreement"] < MIN_AGREEMENT:
            raise PipelineError(
                f"ONNX model agrees with PyTorch on only "
                f"{result['export']['onnx_agreement']:.4%} of test images (need "
                f"{MIN_AGREEMENT:.1%}); the export is wrong, report a bug"
            )
        write_json(stage(EXPORT_JSON), result)
    return result


def contract(meta: dict[str, Any]) -> dict[str, Any]:
    """The model's input/output contract, for users of the exported files."""
    return {
        "model": meta["model"],
        "input": {
            "name": "images",
            "shape": ["batch", *meta["input"]["shape"]],
            "dtype": "float32",
            "scaling": f"pixel * {PIXEL_SCALE!r} (uint8 0-255 -> 0-1), no mean/std",
            "convention": "grayscale, garment light on a dark background, centred",
        },
        "output": {"name": "probabilities", "shape": ["batch", len(meta["classes"])]},
        "classes": meta["classes"],
        "files": {"onnx": ONNX.name, "torchscript": TORCHSCRIPT.name},
    }


def parity(model: nn.Module, images: np.ndarray, onnx_path: Path) -> dict[str, Any]:
    """Same predicted class for what fraction of ``images``; the largest probability gap."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    nchw = images[:, None] if images.ndim == 3 else images.transpose(0, 3, 1, 2)
    x = np.ascontiguousarray(nchw, dtype=np.float32) * PIXEL_SCALE
    agree, max_diff = 0, 0.0
    for start in range(0, len(x), 1000):
        batch = x[start : start + 1000]
        with torch.inference_mode():
            expected = model(torch.from_numpy(batch)).numpy()
        got = session.run(None, {"images": batch})[0]
        agree += int((expected.argmax(1) == got.argmax(1)).sum())
        max_diff = max(max_diff, float(np.abs(expected - got).max()))
    print(
        f"ONNX parity on {len(x):,} test images: {agree / len(x):.4%} same class, "
        f"max probability difference {max_diff:.2e}"
    )
    return {
        "onnx_agreement": round(agree / len(x), 6),
        "onnx_max_probability_diff": max_diff,
        "images": len(x),
    }
