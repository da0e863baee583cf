"""Health index, degradation onset and an early-warning alarm for one machine's snapshots.

Health index: the machine is its own reference. Each feature is standardised against the machine's early,
healthy part (the first ``baseline_fraction`` of snapshots; scale features in log), and the index is the
root-mean-square of those z-scores over the selected features: a Mahalanobis distance with diagonal
covariance, normalised by the number of features. It needs no labels and no other machine, so it works on
the first run of a new machine, and it stays comparable across feature sets. It is smoothed causally
(running median), so a snapshot's index never depends on a later one.

Alarm: the smoothed index above the threshold (a multiple of the baseline's high quantile) in ``k`` of the
last ``n`` snapshots; an isolated spike never raises it. Onset is the first snapshot of the window that
raised the first alarm. Flat or near-zero snapshots (a disconnected sensor) are flagged ``sensor_fault`` and
left out of the index, the baseline and the alarm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from vibrasense.errors import InputError
from vibrasense.prognostics.alarm import k_of_n_alarm, onset_position

DEFAULT_FEATURES = ("vib_rms", "vib_peak", "rms", "max", "mean_abs")
SCALE_PREFIXES = ("vib_rms", "vib_peak", "vib_band", "rms", "max", "std", "mean_abs", "energy")


@dataclass(frozen=True)
class HealthSettings:
    """How the index, the alarm and the sensor-fault check behave."""

    baseline_fraction: float = 0.15
    min_baseline: int = 10
    smoothing: int = 5
    threshold_quantile: float = 0.99
    threshold_factor: float = 1.5
    alarm_k: int = 3
    alarm_n: int = 5
    sensor_fault_ratio: float = 0.05


@dataclass
class HealthResult:
    """Per-snapshot index and alarm state, and the run's summary."""

    table: pd.DataFrame  # event_timestamp, health_index, smoothed, sensor_fault, above, alarm
    threshold: float
    features: list[str]
    onset: pd.Timestamp | None
    first_alarm: pd.Timestamp | None


def health_index(
    run: pd.DataFrame, features: list[str] | None = None, settings: HealthSettings = HealthSettings()
) -> HealthResult:
    """Index, threshold, alarm and onset for one machine's time-ordered snapshots."""
    if run["machine_id"].nunique() > 1:
        raise InputError("<run>", "health_index takes one machine's snapshots; group the table by machine_id")
    run = run.sort_values("event_timestamp").reset_index(drop=True)
    chosen = [f for f in (features or [f for f in DEFAULT_FEATURES if f in run.columns]) if f in run.columns]
    if not chosen:
        raise InputError("<run>", f"none of the health features is in the table; columns are {list(run.columns)}")
    sensor_fault = _sensor_fault(run, chosen, settings)
    healthy = run.loc[~sensor_fault, chosen].apply(pd.to_numeric, errors="coerce")
    baseline_size = max(settings.min_baseline, int(settings.baseline_fraction * len(healthy)))
    if len(healthy) < baseline_size + settings.alarm_n:
        raise InputError("<run>", f"{len(healthy)} usable snapshots; need at least {baseline_size + settings.alarm_n}")
    values = _transform(healthy)
    baseline = values.iloc[:baseline_size]
    spread = baseline.std()
    spread = spread.where(spread > 0, 0.01 * baseline.mean().abs() + 1e-12)  # a flat baseline: 1 % of its level
    z = (values - baseline.mean()) / spread
    index = np.sqrt((z**2).mean(axis=1, skipna=True))
    smoothed = index.rolling(settings.smoothing, min_periods=1).median()
    threshold = float(smoothed.iloc[:baseline_size].quantile(settings.threshold_quantile) * settings.threshold_factor)
    above = (smoothed > threshold).to_numpy()
    alarm = k_of_n_alarm(above, settings.alarm_k, settings.alarm_n)

    table = pd.DataFrame({"event_timestamp": run["event_timestamp"], "sensor_fault": sensor_fault})
    table.loc[~sensor_fault, "health_index"] = index.to_numpy()
    table.loc[~sensor_fault, "smoothed"] = smoothed.to_numpy()
    table["above"] = False
    table.loc[~sensor_fault, "above"] = above
    table["alarm"] = False
    table.loc[~sensor_fault, "alarm"] = alarm
    healthy_times = run.loc[~sensor_fault, "event_timestamp"].reset_index(drop=True)
    onset = onset_position(above, alarm, settings.alarm_n)
    first = int(np.argmax(alarm)) if alarm.any() else None
    return HealthResult(
        table=table,
        threshold=threshold,
        features=chosen,
        onset=healthy_times.iloc[onset] if onset is not None else None,
        first_alarm=healthy_times.iloc[first] if first is not None else None,
    )


def _transform(values: pd.DataFrame) -> pd.DataFrame:
    """Log of scale features (their growth is multiplicative), shape features as they are."""
    out = values.copy()
    for column in out.columns:
        if column.startswith(SCALE_PREFIXES):
            out[column] = np.log(out[column].clip(lower=1e-12))
    return out


def _sensor_fault(run: pd.DataFrame, features: list[str], settings: HealthSettings) -> pd.Series:
    """Snapshots whose level collapses far below the run's typical level: a disconnected or dead sensor."""
    level_column = next((c for c in ("vib_rms", "rms", "mean_abs", "std") if c in run.columns), None)
    if level_column is None:
        return pd.Series(False, index=run.index)
    level = pd.to_numeric(run[level_column], errors="coerce")
    return (level < settings.sensor_fault_ratio * level.median()) | level.isna()
