"""The latest drift check, as the service shows it: Prometheus gauges and the dashboard's drift per machine.

``vibrasense drift`` (the monitoring stage) writes ``<workdir>/drift/latest.json`` in this shape; the service
reads it when scraped or polled, so a drift check run by a scheduler shows up without a restart.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pydantic import BaseModel, Field, ValidationError

DRIFT_STATUS_FILE = Path("drift") / "latest.json"


class MachineDriftStatus(BaseModel):
    """One machine's drift at the latest check."""

    machine_id: str
    drifted: bool
    score_shift: float | None = Field(None, description="Wasserstein distance of recent scores, in reference SDs.")
    drifted_features: int = Field(0, description="Features that drifted.")
    sensor_faults: list[str] = Field(default_factory=list, description="flat-lined, disconnected, clipped.")
    reasons: list[str] = Field(default_factory=list)


class DriftStatus(BaseModel):
    """The latest drift check: when, against what, and each machine's verdict."""

    checked_at: datetime
    reference: str
    report: str = Field(..., description="Folder of the full report (drift.html, drift.json).")
    machines: list[MachineDriftStatus]


def drift_status_path(workdir: Path) -> Path:
    """Where the latest drift check is kept for the service."""
    return workdir / DRIFT_STATUS_FILE


def read_drift_status(workdir: Path) -> DriftStatus | None:
    """The latest drift check, or ``None`` when none ran (or its file is unreadable: a check is being written)."""
    path = drift_status_path(workdir)
    try:
        return DriftStatus.model_validate(json.loads(path.read_text()))
    except (OSError, ValueError, ValidationError):
        return None


class DriftCollector(Collector):
    """Prometheus gauges of the latest drift check, read from its file at each scrape."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir

    def describe(self) -> list[Metric]:
        """The gauges, for the registry's checks (no file read)."""
        return self._families(None)

    def collect(self) -> Iterator[Metric]:
        """The gauges of the latest check (none before the first)."""
        status = read_drift_status(self.workdir)
        if status is not None:
            yield from self._families(status)

    @staticmethod
    def _families(status: DriftStatus | None) -> list[Metric]:
        detected = GaugeMetricFamily(
            "vibrasense_drift_detected", "1 when the machine drifted at the latest drift check.", labels=["machine_id"]
        )
        shift = GaugeMetricFamily(
            "vibrasense_drift_score_shift",
            "Wasserstein distance of the machine's recent scores from its training reference, in reference SDs.",
            labels=["machine_id"],
        )
        checked = GaugeMetricFamily(
            "vibrasense_drift_checked_timestamp_seconds", "Unix time of the latest drift check."
        )
        if status is not None:
            for machine in status.machines:
                detected.add_metric([machine.machine_id], float(machine.drifted))
                if machine.score_shift is not None:
                    shift.add_metric([machine.machine_id], machine.score_shift)
            checked.add_metric([], status.checked_at.timestamp())
        return [detected, shift, checked]
