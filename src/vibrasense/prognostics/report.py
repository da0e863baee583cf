"""``prognose``: per machine, a table (health index, alert, alarm, RUL per snapshot), a plot, the correlation
report, all written to a folder and logged to MLflow."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from vibrasense.config import Settings
from vibrasense.prognostics.alarm import switches
from vibrasense.prognostics.condition import condition_of
from vibrasense.prognostics.correlation import band_heatmap, degradation_correlation
from vibrasense.prognostics.health import HealthResult, HealthSettings, health_index
from vibrasense.prognostics.rul import DEFAULT_FAILURE_RATIO, PastRuns, rul_series

log = logging.getLogger(__name__)
EXPERIMENT = "vibrasense-prognostics"


@dataclass
class MachinePrognosis:
    """Everything ``prognose`` found for one machine, and where it wrote it."""

    machine_id: str
    health: HealthResult
    table: pd.DataFrame
    correlation: pd.DataFrame
    files: list[Path]

    @property
    def latest_rul_hours(self) -> float:
        """The RUL estimate at the last usable snapshot (NaN before any estimate)."""
        values = self.table["rul_hours"].dropna()
        return float(values.iloc[-1]) if len(values) else math.nan

    @property
    def alarm_switches(self) -> int:
        """How often the alarm went on or off over the usable snapshots (1 for a latched alarm never reset)."""
        return switches(self.table.loc[~self.table["sensor_fault"], "alarm"].to_numpy())

    @property
    def alarm_now(self) -> bool:
        """Whether the alarm is on at the last usable snapshot."""
        usable = self.table.loc[~self.table["sensor_fault"], "alarm"]
        return bool(usable.iloc[-1]) if len(usable) else False


def prognose(
    run: pd.DataFrame,
    out_dir: Path,
    features: list[str] | None = None,
    health_settings: HealthSettings = HealthSettings(),
    failure_level_ratio: float = DEFAULT_FAILURE_RATIO,
    past: PastRuns | None = None,
    resets: Sequence[pd.Timestamp] = (),
) -> list[MachinePrognosis]:
    """Health index, alert, alarm and RUL per snapshot for every machine in ``run``; writes CSV and PNG files.

    Every value in a machine's table depends only on its snapshots up to that row.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for machine_id, snapshots in run.groupby("machine_id", sort=True):
        table, health = prognosis_table(snapshots, features, health_settings, failure_level_ratio, past, resets)
        table.insert(0, "machine_id", machine_id)
        correlation = degradation_correlation(snapshots)
        stem = str(machine_id).replace("/", "_")
        files = [out_dir / f"{stem}_prognosis.csv", out_dir / f"{stem}_correlation.csv"]
        table.to_csv(files[0], index=False)
        correlation.to_csv(files[1], index=False)
        files.append(plot_health(health, str(machine_id), out_dir / f"{stem}_health.png"))
        heatmap = band_heatmap(snapshots, out_dir / f"{stem}_bands.png", f"{machine_id}: band energy over time")
        if heatmap:
            files.append(heatmap)
        results.append(MachinePrognosis(str(machine_id), health, table, correlation, files))
    return results


def prognosis_table(
    snapshots: pd.DataFrame,
    features: list[str] | None = None,
    health_settings: HealthSettings = HealthSettings(),
    failure_level_ratio: float = DEFAULT_FAILURE_RATIO,
    past: PastRuns | None = None,
    resets: Sequence[pd.Timestamp] = (),
) -> tuple[pd.DataFrame, HealthResult]:
    """One machine's per-snapshot table: elapsed time, phase, index, thresholds, alert, alarm, RUL.

    Past runs are scaled to the machine's operating condition where its name tells it (``condition_of``).
    """
    health = health_index(snapshots, features, health_settings, resets)
    if past is not None and "machine_id" in snapshots:
        past = past.scaled_to(condition_of(str(snapshots["machine_id"].iloc[0])))
    table = health.table.copy()
    times = table["event_timestamp"]
    table.insert(1, "elapsed_hours", (times - times.iloc[0]).dt.total_seconds() / 3600)
    table["alert_threshold"] = health.alert_threshold  # the same on every row: readers need no other file
    table["threshold"] = health.threshold
    estimates = rul_series(health, failure_level_ratio, past)
    table["rul_hours"] = [e.hours if e else math.nan for e in estimates]
    table["rul_low_hours"] = [e.low if e else math.nan for e in estimates]
    table["rul_high_hours"] = [e.high if e else math.nan for e in estimates]
    table["rul_method"] = [e.method if e else "sensor fault" for e in estimates]
    return table, health


