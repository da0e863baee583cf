"""Health index, degradation onset and a latched alarm for one machine's snapshots, each verdict causal.

Phases, counted in usable snapshots from the start of the run: the first ``run_in`` are ignored (start-up
transients: a machine warming up, a sensor settling), the next ``baseline`` are the healthy reference, and
every later one is monitored. The reference is a fixed count from the start, never a share of the run, so a
verdict at a snapshot depends on that snapshot and earlier ones only: a run cut short gets the same
prognosis up to its cut as the complete run.

Health index: the machine is its own reference. Each feature is standardised against the baseline (scale
features in log, and counted only above it: a bearing wears louder, not quieter, and a machine settling after
its run-in is no wear), and the index is the root-mean-square of those z-scores over the selected features: a
Mahalanobis distance with diagonal covariance, normalised by the number of features. It needs no labels and
no other machine. It is smoothed causally (running median).

Two thresholds on the smoothed index, each used with the rule *k of the last n monitored snapshots above*,
latched until reset (``prognostics.alarm``):

* alert (degradation onset): ``threshold_factor`` x the baseline's ``threshold_quantile``: the index has left
  its healthy range. The onset is the first snapshot over it in the window that raised the first alert.
* alarm: the alert threshold, or the index that a rise of every level feature by ``alarm_level_ratio``
  (2 = +6 dB) gives, whichever is higher. A steady baseline makes small changes statistically clear; the
  alarm waits until they also matter.

Flat or near-zero snapshots (a disconnected sensor: a level under ``sensor_fault_ratio`` x the median level
so far after the run-in) are flagged ``sensor_fault`` and left out of the index, the baseline and the alarm.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from vibrasense.errors import InputError
from vibrasense.prognostics.alarm import latched_alarm, onset_position

DEFAULT_FEATURES = ("vib_rms", "vib_peak", "rms", "max", "mean_abs")
SCALE_PREFIXES = ("vib_rms", "vib_peak", "vib_band", "rms", "max", "std", "mean_abs", "energy")
LEVEL_FEATURES = ("vib_rms", "rms", "mean_abs", "std")
PHASES = ("run-in", "baseline", "monitoring")


@dataclass(frozen=True)
class HealthSettings:
    """How the index, the alert, the alarm and the sensor-fault check behave (counts are usable snapshots)."""

    run_in: int = 5
    baseline: int = 60
    smoothing: int = 5
    threshold_quantile: float = 0.99
    threshold_factor: float = 2.0
    alarm_level_ratio: float = 2.0
    alarm_k: int = 3
    alarm_n: int = 5
    sensor_fault_ratio: float = 0.05

    @property
    def min_snapshots(self) -> int:
        """Usable snapshots a run needs before anything is monitored: the run-in and the baseline."""
        return self.run_in + self.baseline


@dataclass
class HealthResult:
    """Per-snapshot index, alert and alarm state, and the run's summary."""

    table: (
        pd.DataFrame
    )  # event_timestamp, phase, sensor_fault, health_index, smoothed, above_alert, above, alert, alarm
    threshold: float  # the alarm threshold
    features: list[str]
    onset: pd.Timestamp | None
    first_alarm: pd.Timestamp | None
    alert_threshold: float | None = None
    first_alert: pd.Timestamp | None = None

    @property
    def onset_known_at(self) -> pd.Timestamp | None:
        """When the onset became known: at the first alert (else the first alarm), not at the onset itself."""
        return next((t for t in (self.first_alert, self.first_alarm, self.onset) if t is not None), None)


