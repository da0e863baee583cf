"""Prometheus metrics of the scoring service, each app with its own registry.

A registry per app (not the process-wide default) lets tests and benchmarks build several apps in one
process without "duplicated timeseries" errors. Machine ids come from clients, so the number of
``machine_id`` label values is capped: later machines share the label ``other``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5)
"""Request latency buckets in seconds, dense around the 20 ms goal of the scoring path."""

OTHER_MACHINES = "other"
STATES = ("not_running", "ok", "warning", "alarm")


class ScoreStoreState(Protocol):
    """What the metrics read of the score store."""

    healthy: bool

    def pending(self) -> int: ...

    def spooled(self) -> int: ...


class ServingMetrics:
    """Request counts and latencies per endpoint, scores and anomalies per machine, the model served."""

    def __init__(self, max_machine_labels: int = 1000) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.max_machine_labels = max_machine_labels
        self._machines: set[str] = set()
        self._machines_lock = threading.Lock()
        self.requests = Counter(
            "vibrasense_http_requests_total",
            "HTTP requests by endpoint (route template), method and status code.",
            ("endpoint", "method", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "vibrasense_http_request_duration_seconds",
            "Time from request to response by endpoint (route template).",
            ("endpoint", "method"),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.scoring_latency = Histogram(
            "vibrasense_scoring_duration_seconds",
            "Decode and model time of one recording, without HTTP.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.scores = Counter(
            "vibrasense_scores_total",
            "Recordings scored, by machine.",
            ("machine_id",),
            registry=self.registry,
        )
        self.anomalies = Counter(
            "vibrasense_anomalies_total",
            "Recordings scored above the model's threshold, by machine.",
            ("machine_id",),
            registry=self.registry,
        )
        self.unknown_domain = Counter(
            "vibrasense_unknown_domain_total",
            "Recordings far outside everything the model was trained on (not judged anomalies), by machine.",
            ("machine_id",),
            registry=self.registry,
        )
        self.rejected = Counter(
            "vibrasense_rejected_recordings_total",
            "Recordings refused as bad input, by the field at fault.",
            ("field",),
            registry=self.registry,
        )
        self.model_info = Gauge(
            "vibrasense_model_info",
            "The model being served (value 1) with its registry name and version.",
            ("name", "version"),
            registry=self.registry,
        )
        self.model_reloads = Counter(
            "vibrasense_model_reloads_total",
            "Model reloads by outcome.",
            ("outcome",),
            registry=self.registry,
        )
        self.score_store_dropped = Counter(
            "vibrasense_score_store_dropped_total",
            "Scores answered and lost: the local spool and the score store both failed to take them.",
            registry=self.registry,
        )
        self.score_store_queue = Gauge(
            "vibrasense_score_store_queue_size", "Scores queued in memory for the spool.", registry=self.registry
        )
        self.score_store_spooled = Gauge(
            "vibrasense_score_store_spooled",
            "Scores in the local spool, answered and not yet confirmed by the score store.",
            registry=self.registry,
        )
        self.score_store_degraded = Gauge(
            "vibrasense_score_store_degraded",
            "1 while the score store is unavailable or spooled scores of an outage wait to be replayed.",
            registry=self.registry,
        )
        self.score_store_replayed = Counter(
            "vibrasense_score_store_replayed_total",
            "Scores written to the score store from the spool after it was unavailable.",
            registry=self.registry,
        )

        self.machines_by_state = Gauge(
            "vibrasense_machines",
            "Machines seen by this process, by managed state (not_running, ok, warning, alarm).",
            ("state",),
            registry=self.registry,
        )
        self.active_alarms = Gauge(
            "vibrasense_active_alarms", "Alarms open (raised and not cleared) in this process.", registry=self.registry
        )
        self.alarm_events = Counter(
            "vibrasense_alarm_events_total",
            "Alarm events recorded, by kind (raised, escalated, acknowledged, shelved, unshelved, cleared).",
            ("kind",),
            registry=self.registry,
        )

    def watch_alarms(self, active: Callable[[], int], per_state: Callable[[], dict[str, int]]) -> None:
        """Read the open alarms and the machines per state at every scrape."""
        self.active_alarms.set_function(active)
        for state in STATES:
            self.machines_by_state.labels(state).set_function(lambda state=state: per_state()[state])

    def watch_score_store(self, store: ScoreStoreState) -> None:
        """Read the queue, the spool and the health of ``store`` at every scrape."""
        self.score_store_queue.set_function(store.pending)
        self.score_store_spooled.set_function(store.spooled)
        self.score_store_degraded.set_function(lambda: 0.0 if store.healthy else 1.0)

    def machine_label(self, machine_id: str) -> str:
        """The label value for a machine: its id, or ``other`` once the cap of distinct ids is reached."""
        if machine_id in self._machines:
            return machine_id
        with self._machines_lock:
            if len(self._machines) < self.max_machine_labels:
                self._machines.add(machine_id)
                return machine_id
        return OTHER_MACHINES

    def observe_score(self, machine_id: str, is_anomaly: bool, seconds: float, unknown_domain: bool = False) -> None:
        """Count one scored recording of a machine (an anomaly, an unknown domain) and its scoring time."""
        label = self.machine_label(machine_id)
        self.scores.labels(label).inc()
        if is_anomaly:
            self.anomalies.labels(label).inc()
        if unknown_domain:
            self.unknown_domain.labels(label).inc()
        self.scoring_latency.observe(seconds)

    def reject(self, field: str) -> None:
        """Count a refused recording under the name of its field (``recordings[2].samples`` counts as ``samples``)."""
        self.rejected.labels(field.split(".")[-1].split("[")[0]).inc()

    def set_model(self, name: str, version: str) -> None:
        """Make ``name``/``version`` the one model reported as served."""
        self.model_info.clear()
        self.model_info.labels(name, version).set(1)

    def exposition(self) -> tuple[bytes, str]:
        """The metrics in the Prometheus text format, with its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
