"""Load on the model server: goodput (answered requests/s), refusals and latency with
1 to 200 concurrent clients, for 1 and 2 worker processes, and images/s when requests
carry batches; localhost only, bounded in count and time.

    python -m bench serve [--models models] [--workers 1 2] [--clients 1 8 64 200]
                          [--requests 400] [--out results/serve_load]

Starts ``python -m fmnist.serve.server`` on a free loopback port, sends real test images
as PNG (each client thread keeps one connection), and counts every request that failed:
a run with failures is reported as such. Clients and server share this machine's cores,
as they would on a laptop.
"""

from __future__ import annotations

import argparse
import io
import socket
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests
from PIL import Image

from bench.common import real_data, write_results
from fmnist.core.errors import PipelineError

COLUMNS = [
    ("workers", "workers"),
    ("clients", "clients"),
    ("images_per_request", "images / request"),
    ("requests", "requests"),
    ("failed", "refused or failed"),
    ("requests_per_second", "goodput, requests/s", "{:.0f}"),
    ("images_per_second", "images/s", "{:.0f}"),
    ("p50_ms", "p50 ms", "{:.1f}"),
    ("p99_ms", "p99 ms", "{:.1f}"),
]


def start_server(models: Path, *options: str) -> tuple[subprocess.Popen, str]:
    """The real server (with extra command-line ``options``) on a free loopback port,
    once /health answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "fmnist.serve.server", "--models", str(models)]
    proc = subprocess.Popen([*command, "--port", str(port), *options], stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/health", timeout=1).ok:
                return proc, url
        except requests.ConnectionError:
            time.sleep(0.2)
    proc.kill()
    raise PipelineError(f"the server in {models} did not start; run it alone to see why")


def png_bytes(count: int) -> list[bytes]:
    """``count`` real test images, encoded as PNG."""
    images = real_data(count, "test").images
    out = []
    for image in images:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG")
        out.append(buffer.getvalue())
    return out


def load_level(
    url: str, pngs: list[bytes], clients: int, per_request: int, total: int, seconds: float
) -> dict[str, Any]:
    """``total`` requests of ``per_request`` images from ``clients`` threads (stopping at
    ``seconds``): throughput, latency percentiles, failures."""
    deadline = time.monotonic() + seconds
    sessions: dict[int, requests.Session] = {}

    def one(i: int) -> float | None:
        if time.monotonic() > deadline:
            return None
        session = sessions.setdefault(threading.get_ident(), requests.Session())
        files = [("files", (f"{i}-{j}.png", pngs[(i + j) % len(pngs)])) for j in range(per_request)]
        start = time.perf_counter()
        try:
            ok = session.post(f"{url}/predict", files=files, timeout=30).status_code == 200
        except requests.RequestException:
            ok = False
        return time.perf_counter() - start if ok else float("nan")

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = [r for r in pool.map(one, range(total)) if r is not None]
    wall = time.perf_counter() - start
    latencies = sorted(r for r in results if r == r)  # NaN: failed
    done = len(latencies)
    return {
        "clients": clients,
        "images_per_request": per_request,
        "requests": len(results),
        "failed": len(results) - done,
        "requests_per_second": round(done / wall, 1),
        "images_per_second": round(done * per_request / wall, 1),
        "p50_ms": round(1000 * statistics.median(latencies), 2) if latencies else None,
        "p99_ms": round(1000 * latencies[min(done - 1, int(0.99 * done))], 2) if done else None,
    }


def measure(args: argparse.Namespace, workers: int, pngs: list[bytes]) -> list[dict[str, Any]]:
    """Every load level against a server of ``workers`` processes."""
    proc, url = start_server(args.models, "--workers", str(workers))
    try:
        load_level(url, pngs, 1, 1, 20, 10)  # warm-up, not reported
        rows = [load_level(url, pngs, c, 1, args.requests, args.seconds) for c in args.clients]
        rows.append(
            load_level(url, pngs, 1, args.batch, max(10, args.requests // 20), args.seconds)
        )
        if not requests.get(f"{url}/health", timeout=5).ok:
            raise PipelineError(f"the server with {workers} worker(s) was down after the load")
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    return [{"workers": workers, **row} for row in rows]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench serve", description=__doc__)
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--requests", type=int, default=400, help="per level")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 64, 200])
    parser.add_argument("--batch", type=int, default=32, help="images per batched request")
    parser.add_argument("--seconds", type=float, default=60, help="at most, per level")
    parser.add_argument("--out", type=Path, help="write <out>.md and <out>.json")
    args = parser.parse_args(argv)
    pngs = png_bytes(64)
    rows = [row for workers in args.workers for row in measure(args, workers, pngs)]
    for row in rows:
        print(row, flush=True)
    about = (
        "The model server (`python -m fmnist.serve.server --workers N`, ONNX Runtime, one "
        "thread a request) under load from client threads on the same machine, over "
        f"loopback: single-image requests with {', '.join(map(str, args.clients))} "
        f"concurrent clients, then batches of {args.batch} images from one client. Goodput "
        "counts answered requests only; past 64 requests in flight per worker the server "
        "answers 503 at once, counted as refused. /health answered after every run."
    )
    write_results(
        args.out,
        {"rows": rows, "failed": sum(r["failed"] for r in rows)},
        title="The model server under load",
        about=about,
        columns=COLUMNS,
    )