def health_index(
    run: pd.DataFrame,
    features: list[str] | None = None,
    settings: HealthSettings = HealthSettings(),
    resets: Sequence[pd.Timestamp] = (),
) -> HealthResult:
    """Index, thresholds, alert, alarm and onset for one machine's time-ordered snapshots.

    ``resets`` are the times an operator acknowledged and reset the alarm (and the alert).
    """
    if run["machine_id"].nunique() > 1:
        raise InputError("<run>", "health_index takes one machine's snapshots; group the table by machine_id")
    run = run.sort_values("event_timestamp", kind="stable").reset_index(drop=True)
    chosen = [f for f in (features or [f for f in DEFAULT_FEATURES if f in run.columns]) if f in run.columns]
    if not chosen:
        raise InputError("<run>", f"none of the health features is in the table; columns are {list(run.columns)}")
    sensor_fault = _sensor_fault(run, settings)
    healthy = run.loc[~sensor_fault, chosen].apply(pd.to_numeric, errors="coerce").reset_index(drop=True)
    if len(healthy) < settings.min_snapshots:
        raise InputError(
            "<run>",
            f"{len(healthy)} usable snapshots; the run-in ({settings.run_in}) and the healthy baseline "
            f"({settings.baseline}) need {settings.min_snapshots} before anything is monitored",
        )
    phase = np.repeat(np.array(PHASES), [settings.run_in, settings.baseline, len(healthy) - settings.min_snapshots])
    values = _transform(healthy)
    reference = values.iloc[settings.run_in : settings.min_snapshots]
    spread = reference.std()
    spread = spread.where(spread > 0, 0.01 * reference.mean().abs() + 1e-12)  # a flat baseline: 1 % of its level
    z = (values - reference.mean()) / spread
    scale = [c for c in chosen if c.startswith(SCALE_PREFIXES)]
    z[scale] = z[scale].clip(lower=0)  # a wearing bearing grows louder: a level under its baseline is no wear
    index = np.sqrt((z**2).mean(axis=1, skipna=True))
    index[phase == "run-in"] = np.nan
    smoothed = index.rolling(settings.smoothing, min_periods=1).median()
    alert_threshold = float(
        smoothed[phase == "baseline"].quantile(settings.threshold_quantile) * settings.threshold_factor
    )
    level_index = math.log(settings.alarm_level_ratio) * math.sqrt(float((1 / spread[scale] ** 2).sum()) / len(chosen))
    threshold = max(alert_threshold, level_index)
    monitored = phase == "monitoring"
    above_alert = (smoothed > alert_threshold).to_numpy() & monitored
    above = (smoothed > threshold).to_numpy() & monitored
    times = run.loc[~sensor_fault, "event_timestamp"].reset_index(drop=True)
    positions = [int(np.searchsorted(times, pd.Timestamp(t), side="right")) for t in resets]
    alert = latched_alarm(above_alert, settings.alarm_k, settings.alarm_n, positions)
    alarm = latched_alarm(above, settings.alarm_k, settings.alarm_n, positions)

    table = pd.DataFrame({"event_timestamp": run["event_timestamp"], "sensor_fault": sensor_fault})
    usable = ~sensor_fault.to_numpy()
    count = np.cumsum(usable) - usable + 1  # the usable snapshot a row is, or would have been, counted from 1
    table["phase"] = np.select([count <= settings.run_in, count <= settings.min_snapshots], PHASES[:2], PHASES[2])
    table.loc[usable, "health_index"] = index.to_numpy()
    table.loc[usable, "smoothed"] = smoothed.to_numpy()
    for name, flags in (("above_alert", above_alert), ("above", above), ("alert", alert), ("alarm", alarm)):
        table[name] = False
        table.loc[usable, name] = flags
    onset = onset_position(above_alert, alert, settings.alarm_n)
    return HealthResult(
        table=table,
        threshold=threshold,
        features=chosen,
        onset=times.iloc[onset] if onset is not None else None,
        first_alarm=times.iloc[int(np.argmax(alarm))] if alarm.any() else None,
        alert_threshold=alert_threshold,
        first_alert=times.iloc[int(np.argmax(alert))] if alert.any() else None,
    )


def _transform(values: pd.DataFrame) -> pd.DataFrame:
    """Log of scale features (their growth is multiplicative), shape features as they are."""
    out = values.copy()
    for column in out.columns:
        if column.startswith(SCALE_PREFIXES):
            out[column] = np.log(out[column].clip(lower=1e-12))
    return out


def _sensor_fault(run: pd.DataFrame, settings: HealthSettings) -> pd.Series:
    """Snapshots whose level collapses far below the median level so far (the run-in left out, so a start-up
    transient does not make the next snapshots look dead): a disconnected or dead sensor."""
    level_column = next((c for c in LEVEL_FEATURES if c in run.columns), None)
    if level_column is None:
        return pd.Series(False, index=run.index)
    level = pd.to_numeric(run[level_column], errors="coerce")
    typical = level.where(run.index >= settings.run_in).expanding().median()
    return (level < settings.sensor_fault_ratio * typical) | level.isna()
