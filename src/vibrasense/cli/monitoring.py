"""``vibrasense drift``: have recent recordings, scores or sensors moved away from what the model learned?"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from vibrasense.cli.common import console, output_folder, parse_duration, settings
from vibrasense.errors import ConfigError, InputError

if TYPE_CHECKING:
    import pandas as pd

DRIFT_EXIT_CODE = 10
"""Exit status of ``vibrasense drift`` when a machine drifted (0: none did; 1-6: an error, as every command)."""


def register(app: typer.Typer) -> None:
    """Add the ``drift`` command."""
    app.command("drift")(drift)


def drift(
    machine: str | None = typer.Option(None, "--machine", "-m", help="Check this machine only."),
    since: str | None = typer.Option(
        None, help="Look back this long (24h, 7d) or from this date (2026-11-30); default drift.since."
    ),
    reference: Path | None = typer.Option(
        None, help="Compare two feature folders: the reference one (written by `vibrasense features`)."
    ),
    current: Path | None = typer.Option(None, help="... and the current one (with --reference)."),
    features: Path | None = typer.Option(None, help="Features of recent recordings (default <workdir>/features)."),
    model: str | None = typer.Option(None, help="Model whose training reference to use (alias or version)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Report folder (default <workdir>/drift/<time>)."),
    mlflow_log: bool = typer.Option(True, "--mlflow/--no-mlflow", help="Log the check to MLflow."),
) -> None:
    """Compare recent features and scores per machine with the training reference (PSI, KS, Wasserstein).

    Writes drift.json and drift.html, logs them to MLflow, and updates the drift status the service shows on
    /metrics and the dashboard. Exit status: 0 without drift, 10 when a machine drifted (a feature, the
    score distribution, or a flat-lined, disconnected or clipped sensor), 1-6 on errors.
    """
    from vibrasense.monitoring.drift import detect_drift
    from vibrasense.monitoring.publish import record_check

    config = settings()
    if (reference is None) != (current is None):
        raise ConfigError("--reference and --current go together: two folders written by `vibrasense features`")
    started = datetime.now(UTC)
    if reference is not None and current is not None:
        ref_table, cur_table = _features(reference, "--reference"), _features(current, "--current")
        if machine is not None:
            ref_table, cur_table = (t[t["machine_id"] == machine] for t in (ref_table, cur_table))
        report = detect_drift(
            ref_table, cur_table, config.drift, reference_name=str(reference), current_name=str(current)
        )
    else:
        from vibrasense.monitoring.recent import recent_drift

        moment = _since(since or config.drift.since, started)
        report = recent_drift(config, moment, machine_id=machine, features_dir=features, target=model)
    folder = output_folder(out or config.workdir / "drift" / started.strftime("%Y%m%dT%H%M%SZ"))
    files = record_check(config, report, folder)
    for machine_drift in report.machines:
        verdict = "[red]drift[/]" if machine_drift.drifted else "[green]no drift[/]"
        console.print(f"{machine_drift.machine_id}: {verdict}", highlight=False)
        for line in machine_drift.reasons[:8]:
            console.print(f"  {line}", highlight=False)
        if machine_drift.note:
            console.print(f"  {machine_drift.note}", highlight=False)
    if mlflow_log:
        from vibrasense.monitoring.publish import log_to_mlflow

        console.print(f"MLflow run: {log_to_mlflow(config, report, files)}")
    console.print(f"report: {files[1]}\njson:   {files[0]}")
    if report.drifted:
        raise typer.Exit(DRIFT_EXIT_CODE)


def _features(folder: Path, option: str) -> pd.DataFrame:
    from vibrasense.features.pipeline import read_features

    if not (folder / "features.parquet").is_file():
        raise InputError(option, f"{folder} holds no features.parquet: give a folder written by `vibrasense features`")
    return read_features(folder)


def _since(text: str, now: datetime) -> datetime:
    """A look-back (``7d``) before ``now``, or a date/time (``2026-11-30``, ISO 8601; UTC unless it says)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return now - timedelta(seconds=parse_duration(text))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
