"""Stage export: models/model.onnx and model.ts, their contract, and an ONNX parity check."""

from fmnist.core.errors import run_stage
from fmnist.serve.export import CONTRACT, ONNX, TORCHSCRIPT, export


def main() -> None:
    export()
    print(f"{ONNX}, {TORCHSCRIPT}: exported; input contract in {CONTRACT}")


if __name__ == "__main__":
    run_stage(main)
