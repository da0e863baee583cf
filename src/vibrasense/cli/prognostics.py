"""``vibrasense diagnose`` and ``vibrasense prognose``: which defect, and how long until failure."""

from __future__ import annotations

import json
import logging
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import typer
from rich.table import Table

from vibrasense.cli.common import console, error_console, parse_duration, settings
from vibrasense.errors import ConfigError, InputError, redact

if TYPE_CHECKING:
    from vibrasense.prognostics.envelope import Peak

log = logging.getLogger(__name__)


def register(app: typer.Typer) -> None:
    """Add the ``diagnose``, ``prognose`` and ``prognose-evaluate`` commands."""
    app.command("diagnose")(diagnose)
    app.command("prognose")(prognose)
    app.command("prognose-evaluate")(prognose_evaluate)


def diagnose(
    inputs: list[Path] = typer.Argument(..., help="Bearing recordings: files, folders or archives (any layout)."),
    bearing: str | None = typer.Option(
        None, help="Bearing preset (cwru-6205-de, cwru-6203-fe, ims-za2115, femto); default: the sensor's own."
    ),
    channel: str | None = typer.Option(
        None,
        help="Channel to read: a name (CWRU DE, FE, BA) or an index. A CWRU FE channel is diagnosed for the fan-end "
        "6203 unless --bearing says otherwise; the other bearing on the shaft is heard too, and a verdict names it.",
    ),
    shaft_hz: float | None = typer.Option(
        None,
        help="Shaft speed in Hz for every input (default: each recording's own, e.g. a CWRU file's RPM; where none "
        "is stated, searched within ±4 % of the preset's usual speed).",
    ),
    plot: Path | None = typer.Option(
        None, help="Write the envelope spectrum with the defect lines marked to this PNG (one per recording)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object per recording."),
) -> None:
    """Name the likely defect of each recording from its envelope spectrum (no labels needed), with its evidence.

    A recording that cannot be read or diagnosed is listed with the reason and the others go on; the exit
    status is 1 only when no recording could be diagnosed.
    """
    from vibrasense.features.spec import FeatureSpec
    from vibrasense.prognostics import diagnose as diagnose_recording
    from vibrasense.prognostics.diagnosis_plot import plot_envelope_spectrum
    from vibrasense.signals.bearings import SHAFT_NEIGHBOURS, get_bearing, layout_context, position_preset
    from vibrasense.signals.layouts import discover
    from vibrasense.signals.readers import read_signal, recording_shaft_hz

    config = settings(features={"vibration": {"bearing": bearing, "shaft_hz": shaft_hz}})
    vibration = FeatureSpec.from_settings(config).vibration
    wanted: int | str | None = int(channel) if channel and channel.lstrip("-").isdigit() else channel
    table = Table("recording", "verdict", "confidence", "bearing", "shaft", "evidence")
    diagnosed, skipped = 0, []
    for path in inputs:
        try:
            refs = discover(path)
        except InputError as error:
            skipped.append((str(error.source), error.reason))
            continue
        for ref in refs:
            try:
                signal = read_signal(ref, wanted)
                context = layout_context(ref)
                preset = vibration.bearing if vibration.bearing != "auto" else position_preset(context.bearing, wanted)
                if preset is None:
                    raise InputError(ref.source, "which bearing is it? pass --bearing (and --shaft-hz if known)")
                speed, source = _stated_speed(vibration.shaft_hz, recording_shaft_hz(ref), context.shaft_hz)
                neighbours = SHAFT_NEIGHBOURS.get(preset, ())
                geometry = get_bearing(preset)
                result = diagnose_recording(signal.samples, signal.sample_rate, geometry, speed, source, neighbours)
                if plot is not None:
                    target = plot if len(inputs) == 1 and len(refs) == 1 else _numbered(plot, ref.recording_id)
                    plot_envelope_spectrum(result, target, ref.recording_id)
            except (InputError, ConfigError) as error:
                skipped.append((ref.source, error.reason if isinstance(error, InputError) else str(error)))
                continue
            except Exception as error:  # a reader or decoder failing in a way nobody foresaw: report, go on
                log.debug("unexpected failure on %s", ref.source, exc_info=True)
                skipped.append((ref.source, f"{type(error).__name__}: {error}"))
                continue
            diagnosed += 1
            if as_json:
                body = {"recording_id": ref.recording_id, "channel": channel or ref.channel, **result.as_dict()}
                console.print_json(json.dumps(body))
                continue
            basis = f", {result.speed_basis}" if result.speed_basis else ""
            table.add_row(
                ref.recording_id,
                result.verdict,
                f"{result.confidence:.2f}",
                result.bearing if result.bearing == preset else f"{result.bearing} (heard via {preset})",
                f"{result.shaft_hz * 60:.0f} rpm ({result.speed_source}{basis})",
                describe_evidence(result.evidence),
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


def describe_evidence(evidence: list[Peak]) -> str:
    """The verdict's peak, then its harmonics and sidebands found, e.g. ``BPFI 162.0 Hz ×16; harmonics ...``."""
    if not evidence:
        return "-"
    groups = {kind: [p for p in evidence[1:] if p.kind == kind] for kind in ("harmonic", "sideband", "modulation")}
    first = evidence[0]
    parts = [f"{first.label} {first.found_hz:.1f} Hz ×{first.snr:.1f}"]
    parts += [
        f"{kind}s " + ", ".join(f"{p.label} {p.found_hz:.1f} ×{p.snr:.1f}" for p in peaks)
        for kind, peaks in groups.items()
        if peaks
    ]
    return "; ".join(parts)


def _stated_speed(user_hz: float | None, file_hz: float | None, layout_hz: float | None) -> tuple[float | None, str]:
    """The shaft speed a recording's diagnosis uses and where it came from: the user, the file, the layout, or
    nobody (``None``: the diagnosis searches it)."""
    for hz, source in ((user_hz, "user"), (file_hz, "file"), (layout_hz, "layout")):
        if hz:
            return hz, source
    return None, "search"


def _numbered(plot: Path, recording_id: str) -> Path:
    """``out.png`` -> ``out_<recording_id>.png``, for one plot per recording of several."""
    return plot.with_name(f"{plot.stem}_{recording_id}{plot.suffix or '.png'}")


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
    from vibrasense.prognostics.condition import condition_of
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
        conditions = [condition_of(str(snapshots["machine_id"].iloc[0])) for snapshots in earlier]
        history = PastRuns.learn([health_index(snapshots, chosen) for snapshots in earlier], conditions)
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


def prognose_evaluate(
    runs: list[Path] = typer.Argument(
        ...,
        help="Complete runs to failure of one bearing kind: folders, archives or tables (a table may hold several).",
    ),
    cuts: str = typer.Option("0.5,0.6,0.7,0.8,0.9", help="Comma-separated shares of life at which each run is cut."),
    features: str | None = typer.Option(None, help="Comma-separated health-index features (default: scale features)."),
    cache: bool = typer.Option(True, help="Keep each snapshot's features in <workdir>/prognostics-cache."),
    workers: int | None = typer.Option(None, help="Processes featurising snapshots (0: every core)."),
    as_json: bool = typer.Option(False, "--json", help="Print the cuts and the summary as one JSON object."),
) -> None:
    """Score RUL on your own history: each run cut at shares of its life, estimated from the others, PHM 2012 score.

    Leave-one-run-out, as ``benchmarks/prognostics.py`` does on the FEMTO runs: per cut the true and estimated
    remaining life, the 95 % band, Er (positive: early) and the accuracy A; then the mean A and its spread, the
    mean signed Er, the bands' coverage and the count of cuts with A = 0.
    """
    from vibrasense.prognostics.condition import condition_of
    from vibrasense.prognostics.evaluation import leave_one_out, summarise
    from vibrasense.prognostics.health import health_index
    from vibrasense.prognostics.runs import load_run

    config = settings()
    cache_dir = config.workdir / "prognostics-cache" if cache else None
    processes = config.features.workers if workers is None else workers
    try:
        shares = [float(part) for part in cuts.split(",")]
    except ValueError:
        raise ConfigError(f"--cuts {cuts!r}: give shares of life such as 0.5,0.7,0.9") from None
    chosen = [f.strip() for f in features.split(",")] if features else None
    results = {}
    for path in runs:
        frame = load_run(path, config, cache_dir=cache_dir, workers=processes)
        for machine_id, snapshots in frame.groupby("machine_id", sort=True):
            results[str(machine_id)] = health_index(snapshots, chosen)
    scores = leave_one_out(results, {name: condition_of(name) for name in results}, shares)
    summary = summarise(scores)
    if as_json:
        rows = [
            {"machine_id": s.machine_id, "cut": s.cut, "actual_hours": s.actual_hours, "rul_hours": s.estimate.hours,
             "low_hours": s.estimate.low, "high_hours": s.estimate.high, "method": s.estimate.method,
             "error_pct": s.error_pct, "accuracy": s.accuracy}
            for s in scores
        ]  # fmt: skip
        console.print_json(json.dumps({"cuts": rows, "summary": summary}))
        return
    table = Table("machine", "cut", "actual (h)", "estimate (h)", "95 % band (h)", "Er %", "A")
    for s in scores:
        band = f"{s.estimate.low:.2f}-{s.estimate.high:.2f}"
        table.add_row(
            s.machine_id, f"{s.cut:.0%}", f"{s.actual_hours:.2f}", f"{s.estimate.hours:.2f}", band,
            f"{s.error_pct:+.0f}", f"{s.accuracy:.2f}",
        )  # fmt: skip
    console.print(table)
    console.print(
        f"PHM 2012 score {summary['score']:.3f} (spread {summary['spread']:.2f}) over {len(scores)} cuts; mean signed "
        f"Er {summary['mean_error_pct']:+.0f} % (positive: early); 95 % band coverage {summary['coverage']:.0%}; "
        f"cuts with A = 0: {summary['zero_cuts']:.0f}",
        highlight=False,
    )
