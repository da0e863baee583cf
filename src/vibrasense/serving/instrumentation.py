"""ASGI middleware that counts requests and times them per endpoint for Prometheus.

A plain ASGI middleware (not Starlette's ``BaseHTTPMiddleware``) adds almost nothing to the hot path.
Endpoints are labelled by their route template (``/v1/machines/{machine_id}``), never by the raw path,
so client-chosen ids cannot blow up the number of time series.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vibrasense.serving.metrics import ServingMetrics

UNMATCHED = "<unmatched>"


class MetricsMiddleware:
    """Observes every HTTP request's status and duration under its route template."""

    def __init__(self, app: ASGIApp, metrics: ServingMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def send_and_note(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            endpoint = _endpoint(scope)
            method = scope.get("method", "")
            self.metrics.latency.labels(endpoint, method).observe(time.perf_counter() - started)
            self.metrics.requests.labels(endpoint, method, str(status["code"])).inc()


def _endpoint(scope: dict[str, Any]) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    if path is None:
        return UNMATCHED
    return path if not scope.get("root_path") else scope["root_path"] + path
