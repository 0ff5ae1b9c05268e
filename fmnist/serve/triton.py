"""Export the model as a Triton Inference Server model repository.

    python -m fmnist.serve.triton [--models models] [--out triton] [--max-batch 64]

writes ``<out>/fmnist/config.pbtxt`` and ``<out>/fmnist/1/model.onnx``: the ONNX file
of the export stage under Triton's ONNX Runtime backend, its input and output tensors
as the file declares them (the batch dimension left to Triton), and dynamic batching.
Serve it with ``tritonserver --model-repository=<out>`` (docs/serving.md); clients of
this project's own server (:mod:`fmnist.serve.v2`) then work unchanged.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from fmnist.core.atomic import atomic_dir
from fmnist.core.errors import PipelineError, run_stage
from fmnist.serve.v2 import NAME, VERSION

ONNX_TYPES = {"tensor(float)": "TYPE_FP32", "tensor(uint8)": "TYPE_UINT8"}


def tensors(
    onnx: Path,
) -> tuple[list[tuple[str, str, list[int]]], list[tuple[str, str, list[int]]]]:
    """(name, Triton type, dims without the batch) of the model's inputs and outputs."""
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's own types
        raise PipelineError(
            f"{onnx} is not a model ONNX Runtime can load ({exc}); run `dvc repro export`"
        ) from None

    def describe(args: list) -> list[tuple[str, str, list[int]]]:
        out = []
        for arg in args:
            if arg.type not in ONNX_TYPES:
                raise PipelineError(
                    f"{onnx}: tensor {arg.name} is {arg.type}, which this export does not map"
                )
            out.append((arg.name, ONNX_TYPES[arg.type], [int(d) for d in arg.shape[1:]]))
        return out

    return describe(session.get_inputs()), describe(session.get_outputs())


def config_text(onnx: Path, max_batch: int) -> str:
    """config.pbtxt for the ONNX file, in Triton's protobuf text format."""
    inputs, outputs = tensors(onnx)

    def block(kind: str, items: list[tuple[str, str, list[int]]]) -> str:
        entries = ",\n".join(
            f'  {{\n    name: "{name}"\n    data_type: {dtype}\n'
            f"    dims: [ {', '.join(map(str, dims))} ]\n  }}"
            for name, dtype, dims in items
        )
        return f"{kind} [\n{entries}\n]\n"

    return (
        f'name: "{NAME}"\n'
        'backend: "onnxruntime"\n'
        f"max_batch_size: {max_batch}\n"
        + block("input", inputs)
        + block("output", outputs)
        + "dynamic_batching {\n  max_queue_delay_microseconds: 500\n}\n"
        + "instance_group [\n  {\n    kind: KIND_AUTO\n  }\n]\n"
    )


def export(models: Path, out: Path, max_batch: int = 64) -> Path:
    """Write the repository under ``out`` (replacing the model's folder whole)."""
    onnx = models / "model.onnx"
    if not onnx.is_file():
        raise PipelineError(f"{onnx} is missing; run `dvc repro export` first")
    if not 1 <= max_batch <= 4096:
        raise PipelineError(f"--max-batch is {max_batch}; use 1 to 4096")
    text = config_text(onnx, max_batch)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_dir(out / NAME) as tmp:
        (tmp / VERSION).mkdir()
        shutil.copyfile(onnx, tmp / VERSION / "model.onnx")
        (tmp / "config.pbtxt").write_text(text)
    return out / NAME


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--out", type=Path, default=Path("triton"))
    parser.add_argument("--max-batch", type=int, default=64)
    args = parser.parse_args()
    folder = export(args.models, args.out, args.max_batch)
    print(f"wrote {folder}/config.pbtxt and {folder}/{VERSION}/model.onnx")
    print(f"serve it: tritonserver --model-repository={args.out.resolve()}")


if __name__ == "__main__":
    run_stage(main)
