"""Where a drift check goes: the report folder, MLflow, and the status file the service shows."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from vibrasense.config import Settings
from vibrasense.errors import OutputError
from vibrasense.monitoring.drift import DriftReport
from vibrasense.monitoring.report import write_report
from vibrasense.serving.drift_status import DriftStatus, MachineDriftStatus, drift_status_path


def status_of(report: DriftReport, report_dir: Path) -> DriftStatus:
    """The service's view of a report: per machine the verdict, the score shift and the reasons."""
    return DriftStatus(
        checked_at=report.created_at,
        reference=report.reference,
        report=str(report_dir),
        machines=[
            MachineDriftStatus(
                machine_id=m.machine_id,
                drifted=m.drifted,
                score_shift=m.score.comparison.shift if m.score else None,
                drifted_features=sum(d.drifted for d in m.features),
                sensor_faults=[f.kind for f in m.sensor_faults],
                reasons=m.reasons,
            )
            for m in report.machines
        ],
    )


def publish_status(settings: Settings, report: DriftReport, report_dir: Path) -> Path:
    """Write the latest drift status for the service, atomically (a poll never reads half a file)."""
    path = drift_status_path(settings.workdir)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as handle:
            handle.write(status_of(report, report_dir).model_dump_json(indent=2))
        os.replace(handle.name, path)
    except OSError as error:
        raise OutputError(f"cannot write the drift status {path}: {error.strerror or error}") from None
    return path


def record_check(settings: Settings, report: DriftReport, folder: Path) -> tuple[Path, Path]:
    """Write the report (``drift.json``, ``drift.html``) into ``folder`` and make it the service's latest check."""
    files = write_report(report, folder)
    publish_status(settings, report, folder)
    return files


def log_to_mlflow(settings: Settings, report: DriftReport, files: tuple[Path, ...]) -> str:
    """Log the check as an MLflow run (metrics per machine, the report files as artifacts); returns its id."""
    import mlflow

    from vibrasense.registry import experiment_id, tracking_client

    client = tracking_client(settings)
    experiment = experiment_id(client, settings, settings.tracking.experiment)
    with mlflow.start_run(experiment_id=experiment, run_name="drift") as run:
        mlflow.set_tags({"vibrasense.kind": "drift", "vibrasense.drifted": str(report.drifted).lower()})
        mlflow.log_metric("drifted_machines", sum(m.drifted for m in report.machines))
        for machine in report.machines:
            key = _metric_key(machine.machine_id)
            mlflow.log_metric(f"drifted.{key}", int(machine.drifted))
            if machine.score is not None:
                mlflow.log_metric(f"score_shift.{key}", machine.score.comparison.shift)
        for path in files:
            mlflow.log_artifact(str(path), "drift")
        return run.info.run_id


def _metric_key(machine_id: str) -> str:
    """MLflow metric names allow letters, digits, ``_ - . /`` and spaces; machine ids also use ``:``."""
    return machine_id.replace(":", "_")
