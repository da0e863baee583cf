"""``vibrasense diagnose`` and ``vibrasense prognose``: which defect, and how long until failure."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import UTC
from pathlib import Path

import pandas as pd
import typer
from rich.table import Table

from vibrasense.cli.common import console, error_console, parse_duration, settings
from vibrasense.errors import ConfigError, InputError, redact

log = logging.getLogger(__name__)


def register(app: typer.Typer) -> None:
    """Add the ``diagnose`` and ``prognose`` commands."""
    app.command("diagnose")(diagnose)
    app.command("prognose")(prognose)


def diagnose(
    inputs: list[Path] = typer.Argument(..., help="Bearing recordings: files, folders or archives (any layout)."),
    bearing: str | None = typer.Option(None, help="Bearing preset (cwru-6205-de, ims-za2115, femto)."),
    shaft_hz: float | None = typer.Option(
        None, help="Shaft speed in Hz for every input (default: each recording's own, e.g. a CWRU file's RPM)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object per recording."),
) -> None:
    """Name the likely defect of each recording from its envelope spectrum (no labels needed).

    A recording that cannot be read or diagnosed is listed with the reason and the others go on; the exit
    status is 1 only when no recording could be diagnosed.
    """
    from vibrasense.features.featurize import resolve_bearing
    from vibrasense.features.spec import FeatureSpec
    from vibrasense.prognostics import diagnose as diagnose_recording
    from vibrasense.signals.bearings import layout_context
    from vibrasense.signals.layouts import discover
    from vibrasense.signals.readers import read_signal, recording_shaft_hz

    config = settings(features={"vibration": {"bearing": bearing, "shaft_hz": shaft_hz}})
    spec = FeatureSpec.from_settings(config)
    table = Table("recording", "verdict", "confidence", "shaft", "evidence")
    diagnosed, skipped = 0, []
    for path in inputs:
        try:
            refs = discover(path)
        except InputError as error:
            skipped.append((str(error.source), error.reason))
            continue
        for ref in refs:
            try:
                signal = read_signal(ref)
                context = layout_context(ref)
                stated = recording_shaft_hz(ref)
                context = replace(context, shaft_hz=stated) if stated else context
                geometry, speed = resolve_bearing(spec, context)  # --shaft-hz, else the file's, else the layout's
                if geometry is None or not speed:
                    raise InputError(
                        ref.source, "which bearing is it? pass --bearing (and --shaft-hz if not the preset's)"
                    )
                result = diagnose_recording(signal.samples, signal.sample_rate, geometry, speed)
            except (InputError, ConfigError) as error:
                skipped.append((ref.source, error.reason if isinstance(error, InputError) else str(error)))
                continue
            except Exception as error:  # a reader or decoder failing in a way nobody foresaw: report, go on
                log.debug("unexpected failure on %s", ref.source, exc_info=True)
                skipped.append((ref.source, f"{type(error).__name__}: {error}"))
                continue
            diagnosed += 1
            if as_json:
                body = {"recording_id": ref.recording_id, "shaft_hz": round(speed, 4), **result.as_dict()}
                console.print_json(json.dumps(body))
                continue
            evidence = ", ".join(f"{p.label} {p.found_hz:.1f} Hz ×{p.snr:.0f}" for p in result.evidence[:3]) or "-"
            table.add_row(
                ref.recording_id, result.verdict, f"{result.confidence:.2f}", f"{speed * 60:.0f} rpm", evidence
            )
    if not as_json and diagnosed:
        console.print(table)
    for source, reason in skipped:
        if as_json:
            console.print_json(json.dumps({"source": source, "skipped": reason}))
        else:
            error_console.print(f"skipped {source}: {reason}", highlight=False)
    if skipped and not as_json:
        error_console.print(f"{diagnosed} recordings diagnosed, {len(skipped)} skipped", highlight=False)
    if not diagnosed:
        raise typer.Exit(1)


def prognose(
    source: Path = typer.Argument(..., help="A run folder or archive of snapshots, or a per-snapshot feature table."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Output folder (default: <workdir>/prognostics)."),
    features: str | None = typer.Option(None, help="Comma-separated health-index features (default: scale features)."),
    failure_ratio: float = typer.Option(4.0, help="Failure level as a multiple of the alarm threshold."),
    past: list[Path] = typer.Option(
        [],
        "--past",
        help="Earlier runs to failure of the same bearing kind (repeatable; a folder may hold several): RUL by "
        "similarity.",
    ),
    reset_at: list[str] = typer.Option(
        [],
        "--reset-at",
        help="When the alarm was acknowledged and reset (repeatable): time since the first snapshot (90s, 25min, "
        "2h30m) or an ISO timestamp.",
    ),
    cache: bool = typer.Option(True, help="Keep each snapshot's features in <workdir>/prognostics-cache."),
    workers: int | None = typer.Option(None, help="Processes featurising snapshots (0: every core)."),
    mlflow: bool = typer.Option(True, help="Log the tables and plots to MLflow."),
) -> None:
    """Health index, alert, latched alarm and remaining useful life per snapshot, with plots.

    The first snapshots are a run-in and a healthy baseline (a fixed count); after it, the alert marks the
    degradation onset and the alarm latches once the index stays above its threshold, until --reset-at.
    """
    from vibrasense.prognostics.health import health_index
    from vibrasense.prognostics.report import format_duration, log_to_mlflow
    from vibrasense.prognostics.report import prognose as run_prognosis
    from vibrasense.prognostics.rul import PastRuns
    from vibrasense.prognostics.runs import load_run

    config = settings()
    cache_dir = config.workdir / "prognostics-cache" if cache else None
    processes = config.features.workers if workers is None else workers

    def load(path: Path) -> pd.DataFrame:
        return load_run(path, config, cache_dir=cache_dir, workers=processes)

    run = load(source)
    chosen = [f.strip() for f in features.split(",")] if features else None
    history = None
    if past:
        earlier = [snapshots for path in past for _, snapshots in load(path).groupby("machine_id", sort=True)]
        history = PastRuns.learn([health_index(snapshots, chosen) for snapshots in earlier])
        console.print(
            f"{len(earlier)} earlier runs: mean life {format_duration(history.mean_life_hours)}, failure at "
            f"{history.failure_ratio:.1f}x the alarm threshold",
            highlight=False,
        )
    start = run["event_timestamp"].min()
    resets = [_moment(text, start) for text in reset_at]
    folder = out or config.workdir / "prognostics"
    results = run_prognosis(run, folder, chosen, failure_level_ratio=failure_ratio, past=history, resets=resets)
    table = Table("machine", "snapshots", "sensor faults", "onset", "alarm at", "alarm now", "switches", "RUL now")
    for result in results:
        health = result.health
        begin = result.table["event_timestamp"].iloc[0]

        def elapsed(moment: pd.Timestamp | None, begin: pd.Timestamp = begin) -> str:
            return "-" if moment is None else format_duration((moment - begin).total_seconds() / 3600)

        table.add_row(
            result.machine_id,
            str(len(result.table)),
            str(int(result.table["sensor_fault"].sum())),
            elapsed(health.onset),
            "no alarm" if health.first_alarm is None else elapsed(health.first_alarm),
            "ON" if result.alarm_now else "off",
            str(result.alarm_switches),
            format_duration(result.latest_rul_hours),
        )
    console.print(table)
    console.print("times are elapsed since each machine's first snapshot", highlight=False)
    console.print(f"tables and plots: {folder}")
    if mlflow:
        run_id = log_to_mlflow(config, str(source), results)
        console.print(f"MLflow run {run_id} ({redact(config.tracking_uri)}, experiment vibrasense-prognostics)")


def _moment(text: str, start: pd.Timestamp) -> pd.Timestamp:
    """A --reset-at value: a duration since ``start`` or an ISO timestamp (UTC unless it says otherwise)."""
    try:
        return start + pd.Timedelta(seconds=parse_duration(text))
    except ConfigError:
        pass
    try:
        moment = pd.Timestamp(text)
    except ValueError:
        raise ConfigError(
            f"--reset-at {text!r}: give a time since the first snapshot (90s, 25min, 2h30m) or an ISO timestamp"
        ) from None
    return moment.tz_localize(UTC) if moment.tzinfo is None else moment
