"""The gateway's own Prometheus metrics and its small HTTP endpoint: ``/metrics`` and ``/healthz``.

The metrics live in the scoring service's registry, so ``/metrics`` shows the gateway's counters next to the
service's (scores per machine, scoring latency, score store). ``/healthz`` answers the gateway's health as
JSON: 200 when it is connected and every store is up, 200 with ``"status": "degraded"`` when a store is
down (it keeps scoring), 503 when it is not connected to the broker.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class GatewayMetrics:
    """Messages by kind and outcome, dead letters by the field at fault, queue depth, connection, latency."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.messages = Counter(
            "vibrasense_gateway_messages_total",
            "MQTT messages handled, by kind (waveform, summary) and outcome (scored, duplicate, dead_letter, error).",
            ("kind", "outcome"),
            registry=registry,
        )
        self.dead_letters = Counter(
            "vibrasense_gateway_dead_letters_total",
            "Messages sent to the dead-letter topic, by the field at fault.",
            ("field",),
            registry=registry,
        )
        self.queue_depth = Gauge(
            "vibrasense_gateway_queue_depth", "Messages received and not yet handled.", registry=registry
        )
        self.connected = Gauge(
            "vibrasense_gateway_connected", "1 while connected to the MQTT broker.", registry=registry
        )
        self.handling = Histogram(
            "vibrasense_gateway_handling_seconds",
            "From a message's arrival at the gateway to its status published and the message acknowledged.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.online_pushes = Counter(
            "vibrasense_gateway_online_pushes_total",
            "Feature rows pushed to the online store, by outcome (ok, failed).",
            ("outcome",),
            registry=registry,
        )
        self.model_reloads = Counter(
            "vibrasense_gateway_model_reloads_total",
            "Champion reloads after the registry alias moved, by outcome.",
            ("outcome",),
            registry=registry,
        )


class HealthServer:
    """``/metrics`` and ``/healthz`` on a small port, in a daemon thread."""

    def __init__(self, host: str, port: int, registry: CollectorRegistry, health: Callable[[], dict[str, Any]]) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/metrics":
                    body, kind, code = generate_latest(outer.registry), CONTENT_TYPE_LATEST, 200
                elif self.path == "/healthz":
                    report = outer.health()
                    body, kind = json.dumps(report).encode(), "application/json"
                    code = 503 if report.get("status") == "down" else 200
                else:
                    body, kind, code = b'{"detail": "not found: try /metrics or /healthz"}', "application/json", 404
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """Requests are not logged: Prometheus scrapes often."""

        self.registry = registry
        self.health = health
        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, name="gateway-health", daemon=True)

    @property
    def port(self) -> int:
        """The port it listens on (the one the OS chose when asked for 0)."""
        return int(self.server.server_address[1])

    def start(self) -> HealthServer:
        """Serve in the background."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        self.server.shutdown()
        self.server.server_close()
