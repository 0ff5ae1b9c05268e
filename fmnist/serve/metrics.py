"""Prometheus metrics of the server, from the standard client library, correct with
several worker processes (its multiprocess mode: each process writes its own files in
``PROMETHEUS_MULTIPROC_DIR``, and ``/metrics`` adds them up).

prometheus_client decides between one process and several when it is first imported,
so this module imports it only inside functions, after :func:`use_folder` ran.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from typing import Any

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
REASONS = {  # status -> why a request was refused, as the refusals counter names it
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    408: "timeout",
    413: "too_large",
    422: "malformed",
    500: "server_error",
    503: "busy",
}


def use_folder() -> str:
    """Set (or keep) the folder every worker process writes its metrics to: call before
    anything imports prometheus_client and before the workers start."""
    if not os.environ.get(MULTIPROC_ENV):
        os.environ[MULTIPROC_ENV] = tempfile.mkdtemp(prefix="fmnist-metrics-")
    return os.environ[MULTIPROC_ENV]


@dataclass
class Metrics:
    """The server's metrics: requests and refusals by endpoint, latency, images/request."""

    requests: Any
    refusals: Any
    latency: Any
    images: Any
    received: Any

    @classmethod
    def create(cls) -> Metrics:
        from prometheus_client import Counter, Histogram

        return cls(
            requests=Counter(
                "fmnist_requests", "Requests answered", ["endpoint", "method", "status"]
            ),
            refusals=Counter("fmnist_refusals", "Requests refused", ["endpoint", "reason"]),
            latency=Histogram(
                "fmnist_request_seconds",
                "Time to answer a request",
                ["endpoint"],
                buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            ),
            images=Histogram(
                "fmnist_images_per_request",
                "Images in a prediction request",
                buckets=(1, 2, 4, 8, 16, 32, 64, 128),
            ),
            received=Counter("fmnist_received_bytes", "Request body bytes read", ["endpoint"]),
        )

    def record(self, endpoint: str, method: str, status: int, started: float, read: int) -> None:
        self.requests.labels(endpoint, method, str(status)).inc()
        self.received.labels(endpoint).inc(read)
        self.latency.labels(endpoint).observe(time.perf_counter() - started)
        if status >= 400:
            self.refusals.labels(endpoint, REASONS.get(status, str(status))).inc()


def exposition() -> tuple[bytes, str]:
    """The text format of every process's metrics, and its content type."""
    from prometheus_client import (
        CONTENT_TYPE_LATEST,
        CollectorRegistry,
        generate_latest,
        multiprocess,
    )

    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
