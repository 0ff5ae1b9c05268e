"""Serve the exported model over HTTP, with a page to try it in a browser.

    python -m fmnist.serve.server [--models models] [--host 127.0.0.1] [--port 8000]
                                  [--workers N]

``POST /predict`` takes one image or several (multipart field ``files``; any format
Pillow reads, converted as ``fmnist-predict`` converts it) and returns the top classes
with their probabilities as JSON, ``unsure`` with its reason where the answer is
(:mod:`fmnist.serve.answer`) and the 28x28 input the model saw; an image that cannot be
used gets its one-line ``error`` in its place, and the others are answered.
``GET /health`` says it is up; ``GET /`` is a page, with no CDN and no framework, to drop
or pick an image and see its classes as bars. The Open Inference Protocol (KServe V2, as
Triton speaks it) is under ``/v2`` (:mod:`fmnist.serve.v2`), Prometheus metrics at
``/metrics``.

FastAPI on uvicorn, with a deadline on each request (:mod:`fmnist.serve.protocol`).
Inference runs in ONNX Runtime: on the default model it measured 0.17 ms per image
against 0.59 ms for the TorchScript file. Every refusal is one line of JSON,
``{"error": ...}``, 404, 405, 500 and 503 included. Limits: a request body over
``--max-upload-mb`` is refused with 413 as soon as that much has arrived (chunked or
not); an image over :data:`~fmnist.serve.images.MAX_PIXELS` or 50:1 from its header;
at most ``--max-files`` images a request; ``--max-in-flight`` requests at once (503
past it), ``--max-decodes`` images decoding at once (the memory budget).
"""

from __future__ import annotations

import argparse
import base64
import errno
import io
import json
import os
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from fastapi import FastAPI, File, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fmnist.core.errors import PipelineError, run_stage
from fmnist.serve.answer import unsure_reason
from fmnist.serve.images import Converted, ImageError, upload_to_model_input

PAGE = Path(__file__).with_name("page.html")
OPTIONS_ENV = "FMNIST_SERVE"  # the options, as JSON, for each worker process


@dataclass(frozen=True)
class Limits:
    max_upload_bytes: int = 10 << 20
    max_files: int = 64
    top_k: int = 3
    max_in_flight: int = 64  # requests being answered at once; 503 past it
    max_decodes: int = 2  # images decoding at once: at most ~250 MB each (a 50 MP RGBA)


class OnnxModel:
    """The exported model and its contract: uint8 images in, probabilities out."""

    def __init__(self, folder: Path) -> None:
        import onnxruntime as ort

        onnx, contract = folder / "model.onnx", folder / "contract.json"
        for path in (onnx, contract):
            if not path.is_file():
                raise PipelineError(f"{path} is missing; run `dvc repro export` first")
        try:
            self.contract = json.loads(contract.read_text())
            self.classes: list[str] = self.contract["classes"]
            self.shape = tuple(self.contract["input"]["shape"][1:])
        except (ValueError, KeyError, TypeError) as exc:
            raise PipelineError(
                f"{contract} is not the export's contract ({exc}); run `dvc repro export`"
            ) from None
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # requests run in parallel threads instead
        try:
            self.session = ort.InferenceSession(
                str(onnx), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own types for every bad file
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise PipelineError(
                f"{onnx} is not a model ONNX Runtime can load ({first}); run `dvc repro export`"
            ) from None

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """(N, H, W) or (N, H, W, C) uint8 -> (N, classes) float probabilities."""
        x = images.astype(np.float32) / 255.0
        x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)
        return self.run(np.ascontiguousarray(x))

    def run(self, x: np.ndarray) -> np.ndarray:
        """The ONNX model on its own input: (N, C, H, W) float32 in 0..1."""
        return self.session.run(None, {"images": x})[0]


def top_classes(probabilities: np.ndarray, classes: list[str], k: int) -> list[dict[str, Any]]:
    """The ``k`` likeliest classes of one image, likeliest first."""
    order = np.argsort(-probabilities)[:k]
    return [{"class": classes[i], "probability": round(float(probabilities[i]), 6)} for i in order]


def png_data_url(pixels: np.ndarray) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


class BodyTooLargeError(Exception):
    """A request body went past the limit while it was being read."""


def too_large(limits: Limits) -> str:
    return f"upload over {limits.max_upload_bytes >> 20} MB; send smaller images"


