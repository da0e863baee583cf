"""``vibrasense diagnose`` and ``vibrasense prognose``: which defect, and how long until failure."""

from __future__ import annotations

import json
import math
from pathlib import Path

import typer
from rich.table import Table

from vibrasense.cli.common import console, settings
from vibrasense.errors import ConfigError


def register(app: typer.Typer) -> None:
    """Add the ``diagnose`` and ``prognose`` commands."""
    app.command("diagnose")(diagnose)
    app.command("prognose")(prognose)


def diagnose(
    inputs: list[Path] = typer.Argument(..., help="Bearing recordings: files, folders or archives (any layout)."),
    bearing: str | None = typer.Option(None, help="Bearing preset (cwru-6205-de, ims-za2115, femto)."),
    shaft_hz: float | None = typer.Option(None, help="Shaft speed in Hz (default: the preset's)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object per recording."),
) -> None:
    """Name the likely defect of each recording from its envelope spectrum (no labels needed)."""
    from vibrasense.features.featurize import resolve_bearing
    from vibrasense.features.spec import FeatureSpec
    from vibrasense.prognostics import diagnose as diagnose_recording
    from vibrasense.signals.bearings import layout_context
    from vibrasense.signals.layouts import discover
    from vibrasense.signals.readers import read_signal

    config = settings(features={"vibration": {"bearing": bearing, "shaft_hz": shaft_hz}})
    spec = FeatureSpec.from_settings(config)
    table = Table("recording", "verdict", "confidence", "evidence")
    for ref in (ref for path in inputs for ref in discover(path)):
        geometry, speed = resolve_bearing(spec, layout_context(ref))
        if geometry is None or not speed:
            raise ConfigError(f"{ref.source}: which bearing is it? pass --bearing (and --shaft-hz if not the preset's)")
        signal = read_signal(ref)
        result = diagnose_recording(signal.samples, signal.sample_rate, geometry, speed)
        if as_json:
            console.print_json(json.dumps({"recording_id": ref.recording_id, **result.as_dict()}))
            continue
        evidence = ", ".join(f"{p.label} {p.found_hz:.1f} Hz ×{p.snr:.0f}" for p in result.evidence[:3]) or "-"
        table.add_row(ref.recording_id, result.verdict, f"{result.confidence:.2f}", evidence)
    if not as_json:
        console.print(table)


def prognose(
    source: Path = typer.Argument(..., help="A run folder or archive of snapshots, or a per-snapshot feature table."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Output folder (default: <workdir>/prognostics)."),
    features: str | None = typer.Option(None, help="Comma-separated health-index features (default: scale features)."),
    failure_ratio: float = typer.Option(4.0, help="Failure level as a multiple of the alarm threshold."),
    past: list[Path] = typer.Option(
        [], "--past", help="Earlier runs to failure of the same bearing kind (repeatable): RUL by similarity."
    ),
    mlflow: bool = typer.Option(True, help="Log the tables and plots to MLflow."),
) -> None:
    """Health index, early-warning alarm and remaining useful life per snapshot, with plots."""
    from vibrasense.prognostics.health import health_index
    from vibrasense.prognostics.report import log_to_mlflow
    from vibrasense.prognostics.report import prognose as run_prognosis
    from vibrasense.prognostics.rul import PastRuns
    from vibrasense.prognostics.runs import load_run

    config = settings()
    run = load_run(source, config)
    chosen = [f.strip() for f in features.split(",")] if features else None
    history = None
    if past:
        history = PastRuns.learn([health_index(load_run(path, config), chosen) for path in past])
        console.print(
            f"{len(past)} earlier runs: mean life {history.mean_life_hours:.1f} h, failure at "
            f"{history.failure_ratio:.1f}x the alarm threshold",
            highlight=False,
        )
    results = run_prognosis(
        run, out or config.workdir / "prognostics", chosen, failure_level_ratio=failure_ratio, past=history
    )
    table = Table("machine", "snapshots", "sensor faults", "alarm at", "onset", "RUL now (h)")
    for result in results:
        health = result.health
        rul = result.latest_rul_hours
        table.add_row(
            result.machine_id,
            str(len(result.table)),
            str(int(result.table["sensor_fault"].sum())),
            health.first_alarm.strftime("%Y-%m-%d %H:%M") if health.first_alarm is not None else "no alarm",
            health.onset.strftime("%Y-%m-%d %H:%M") if health.onset is not None else "-",
            "-" if math.isnan(rul) else f"{rul:.1f}",
        )
    console.print(table)
    console.print(f"tables and plots: {out or config.workdir / 'prognostics'}")
    if mlflow:
        run_id = log_to_mlflow(config, str(source), results)
        console.print(f"MLflow run {run_id} ({config.tracking_uri}, experiment vibrasense-prognostics)")
