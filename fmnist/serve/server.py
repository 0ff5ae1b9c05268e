"""Serve the exported model over HTTP, with a page to try it in a browser.

    python -m fmnist.serve.server [--models models] [--host 127.0.0.1] [--port 8000]

``POST /predict`` takes one image or several (multipart field ``files``; any format
Pillow reads, converted as ``fmnist-predict`` converts it) and returns the top classes
with their probabilities as JSON; ``GET /health`` says it is up; ``GET /`` is a page, with
no CDN and no framework, to drop or pick an image and see its classes as bars.

FastAPI on uvicorn: the standard, well-kept pair for a small Python JSON service (typed
requests, multipart uploads, a threadpool for the blocking inference). Inference runs
in ONNX Runtime: on the default model it measured 0.17 ms per image against 0.59 ms for
the TorchScript file, 4.0 against 20.8 ms for 32 (one thread each). Limits: an upload
over ``--max-upload-mb`` is refused with 413 before it is read whole, an image over
:data:`~fmnist.serve.images.MAX_PIXELS` from its header (400), at most
``--max-files`` images a request, and uvicorn answers 503 past ``--max-connections``
open at once. A bad upload gets a 4xx with a one-line reason; the server keeps serving.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from fastapi import FastAPI, File, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse

from fmnist.core.errors import PipelineError, run_stage
from fmnist.serve.images import ImageError, upload_to_model_input

PAGE = Path(__file__).with_name("page.html")


@dataclass(frozen=True)
class Limits:
    max_upload_bytes: int = 10 << 20
    max_files: int = 64
    top_k: int = 3


class OnnxModel:
    """The exported model and its contract: uint8 images in, probabilities out."""

    def __init__(self, folder: Path) -> None:
        import onnxruntime as ort

        onnx, contract = folder / "model.onnx", folder / "contract.json"
        for path in (onnx, contract):
            if not path.is_file():
                raise PipelineError(f"{path} is missing; run `dvc repro export` first")
        self.contract = json.loads(contract.read_text())
        self.classes: list[str] = self.contract["classes"]
        self.shape = tuple(self.contract["input"]["shape"][1:])
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # requests run in parallel threads instead
        self.session = ort.InferenceSession(str(onnx), options, providers=["CPUExecutionProvider"])

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """(N, H, W) or (N, H, W, C) uint8 -> (N, classes) float probabilities."""
        x = images.astype(np.float32) / 255.0
        x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)
        return self.session.run(None, {"images": np.ascontiguousarray(x)})[0]


def top_classes(probabilities: np.ndarray, classes: list[str], k: int) -> list[dict[str, Any]]:
    """The ``k`` likeliest classes of one image, likeliest first."""
    order = np.argsort(-probabilities)[:k]
    return [{"class": classes[i], "probability": round(float(probabilities[i]), 6)} for i in order]


def create_app(folder: Path, limits: Limits = Limits()) -> FastAPI:
    """The FastAPI application serving the model exported in ``folder``."""
    model = OnnxModel(folder)
    app = FastAPI(title="fmnist", docs_url=None, redoc_url=None)
    page = PAGE.read_text()

    @app.exception_handler(HTTPException)
    def one_line(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    def malformed(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()))
        message = f"{where}: {first.get('msg', 'malformed request')}; send images as 'files'"
        return JSONResponse({"error": message}, status_code=422)

    @app.middleware("http")
    async def refuse_large(request: Request, call_next: Any) -> Any:
        size = request.headers.get("content-length")
        if size is not None and (not size.isdigit() or int(size) > limits.max_upload_bytes):
            mb = limits.max_upload_bytes >> 20
            return JSONResponse({"error": f"upload over {mb} MB; send smaller images"}, 413)
        return await call_next(request)

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "model": model.contract["model"], "classes": model.classes}

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return page

    @app.post("/predict")
    def predict(
        files: Annotated[list[UploadFile], File()], top_k: int = limits.top_k
    ) -> dict[str, Any]:
        if not 1 <= len(files) <= limits.max_files:
            raise HTTPException(400, f"send 1 to {limits.max_files} images, not {len(files)}")
        if not 1 <= top_k <= len(model.classes):
            raise HTTPException(400, f"top_k must be 1 to {len(model.classes)}")
        images = []
        for upload in files:
            data = upload.file.read(limits.max_upload_bytes + 1)
            name = upload.filename or "upload"
            if len(data) > limits.max_upload_bytes:
                raise HTTPException(413, f"{name}: over {limits.max_upload_bytes >> 20} MB")
            try:
                images.append(upload_to_model_input(data, name, model.shape))
            except ImageError as exc:
                raise HTTPException(400, str(exc)) from None
        probabilities = model.probabilities(np.stack(images))
        return {
            "predictions": [
                {"file": f.filename, "top": top_classes(p, model.classes, top_k)}
                for f, p in zip(files, probabilities, strict=True)
            ]
        }

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=Path("models"), help="model.onnx's folder")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--max-upload-mb", type=int, default=10)
    parser.add_argument("--max-files", type=int, default=64)
    parser.add_argument("--max-connections", type=int, default=64)
    parser.add_argument("--keep-alive", type=int, default=5, help="keep-alive seconds")
    args = parser.parse_args()
    import uvicorn

    limits = Limits(max_upload_bytes=args.max_upload_mb << 20, max_files=args.max_files)
    app = create_app(args.models, limits)
    print(f"serving {args.models}/model.onnx on http://{args.host}:{args.port}/", flush=True)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        limit_concurrency=args.max_connections,
        timeout_keep_alive=args.keep_alive,
        log_level="warning",
    )


def cli() -> None:
    """The ``fmnist-serve`` console script."""
    run_stage(main)


if __name__ == "__main__":
    cli()