class Guard:
    """The outermost layer: every request counted in the metrics; past
    ``max_in_flight`` at once, 503; a body (chunked or not) stopped at the limit, 413;
    and any failure answered as one line of JSON."""

    def __init__(self, app: ASGIApp, limits: Limits, metrics: Any) -> None:
        self.app, self.limits, self.metrics = app, limits, metrics
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), 500
        sent, read = False, [0]  # read: the body's bytes so far

        async def send_status(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status, sent = message["status"], True
            await send(message)

        async def refuse(code: int, error: str) -> None:
            await JSONResponse({"error": error}, code)(scope, receive, send_status)

        size = dict(scope["headers"]).get(b"content-length")
        self.in_flight += 1
        try:
            if self.in_flight > self.limits.max_in_flight:
                await refuse(
                    503, f"busy: {self.limits.max_in_flight} requests in flight; retry shortly"
                )
            elif size is not None and (
                not size.isdigit() or int(size) > self.limits.max_upload_bytes
            ):
                await refuse(413, too_large(self.limits))
            else:
                await self.app(scope, self._bounded(receive, read), send_status)
        except BodyTooLargeError:
            if not sent:
                await refuse(413, too_large(self.limits))
        except Exception as exc:  # a bug: still one line of JSON, and the server goes on
            if not sent:
                await refuse(500, f"internal error ({type(exc).__name__}); the server logged it")
            raise
        finally:
            self.in_flight -= 1
            endpoint = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.record(endpoint, scope["method"], status, started, read[0])

    def _bounded(self, receive: Receive, read: list[int]) -> Receive:
        """``receive`` that stops a body, chunked or not, at the limit; ``read[0]``
        counts its bytes."""

        async def bounded() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                read[0] += len(message.get("body", b""))
                if read[0] > self.limits.max_upload_bytes:
                    raise BodyTooLargeError
            return message

        return bounded


def create_app(folder: Path, limits: Limits = Limits()) -> ASGIApp:
    """The application serving the model exported in ``folder``, inside its :class:`Guard`."""
    from fmnist.serve import metrics, v2

    model = OnnxModel(folder)
    app = FastAPI(title="fmnist", docs_url=None, redoc_url=None, openapi_url=None)
    page = PAGE.read_text()
    # decodes run on a few threads of their own: the memory budget is their count times
    # one decode, and the memory a decode freed is reused by the next on that thread
    # (on every request thread, glibc's per-thread arenas would each keep a decode's worth)
    decoder = ThreadPoolExecutor(limits.max_decodes, thread_name_prefix="decode")
    counters = metrics.Metrics.create()

    @app.exception_handler(StarletteHTTPException)  # 404, 405, multipart errors, ours
    def one_line(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc.__cause__, BodyTooLargeError):  # FastAPI's form parsing wraps it
            return JSONResponse({"error": too_large(limits)}, status_code=413)
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    def malformed(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()))
        message = f"{where}: {first.get('msg', 'malformed request')}; send images as 'files'"
        return JSONResponse({"error": message}, status_code=422)

    @app.exception_handler(Exception)  # a bug: logged, and answered as one line of JSON
    def server_error(request: Request, exc: Exception) -> JSONResponse:
        error = f"internal error ({type(exc).__name__}); the server logged it"
        return JSONResponse({"error": error}, status_code=500)

    @app.api_route("/health", methods=["GET", "HEAD"])
    def health() -> dict[str, Any]:
        return {"status": "ok", "model": model.contract["model"], "classes": model.classes}

    @app.api_route("/", methods=["GET", "HEAD"], response_class=HTMLResponse)
    def index() -> str:
        return page

    @app.get("/metrics")
    def prometheus() -> Response:
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    def convert(upload: UploadFile) -> Converted | str:
        """The model's input for one upload, or its one-line error."""
        name = upload.filename or "upload"
        data = upload.file.read(limits.max_upload_bytes + 1)
        try:
            return decoder.submit(upload_to_model_input, data, name, model.shape).result()
        except ImageError as exc:
            return str(exc)

    @app.post("/predict")
    def predict(
        files: Annotated[list[UploadFile], File()], top_k: int = limits.top_k
    ) -> dict[str, Any]:
        if not 1 <= len(files) <= limits.max_files:
            raise HTTPException(400, f"send 1 to {limits.max_files} images, not {len(files)}")
        if not 1 <= top_k <= len(model.classes):
            raise HTTPException(400, f"top_k must be 1 to {len(model.classes)}")
        counters.images.observe(len(files))
        converted = [convert(upload) for upload in files]
        good = [x for x in converted if isinstance(x, Converted)]
        if not good:
            raise HTTPException(400, converted[0])
        probabilities = iter(model.probabilities(np.stack([x.pixels for x in good])))
        return {
            "predictions": [
                answer(f.filename, x, next(probabilities), top_k)
                if isinstance(x, Converted)
                else {"file": f.filename, "error": x}
                for f, x in zip(files, converted, strict=True)
            ]
        }

    def answer(name: str | None, x: Converted, p: np.ndarray, top_k: int) -> dict[str, Any]:
        """One picture's answer: its top classes, "unsure" and why (or null), and the
        28x28 input the model saw, as a PNG data URL (the page shows it)."""
        return {
            "file": name,
            "top": top_classes(p, model.classes, top_k),
            "unsure": unsure_reason(p, model.classes, x.problem) or None,
            "input": png_data_url(x.pixels),
        }

    app.include_router(v2.router(model))
    return Guard(app, limits, counters)


