"""uvicorn's HTTP/1.1 protocol with a deadline on each request, against slow and idle
clients.

uvicorn closes a kept-alive connection only after a first response, and it counts open
connections against ``limit_concurrency``: 70 clients that connect and send nothing (or
one byte a second) held every connection slot, and everyone else got 503. Here a
connection whose request has not arrived whole ``request_timeout`` seconds after it
connected, or after its previous response, is closed; and the server limits requests in
flight (:mod:`fmnist.serve.server`), not connections, so an idle socket costs nobody a
slot. Chosen over a reverse proxy in front (nginx would do the same, one more program to
install and run) and over another ASGI server (granian, tried: it leaves a connection
that never sends a byte open for good).
"""

from __future__ import annotations

import asyncio
import os

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

TIMEOUT_ENV = "FMNIST_REQUEST_TIMEOUT"  # the workers' setting, read in each process


class DeadlineH11Protocol(H11Protocol):
    """:class:`H11Protocol` that closes a connection whose request is late."""

    request_timeout = float(os.environ.get(TIMEOUT_ENV, "5"))

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._deadline = self.loop.call_later(self.request_timeout, self._late)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._deadline.cancel()
        self._deadline = self.loop.call_later(self.request_timeout, self._late)

    def connection_lost(self, exc: Exception | None) -> None:
        self._deadline.cancel()
        super().connection_lost(exc)

    def _late(self) -> None:
        """Close the connection unless its request arrived whole (the app is answering)."""
        if self.transport.is_closing() or self.conn.their_state not in (h11.IDLE, h11.SEND_BODY):
            return
        self.transport.close()
