"""The server against hostile clients, for real and bounded, on localhost: idle and slow
connections, small files that declare huge images, chunked uploads with no end, bad
start-up options. Every refusal is one line of JSON and the server keeps serving."""

from __future__ import annotations

import io
import re
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import requests
from conftest import ROOT, png_with_rows, synthetic_split
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from bench.serve_load import start_server

pytestmark = pytest.mark.e2e
MEMORY_BUDGET_MB = 1024  # docs/serving.md: the server's peak at full concurrency, default settings


@pytest.fixture(scope="module")
def served(exported: Path):
    """The real server with its default limits, and a 2 s request deadline."""
    proc, url = start_server(exported / "models", "--request-timeout", "2")
    try:
        yield proc, url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def peak_mb(proc: subprocess.Popen) -> int:
    """The server process's peak resident memory (VmHWM)."""
    status = Path(f"/proc/{proc.pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) // 1024


def good_png() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(synthetic_split(10, 1)[0][0]).save(buffer, "PNG")
    return buffer.getvalue()


def metric(url: str, name: str, **labels: str) -> float:
    """A counter's value from /metrics, read with Prometheus's own text parser."""
    text = requests.get(f"{url}/metrics", timeout=5).text
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def test_idle_and_slow_connections_neither_lock_out_others_nor_stay(served) -> None:
    _, url = served
    port = int(url.rsplit(":", 1)[1])
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(70)]
    slow = [socket.create_connection(("127.0.0.1", port)) for _ in range(35)]
    for s in slow:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # and never the end of the headers
    started = time.perf_counter()
    answer = requests.get(f"{url}/health", timeout=5)
    took = time.perf_counter() - started
    print(f"/health beside 105 idle or slow connections: {1000 * took:.0f} ms")
    assert answer.status_code == 200 and took < 1.0
    time.sleep(3)  # past the 2 s request deadline
    closed = 0
    for s in idle + slow:
        s.settimeout(1)
        try:
            closed += s.recv(1) == b""
        except OSError:
            closed += 1
        s.close()
    assert closed == 105


def test_small_files_declaring_huge_images_stay_within_the_memory_budget(served) -> None:
    proc, url = served
    image = Image.new("RGBA", (7000, 7000), (255, 255, 255, 0))
    image.paste((90, 40, 30, 255), (2500, 1500, 4500, 5500))
    buffer = io.BytesIO()
    image.save(buffer, "PNG", compress_level=9)
    data = buffer.getvalue()
    assert len(data) < 300_000  # a ~200 KB upload

    def post(i: int) -> int:
        files = {"files": (f"huge{i}.png", data)}
        return requests.post(f"{url}/predict", files=files, timeout=120).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(post, range(8)))
    peak = peak_mb(proc)
    print(f"8 clients x 7000x7000 RGBA PNG ({len(data) // 1000} KB): peak {peak} MB")
    assert codes == [200] * 8
    assert peak < MEMORY_BUDGET_MB


def test_a_strip_image_is_refused_alone_and_the_good_one_answered(served) -> None:
    _, url = served
    files = [
        ("files", ("strip.png", png_with_rows(1, 49_000_000, 2))),
        ("files", ("good.png", good_png())),
    ]
    answer = requests.post(f"{url}/predict", files=files, timeout=30)
    assert answer.status_code == 200
    strip, good = answer.json()["predictions"]
    assert "1x49000000 is not a picture of a garment" in strip["error"]
    assert len(good["top"]) == 3


def test_a_chunked_upload_is_stopped_at_the_limit(served) -> None:
    _, url = served
    before = metric(url, "fmnist_received_bytes_total", endpoint="/predict")
    offered = 0

    def body():
        nonlocal offered
        head = b'--x\r\nContent-Disposition: form-data; name="files"; filename="big.png"\r\n\r\n'
        yield head  # a well-formed file part, whose data goes on and on
        chunk = b"\0" * (1 << 20)
        for _ in range(50):  # 50 MB, with no Content-Length
            offered += len(chunk)
            yield chunk

    try:
        answer = requests.post(
            f"{url}/predict",
            data=body(),
            headers={"Content-Type": "multipart/form-data; boundary=x"},
            timeout=30,
        )
        assert answer.status_code == 413 and "upload over 10 MB" in answer.json()["error"]
    except requests.ConnectionError:
        pass  # the server closed the connection while the client was still sending
    read = metric(url, "fmnist_received_bytes_total", endpoint="/predict") - before
    print(f"chunked upload: {offered >> 20} MB offered, {read / 2**20:.1f} MB read")
    assert read < 11 * 2**20
    assert requests.get(f"{url}/health", timeout=5).ok


def test_every_refusal_is_one_line_of_json_and_head_works(served) -> None:
    _, url = served
    cases = [
        ("GET", "/nowhere", 404),
        ("GET", "/predict", 405),
        ("POST", "/v2/models/other/infer", 404),
        ("POST", "/v2/models/fmnist/infer", 400),
    ]
    for method, path, status in cases:
        answer = requests.request(method, url + path, data=b"{", timeout=5)
        assert answer.status_code == status, (path, answer.text)
        assert list(answer.json()) == ["error"] and "\n" not in answer.json()["error"]
    for path in ("/", "/health"):
        head = requests.head(url + path, timeout=5)
        assert head.status_code == 200 and head.content == b""


def serve(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "fmnist.serve.server", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_bad_start_up_options_and_models_are_refused_in_one_line(
    exported: Path, tmp_path: Path, served
) -> None:
    models = str(exported / "models")
    port = served[1].rsplit(":", 1)[1]
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "model.onnx").write_bytes(b"not onnx at all")
    (bad / "contract.json").write_text((exported / "models/contract.json").read_text())
    cases = [
        (["--models", models, "--max-upload-mb", "-1"], "--max-upload-mb is -1; use 1 or more"),
        (["--models", models, "--max-files", "0"], "--max-files is 0; use 1 or more"),
        (["--models", str(bad)], "is not a model ONNX Runtime can load"),
        (["--models", models, "--port", port], f"port {port} on 127.0.0.1 is in use"),
    ]
    for args, said in cases:
        done = serve(*args)
        assert done.returncode == 2, done.stderr
        assert done.stdout == "" and said in done.stderr  # no "serving ..." first
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_metrics_count_requests_and_refusals_with_two_workers(exported: Path) -> None:
    proc, url = start_server(exported / "models", "--workers", "2")
    try:
        workers = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        assert len(workers) >= 2  # uvicorn's supervisor starts one process per worker
        png = good_png()
        with ThreadPoolExecutor(8) as pool:
            list(
                pool.map(lambda i: requests.post(f"{url}/predict", files={"files": png}), range(40))
            )
        for _ in range(3):
            requests.get(f"{url}/nowhere", timeout=5)
        ok = metric(url, "fmnist_requests_total", endpoint="/predict", status="200")
        refused = metric(url, "fmnist_refusals_total", reason="not_found")
        images = metric(url, "fmnist_images_per_request_count")
        latency = metric(url, "fmnist_request_seconds_count", endpoint="/predict")
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert (ok, refused, images, latency) == (40, 3, 40, 40)
    assert np.isfinite(ok)