def app_from_environment() -> ASGIApp:
    """The application of each worker process, from the options :func:`main` set."""
    options = json.loads(os.environ[OPTIONS_ENV])
    return create_app(Path(options.pop("models")), Limits(**options))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options, each refused in one line when it cannot work."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=Path("models"), help="model.onnx's folder")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1, help="worker processes on the port")
    parser.add_argument("--max-upload-mb", type=int, default=10)
    parser.add_argument("--max-files", type=int, default=64)
    parser.add_argument("--max-in-flight", type=int, default=64, help="per worker; 503 past it")
    parser.add_argument("--max-decodes", type=int, default=2, help="per worker: the memory budget")
    parser.add_argument(
        "--request-timeout", type=float, default=5.0, help="seconds to send a request"
    )
    parser.add_argument("--keep-alive", type=int, default=5, help="keep-alive seconds")
    args = parser.parse_args(argv)
    for name in ("workers", "max_upload_mb", "max_files", "max_in_flight", "max_decodes"):
        if getattr(args, name) < 1:
            flag = "--" + name.replace("_", "-")
            raise PipelineError(f"{flag} is {getattr(args, name)}; use 1 or more")
    if not 0 < args.request_timeout <= 600:
        raise PipelineError(f"--request-timeout is {args.request_timeout}; use 0.1 to 600 seconds")
    if not 0 <= args.port <= 65535:
        raise PipelineError(f"--port is {args.port}; use 1 to 65535 (0: any free port)")
    return args


def check_port(host: str, port: int) -> None:
    """Refuse in one line a port another program holds, before saying "serving"."""
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise PipelineError(
                f"port {port} on {host} is in use; stop that program or pick another with --port"
            ) from None
        raise PipelineError(
            f"cannot listen on {host}:{port} ({exc.strerror}); check --host"
        ) from None


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from fmnist.serve import metrics
    from fmnist.serve.protocol import TIMEOUT_ENV

    metrics.use_folder()  # before any worker imports prometheus_client
    limits = Limits(
        max_upload_bytes=args.max_upload_mb << 20,
        max_files=args.max_files,
        max_in_flight=args.max_in_flight,
        max_decodes=args.max_decodes,
    )
    os.environ[OPTIONS_ENV] = json.dumps({"models": str(args.models), **asdict(limits)})
    os.environ[TIMEOUT_ENV] = str(args.request_timeout)
    OnnxModel(args.models)  # a bad model is refused here, in one line, not in each worker
    check_port(args.host, args.port)
    import uvicorn

    workers = f", {args.workers} workers" if args.workers > 1 else ""
    print(
        f"serving {args.models}/model.onnx on http://{args.host}:{args.port}/{workers}", flush=True
    )
    uvicorn.run(
        "fmnist.serve.server:app_from_environment",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        http="fmnist.serve.protocol:DeadlineH11Protocol",
        timeout_keep_alive=args.keep_alive,
        log_level="warning",
    )


def cli() -> None:
    """The ``fmnist-serve`` console script."""
    run_stage(main)


if __name__ == "__main__":
    cli()