def format_duration(hours: float) -> str:
    """A duration people read at a glance: ``45 s``, ``12 min 30 s``, ``5 h 04 min``, ``74.5 h``; ``-`` if unknown."""
    if hours is None or not math.isfinite(hours):
        return "-"
    seconds = round(max(hours, 0.0) * 3600)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    if hours < 10:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    return f"{hours:.1f} h"


def plot_health(health: HealthResult, machine_id: str, path: Path) -> Path:
    """Health index, thresholds, baseline, alarm periods, onset and end of the run."""
    table = health.table
    seconds = (table["event_timestamp"] - table["event_timestamp"].iloc[0]).dt.total_seconds()
    scale, unit = (60, "minutes") if seconds.iloc[-1] < 2 * 3600 else (3600, "hours")
    elapsed = seconds / scale
    figure, axis = plt.subplots(figsize=(9, 4))
    baseline = elapsed[table["phase"] == "baseline"]
    if len(baseline):
        axis.axvspan(float(baseline.iloc[0]), float(baseline.iloc[-1]), color="0.85", alpha=0.6, label="baseline")
    axis.plot(elapsed, table["health_index"], color="0.7", linewidth=0.8, label="health index")
    axis.plot(elapsed, table["smoothed"], color="tab:blue", linewidth=1.6, label="smoothed")
    if health.alert_threshold is not None and health.alert_threshold < health.threshold:
        axis.axhline(health.alert_threshold, color="tab:olive", linestyle=":", label="alert threshold")
    axis.axhline(health.threshold, color="tab:orange", linestyle="--", label="alarm threshold")
    alarm = table["alarm"].to_numpy(dtype=bool)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], alarm.astype(int), [0]])))
    for number, (first, stop) in enumerate(zip(edges[::2], edges[1::2], strict=True)):
        end = float(elapsed.iloc[min(stop, len(elapsed) - 1)])
        axis.axvspan(
            float(elapsed.iloc[first]), end, color="tab:red", alpha=0.15, label="alarm" if not number else None
        )
    if health.onset is not None:
        onset = (health.onset - table["event_timestamp"].iloc[0]).total_seconds() / scale
        axis.axvline(onset, color="tab:olive", linewidth=1, label="onset")
    faults = table["sensor_fault"].to_numpy()
    if faults.any():
        axis.scatter(
            elapsed[faults], [health.threshold] * int(faults.sum()), marker="x", color="k", label="sensor fault"
        )
    axis.axvline(elapsed.iloc[-1], color="k", linewidth=1, label="last snapshot")
    axis.set_yscale("log")
    axis.set_xlabel(f"{unit} since the first snapshot")
    axis.set_ylabel("health index")
    axis.set_title(f"{machine_id}: health index ({', '.join(health.features)})")
    axis.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def log_to_mlflow(settings: Settings, source: str, results: list[MachinePrognosis]) -> str:
    """One MLflow run holding every machine's summary metrics and files; returns the run id."""
    import mlflow

    from vibrasense.errors import StoreError, redact
    from vibrasense.registry import experiment_id, tracking_client

    try:
        client = tracking_client(settings)
        mlflow.set_experiment(experiment_id=experiment_id(client, settings, EXPERIMENT))
    except StoreError:
        raise
    except Exception as error:  # MLflow raises many types for an unreachable or broken store
        raise StoreError(redact(f"cannot use the MLflow tracking store {settings.tracking_uri}: {error}")) from None
    with mlflow.start_run(run_name=f"prognose {Path(source).name}") as run:
        mlflow.log_param("source", source)
        for result in results:
            key = "".join(c if c.isalnum() or c in "_-." else "_" for c in result.machine_id)
            mlflow.log_param(f"{key}.features", ",".join(result.health.features))
            mlflow.log_metric(f"{key}.threshold", result.health.threshold)
            mlflow.log_metric(f"{key}.alarm", float(result.health.first_alarm is not None))
            mlflow.log_metric(f"{key}.alarm_switches", float(result.alarm_switches))
            start = result.table["event_timestamp"].iloc[0]
            for name, moment in (
                ("alert_hours", result.health.first_alert),
                ("alarm_hours", result.health.first_alarm),
            ):
                if moment is not None:
                    mlflow.log_metric(f"{key}.{name}", (moment - start).total_seconds() / 3600)
            if not math.isnan(result.latest_rul_hours):
                mlflow.log_metric(f"{key}.rul_hours", result.latest_rul_hours)
            for path in result.files:
                mlflow.log_artifact(str(path), artifact_path=key)
        return run.info.run_id
