"""Run the real app under uvicorn on a free loopback port, in a thread, for browser and HTTP tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI

from vibrasense.config import Settings
from vibrasense.serving.server import uvicorn_config


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def live_server(app: FastAPI, settings: Settings | None = None, **options: Any) -> Iterator[str]:
    """Serve ``app`` until the block ends; yields its base URL.

    With ``settings``, as ``vibrasense serve`` does (:func:`uvicorn_config`: its timeouts and limits, and
    ``options`` for uvicorn), on a free port.
    """
    port = free_port()
    if settings is None:
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    else:
        settings.serving.host, settings.serving.port = "127.0.0.1", port
        config = uvicorn_config(app, settings, **({"log_level": "warning"} | options))
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 120  # the start-up imports Feast: tens of seconds on a busy machine
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start on port {port}")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(20)
