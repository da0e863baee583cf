"""The uvicorn server of the service, configured in one place from ``serving.*``, with its client timeouts.

uvicorn times out only an idle keep-alive connection (``timeout_keep_alive``); a client that opens a
connection and sends nothing, or its headers one byte at a time, holds it for ever, and ``limit_concurrency``
counts those idle connections against everyone (``/healthz`` then answers 503). :func:`uvicorn_config`
therefore serves with uvicorn's own protocol extended by :class:`ClientGuard`:

- **headers**: a request's line and headers must arrive within ``serving.header_timeout_s`` of the
  connection opening (or of the request's first byte on a kept-alive connection), else a 408 and close;
  more than ``serving.max_header_kb`` of them is a 431 and close;
- **connections**: at ``serving.max_connections`` open connections the oldest ones waiting for a request
  are closed to make room, so idle clients cannot lock the others out; only when every connection is busy
  does uvicorn's ``limit_concurrency`` (the same number) answer 503.

The body has its own deadline (``serving.body_timeout_s``, :mod:`vibrasense.serving.body_limit`); idle
keep-alive (``serving.keep_alive_s``) and the graceful shutdown (``serving.graceful_shutdown_s``) are
uvicorn's options.

:func:`serve_in_thread` runs the same server in a thread of the calling process, on a free loopback port,
for as long as a ``with`` block lasts: a notebook, a test or a benchmark that talks to the real service.
"""

from __future__ import annotations

import asyncio
import heapq
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from vibrasense.config import ServingSettings, Settings

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as UvicornProtocol
except ImportError:  # httptools is optional in uvicorn; h11 always comes with it
    from uvicorn.protocols.http.h11_impl import H11Protocol as UvicornProtocol  # type: ignore[assignment]

_TIMED_OUT = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
_HEADERS_TOO_LARGE = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


class ClientGuard(UvicornProtocol):  # type: ignore[misc, valid-type]
    """uvicorn's HTTP protocol with a header deadline, a header size limit and room kept for new clients.

    The limits are class attributes: :func:`guarded_protocol` makes the subclass for one configuration.
    """

    header_timeout_s: float = 10.0
    max_header_bytes: int = 16 * 1024
    max_connections: int = 1000

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.opened_at = 0.0
        self.header_bytes = 0
        self.header_timer: asyncio.TimerHandle | None = None
        self.reading_body = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.opened_at = self.loop.time()
        self._arm_header_timer()
        if len(self.connections) >= self.max_connections:
            self._make_room()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.header_timer is not None:
            self.header_timer.cancel()
            self.header_timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        body_before = self.reading_body
        super().data_received(data)
        if not self.waiting_for_request():
            self.header_bytes = 0  # the request's headers are in: the rest is its body, timed by the app
            return
        # a read that ended a body holds its tail: only what the next reads bring is counted as headers
        self.header_bytes = 0 if body_before else self.header_bytes + len(data)
        if self.header_bytes > self.max_header_bytes:
            self._refuse(_HEADERS_TOO_LARGE)
            return
        self._arm_header_timer()

    def on_headers_complete(self) -> None:
        # Until the message ends what arrives is body, even once the app has answered early (a 413 from the
        # declared length while the client still uploads): it is not the next request's headers.
        self.reading_body = True
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self.reading_body = False
        super().on_message_complete()

    def waiting_for_request(self) -> bool:
        """No request is being read or answered: the connection is idle, or its next headers are still coming."""
        cycle = self.cycle
        idle = (cycle is None or cycle.response_complete) and not self.reading_body
        return idle and not self.transport.is_closing()

    def _arm_header_timer(self) -> None:
        if self.header_timer is None:
            self.header_timer = self.loop.call_later(self.header_timeout_s, self._headers_late, self.cycle)

    def _headers_late(self, cycle_when_armed: object) -> None:
        self.header_timer = None
        if self.cycle is cycle_when_armed and self.waiting_for_request():
            self._refuse(_TIMED_OUT if self.header_bytes else b"")

    def _refuse(self, response: bytes) -> None:
        if response:
            self.transport.write(response)
        self.transport.close()

    def _make_room(self) -> None:
        """Close the oldest connections waiting for a request, so that this one stays under the limit."""
        excess = len(self.connections) - self.max_connections + 1
        waiting = (
            connection
            for connection in self.connections
            if connection is not self and isinstance(connection, ClientGuard) and connection.waiting_for_request()
        )
        for connection in heapq.nsmallest(excess, waiting, key=lambda c: c.opened_at):
            connection.transport.close()
            self.connections.discard(connection)  # now, not when the loop reports it lost: the limit counts these


def guarded_protocol(serving: ServingSettings) -> type[ClientGuard]:
    """The :class:`ClientGuard` protocol with these settings' limits."""
    limits = {
        "header_timeout_s": serving.header_timeout_s,
        "max_header_bytes": serving.max_header_kb * 1024,
        "max_connections": serving.max_connections,
    }
    return type("GuardedHttpProtocol", (ClientGuard,), limits)


def uvicorn_config(app: Any, settings: Settings, **options: Any) -> uvicorn.Config:
    """uvicorn's configuration of the service: address, client timeouts and limits from ``settings.serving``.

    ``options`` are passed on to ``uvicorn.Config`` (``access_log``, ``log_level``, ...) and win.
    """
    serving = settings.serving
    chosen: dict[str, Any] = {
        "host": serving.host,
        "port": serving.port,
        "http": guarded_protocol(serving),
        "timeout_keep_alive": serving.keep_alive_s,
        "limit_concurrency": serving.max_connections,
        "h11_max_incomplete_event_size": serving.max_header_kb * 1024,
        "timeout_graceful_shutdown": serving.graceful_shutdown_s,
        "log_level": "info",
    }
    return uvicorn.Config(app, **(chosen | options))


def serve(app: Any, settings: Settings, **options: Any) -> None:
    """Run the service under uvicorn until it is stopped (see :func:`uvicorn_config`)."""
    uvicorn.Server(uvicorn_config(app, settings, **options)).run()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


@contextmanager
def serve_in_thread(
    app: Any, settings: Settings | None = None, start_timeout_s: float = 120.0, **options: Any
) -> Iterator[str]:
    """Serve ``app`` as :func:`serve` does, on a free loopback port, in a thread, until the block ends; yields the
    base URL. ``settings`` default to those the app was created with (``create_app``); their host and port are
    set to the ones served. ``options`` go to uvicorn (``log_level`` defaults to ``warning``)."""
    settings = settings or app.state.service.settings
    port = free_port()
    settings.serving.host, settings.serving.port = "127.0.0.1", port
    server = uvicorn.Server(uvicorn_config(app, settings, **({"log_level": "warning"} | options)))
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout_s  # the start-up imports Feast: tens of seconds on a busy machine
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the scoring service did not start on port {port}")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
