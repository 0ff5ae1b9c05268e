"""The standard protocols, spoken by clients no one here wrote: Triton's own HTTP client
(``tritonclient``) against the Open Inference Protocol endpoints, and the Triton model
repository export checked against the ONNX file."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.http as triton
from conftest import ROOT, synthetic_split
from PIL import Image

from bench.serve_load import start_server
from fmnist.serve.images import to_model_input
from fmnist.serve.triton import export

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def client(exported: Path):
    proc, url = start_server(exported / "models")
    try:
        yield triton.InferenceServerClient(url.removeprefix("http://"))
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def pictures(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("pictures")
    paths = []
    for i, image in enumerate(synthetic_split(6, 3)[0]):
        paths.append(folder / f"garment{i}.png")
        Image.fromarray(image).resize((112, 112)).save(paths[-1])
    return paths


def test_health_and_metadata_through_tritonclient(client) -> None:
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("fmnist")
    meta = client.get_model_metadata("fmnist")
    assert meta["inputs"] == [{"name": "images", "datatype": "FP32", "shape": [-1, 1, 28, 28]}]
    assert meta["outputs"] == [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]}]


@pytest.mark.parametrize("binary", [True, False])
def test_infer_through_tritonclient_equals_fmnist_predict(
    client, exported: Path, pictures: list[Path], tmp_path: Path, binary: bool
) -> None:
    x = np.stack([to_model_input(p, (1, 28, 28)) for p in pictures])[:, None] / np.float32(255)
    tensor = triton.InferInput("images", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x.astype(np.float32), binary_data=binary)
    wanted = triton.InferRequestedOutput("probabilities", binary_data=binary)
    served = client.infer("fmnist", [tensor], outputs=[wanted]).as_numpy("probabilities")
    table = tmp_path / "predictions.csv"
    predict = [sys.executable, "-m", "fmnist.serve.predict", *map(str, pictures)]
    model = str(exported / "models/model.pt")
    done = subprocess.run(
        [*predict, "--model", model, "--top-k", "1", "--csv", str(table)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(table.open()))
    classes = triton_classes(exported)
    assert [r["class1"] for r in rows] == [classes[i] for i in served.argmax(axis=1)]
    for row, probabilities in zip(rows, served, strict=True):
        assert float(row["probability1"]) == pytest.approx(probabilities.max(), abs=1e-4)


def triton_classes(exported: Path) -> list[str]:
    import json

    return json.loads((exported / "models/contract.json").read_text())["classes"]


def test_a_bad_tensor_gets_the_protocols_error(client) -> None:
    tensor = triton.InferInput("images", [1, 1, 27, 28], "FP32")
    tensor.set_data_from_numpy(np.zeros((1, 1, 27, 28), np.float32))
    with pytest.raises(triton.InferenceServerException, match=r"is not \[N, 1, 28, 28\]"):
        client.infer("fmnist", [tensor])


def test_the_triton_repository_matches_the_onnx_model(exported: Path, tmp_path: Path) -> None:
    folder = export(exported / "models", tmp_path / "triton", max_batch=32)
    config = (folder / "config.pbtxt").read_text()
    onnx = folder / "1" / "model.onnx"
    assert onnx.read_bytes() == (exported / "models/model.onnx").read_bytes()
    session = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    assert re.search(r'^name: "fmnist"$', config, re.M)
    assert 'backend: "onnxruntime"' in config and "max_batch_size: 32" in config
    blocks = re.findall(r'name: "(\w+)"\s+data_type: (\w+)\s+dims: \[ ([\d, ]+) \]', config)
    declared = [(n, t, [int(d) for d in dims.split(", ")]) for n, t, dims in blocks]
    onnx_side = [
        (arg.name, "TYPE_FP32", list(arg.shape[1:]))
        for arg in (*session.get_inputs(), *session.get_outputs())
        if arg.type == "tensor(float)"
    ]
    assert (
        declared
        == onnx_side
        == [("images", "TYPE_FP32", [1, 28, 28]), ("probabilities", "TYPE_FP32", [10])]
    )
    assert all(arg.shape[0] == "batch" for arg in session.get_inputs())  # Triton batches
    assert "dynamic_batching" in config
