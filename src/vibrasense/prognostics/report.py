"""``prognose``: per machine, a table (health index, alarm, RUL per snapshot), a plot, the correlation report,
all written to a folder and logged to MLflow."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from vibrasense.config import Settings
from vibrasense.prognostics.correlation import band_heatmap, degradation_correlation
from vibrasense.prognostics.health import HealthResult, HealthSettings, health_index
from vibrasense.prognostics.rul import DEFAULT_FAILURE_RATIO, PastRuns, estimate_rul

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


def prognose(
    run: pd.DataFrame,
    out_dir: Path,
    features: list[str] | None = None,
    health_settings: HealthSettings = HealthSettings(),
    failure_level_ratio: float = DEFAULT_FAILURE_RATIO,
    past: PastRuns | None = None,
) -> list[MachinePrognosis]:
    """Health index, alarm and RUL per snapshot for every machine in ``run``; writes CSV and PNG files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for machine_id, snapshots in run.groupby("machine_id", sort=True):
        health = health_index(snapshots, features, health_settings)
        table = health.table.copy()
        table["threshold"] = health.threshold  # the same on every row: readers need no other file
        estimates = [
            estimate_rul(health, at, failure_level_ratio, past) if not fault else None
            for at, fault in zip(table["event_timestamp"], table["sensor_fault"], strict=True)
        ]
        table["rul_hours"] = [e.hours if e else math.nan for e in estimates]
        table["rul_low_hours"] = [e.low if e else math.nan for e in estimates]
        table["rul_high_hours"] = [e.high if e else math.nan for e in estimates]
        table["rul_method"] = [e.method if e else "sensor fault" for e in estimates]
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


def plot_health(health: HealthResult, machine_id: str, path: Path) -> Path:
    """Health index, threshold, alarm period and end of the run."""
    table = health.table
    hours = (table["event_timestamp"] - table["event_timestamp"].iloc[0]).dt.total_seconds() / 3600
    figure, axis = plt.subplots(figsize=(9, 4))
    axis.plot(hours, table["health_index"], color="0.7", linewidth=0.8, label="health index")
    axis.plot(hours, table["smoothed"], color="tab:blue", linewidth=1.6, label="smoothed")
    axis.axhline(health.threshold, color="tab:orange", linestyle="--", label="alarm threshold")
    if health.first_alarm is not None:
        start = (health.first_alarm - table["event_timestamp"].iloc[0]).total_seconds() / 3600
        axis.axvspan(start, hours.iloc[-1], color="tab:red", alpha=0.12, label="alarm")
    faults = table["sensor_fault"].to_numpy()
    if faults.any():
        axis.scatter(hours[faults], [health.threshold] * int(faults.sum()), marker="x", color="k", label="sensor fault")
    axis.axvline(hours.iloc[-1], color="k", linewidth=1, label="end of run")
    axis.set_yscale("log")
    axis.set_xlabel("hours since the first snapshot")
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

    from vibrasense.errors import StoreError
    from vibrasense.registry import experiment_id, tracking_client

    try:
        client = tracking_client(settings)
        mlflow.set_experiment(experiment_id=experiment_id(client, settings, EXPERIMENT))
    except StoreError:
        raise
    except Exception as error:  # MLflow raises many types for an unreachable or broken store
        raise StoreError(f"cannot use the MLflow tracking store {settings.tracking_uri}: {error}") from None
    with mlflow.start_run(run_name=f"prognose {Path(source).name}") as run:
        mlflow.log_param("source", source)
        for result in results:
            key = "".join(c if c.isalnum() or c in "_-." else "_" for c in result.machine_id)
            mlflow.log_param(f"{key}.features", ",".join(result.health.features))
            mlflow.log_metric(f"{key}.threshold", result.health.threshold)
            mlflow.log_metric(f"{key}.alarm", float(result.health.first_alarm is not None))
            if result.health.first_alarm is not None:
                start = result.table["event_timestamp"].iloc[0]
                mlflow.log_metric(f"{key}.alarm_hours", (result.health.first_alarm - start).total_seconds() / 3600)
            if not math.isnan(result.latest_rul_hours):
                mlflow.log_metric(f"{key}.rul_hours", result.latest_rul_hours)
            for path in result.files:
                mlflow.log_artifact(str(path), artifact_path=key)
        return run.info.run_id
