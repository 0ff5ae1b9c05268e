"""The Open Inference Protocol (KServe V2), the REST API Triton, KServe and Seldon speak:
a client written for them (``tritonclient.http``, say) works here unchanged, and the
model moves to Triton (:mod:`fmnist.serve.triton`) without touching clients.

    GET  /v2                          the server's name, version and extensions
    GET  /v2/health/live              200 while the process runs
    GET  /v2/health/ready             200 once the model is loaded
    GET  /v2/models/fmnist            inputs, outputs, datatypes and shapes
    GET  /v2/models/fmnist/ready
    POST /v2/models/fmnist/infer      named tensors in, named tensors out

The tensor is the ONNX model's own input: ``images``, FP32, ``[N, 1, 28, 28]``, pixels
scaled to 0..1 (``contract.json``); the output ``probabilities`` is FP32 ``[N, 10]``.
Data comes as JSON lists or in the binary tensor extension (what ``tritonclient`` sends
by default: a JSON header of ``Inference-Header-Content-Length`` bytes, then raw
little-endian tensors). Errors are the protocol's ``{"error": "..."}``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

if TYPE_CHECKING:
    from fmnist.serve.server import OnnxModel

NAME = "fmnist"  # the model's name in the protocol and in the Triton repository
VERSION = "1"
HEADER_LENGTH = "Inference-Header-Content-Length"


def metadata(model: OnnxModel) -> dict[str, Any]:
    """The model's V2 metadata: its tensors as the ONNX file declares them."""
    return {
        "name": NAME,
        "versions": [VERSION],
        "platform": "onnxruntime_onnx",
        "inputs": [{"name": "images", "datatype": "FP32", "shape": [-1, *model.shape]}],
        "outputs": [
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, len(model.classes)]}
        ],
    }


def parse_request(body: bytes, header_length: str | None) -> tuple[dict[str, Any], bytes]:
    """The JSON part of an infer request and the binary part after it (may be empty)."""
    try:
        cut = int(header_length) if header_length is not None else len(body)
        if not 0 <= cut <= len(body):
            raise ValueError(f"{HEADER_LENGTH} {cut} is outside the body's {len(body)} bytes")
        request = json.loads(body[:cut])
        if not isinstance(request, dict):
            raise ValueError("the request is not a JSON object")
    except ValueError as exc:
        raise HTTPException(400, f"malformed inference request: {exc}") from None
    return request, body[cut:]


def input_tensor(request: dict[str, Any], binary: bytes, model: OnnxModel) -> np.ndarray:
    """The ``images`` input as float32 (N, 1, 28, 28), checked against the contract."""
    inputs = request.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise HTTPException(400, "send exactly one input, 'images'")
    tensor = inputs[0]
    if tensor.get("name") != "images" or tensor.get("datatype") != "FP32":
        raise HTTPException(
            400,
            f"unexpected input {tensor.get('name')!r} of {tensor.get('datatype')!r}; "
            "send 'images' as FP32",
        )
    shape = tensor.get("shape")
    want = list(model.shape)
    if (
        not isinstance(shape, list)
        or len(shape) != 4
        or shape[1:] != want
        or not 1 <= shape[0] <= 1024
    ):
        raise HTTPException(
            400, f"input shape {shape} is not [N, {', '.join(map(str, want))}] with N 1 to 1024"
        )
    count = int(np.prod(shape))
    size = (tensor.get("parameters") or {}).get("binary_data_size")
    try:
        if size is not None:
            if size != 4 * count or len(binary) < size:
                raise ValueError(f"binary_data_size {size} is not {4 * count} bytes of data")
            array = np.frombuffer(binary[:size], dtype="<f4")
        else:
            array = np.asarray(tensor.get("data"), dtype=np.float32).reshape(-1)
            if array.size != count:
                raise ValueError(f"{array.size} values for a shape of {count}")
    except (ValueError, TypeError) as exc:
        raise HTTPException(400, f"input 'images': {exc}") from None
    if not np.isfinite(array).all():
        raise HTTPException(400, "input 'images' holds NaN or infinity; send pixels in 0..1")
    return np.ascontiguousarray(array.reshape(shape), dtype=np.float32)


def wants_binary(request: dict[str, Any]) -> bool:
    """Whether the client asked for the output in the binary extension."""
    for output in request.get("outputs") or []:
        if isinstance(output, dict) and (output.get("parameters") or {}).get("binary_data"):
            return True
    return bool((request.get("parameters") or {}).get("binary_data_output"))


def response(request: dict[str, Any], probabilities: np.ndarray) -> Response:
    output: dict[str, Any] = {
        "name": "probabilities",
        "datatype": "FP32",
        "shape": list(probabilities.shape),
    }
    head: dict[str, Any] = {"model_name": NAME, "model_version": VERSION}
    if "id" in request:
        head["id"] = request["id"]
    if not wants_binary(request):
        output["data"] = probabilities.reshape(-1).tolist()
        return JSONResponse(head | {"outputs": [output]})
    raw = probabilities.astype("<f4").tobytes()
    output["parameters"] = {"binary_data_size": len(raw)}
    header = json.dumps(head | {"outputs": [output]}).encode()
    return Response(
        header + raw,
        media_type="application/octet-stream",
        headers={HEADER_LENGTH: str(len(header))},
    )


def router(model: OnnxModel) -> APIRouter:
    """The V2 routes for ``model``."""
    routes = APIRouter(prefix="/v2")

    def check_name(name: str) -> None:
        if name != NAME:
            raise HTTPException(404, f"no model {name!r}; this server has {NAME!r}")

    @routes.get("")
    def server_metadata() -> dict[str, Any]:
        return {"name": "fmnist", "version": VERSION, "extensions": ["binary_tensor_data"]}

    @routes.get("/health/live")
    def live() -> dict[str, Any]:
        return {"live": True}

    @routes.get("/health/ready")
    def ready() -> dict[str, Any]:
        return {"ready": True}  # the app exists only once the model has loaded

    @routes.get("/models/{name}")
    @routes.get("/models/{name}/versions/{version}")
    def model_metadata(name: str, version: str = VERSION) -> dict[str, Any]:
        check_name(name)
        return metadata(model)

    @routes.get("/models/{name}/ready")
    def model_ready(name: str) -> dict[str, Any]:
        check_name(name)
        return {"name": NAME, "ready": True}

    @routes.post("/models/{name}/infer")
    @routes.post("/models/{name}/versions/{version}/infer")
    async def infer(name: str, request: Request, version: str = VERSION) -> Response:
        check_name(name)
        body = await request.body()
        parsed, binary = parse_request(body, request.headers.get(HEADER_LENGTH))
        images = input_tensor(parsed, binary, model)
        return response(parsed, await run_in_threadpool(model.run, images))

    return routes
