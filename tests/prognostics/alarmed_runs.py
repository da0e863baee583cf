"""Health results of runs whose alarm time is set by hand, for the RUL tests."""

from __future__ import annotations

import pandas as pd

from vibrasense.prognostics.health import HealthResult


def alarmed_run(hours: float, alarm_hours: float | None) -> HealthResult:
    """A run observed for ``hours`` (a snapshot every 6 minutes), its alarm at ``alarm_hours``."""
    times = pd.date_range("2024-01-01", periods=round(hours * 10) + 1, freq="6min", tz="UTC")
    table = pd.DataFrame({"event_timestamp": times, "smoothed": 1.0, "health_index": 1.0, "sensor_fault": False})
    alarm = None if alarm_hours is None else times[0] + pd.Timedelta(hours=alarm_hours)
    return HealthResult(table, threshold=2.0, features=["rms"], onset=alarm, first_alarm=alarm)
