"""``vibrasense features``: recordings in, features out."""

from __future__ import annotations

from pathlib import Path

import typer

from vibrasense.cli.common import console, output_folder, parse_duration, settings
from vibrasense.errors import ConfigError, InputError


def register(app: typer.Typer) -> None:
    """Add the ``features`` command."""
    app.command("features")(features)


def features(
    inputs: list[Path] | None = typer.Argument(
        None,
        help="Folders, archives (.zip, .tar.gz) or files; the dataset layout is recognised automatically, and files "
        "in none are recordings labelled by --label-rule.",
    ),
    out: Path | None = typer.Option(None, "--out", "-o", help="Output folder (default: <workdir>/features)."),
    workers: int | None = typer.Option(None, help="Local worker processes (0: every core)."),
    batch_size: int | None = typer.Option(None, help="Recordings per task and per written part."),
    dask_scheduler: str | None = typer.Option(None, help="Run on this Dask scheduler (tcp://host:8786)."),
    sample_rate: int | None = typer.Option(None, help="Audio is resampled to this rate (Hz)."),
    channel: int | None = typer.Option(None, help="Channel of multi-channel files."),
    n_mels: int | None = typer.Option(None, help="Mel bands of the log-mel spectrogram."),
    n_fft: int | None = typer.Option(None, help="FFT length (samples)."),
    hop_length: int | None = typer.Option(None, help="Hop between frames (samples)."),
    bearing: str | None = typer.Option(None, help="Bearing preset for defect frequencies, or 'auto'."),
    shaft_hz: float | None = typer.Option(None, help="Shaft speed in Hz when the recordings do not say it."),
    segment: str | None = typer.Option(
        None, help="Cut each recording into windows this long (1s, 250ms), each a row <id>@<start ms>."
    ),
    hop: str | None = typer.Option(None, help="Time between window starts (default: the window length)."),
    label_rule: list[str] | None = typer.Option(
        None,
        "--label-rule",
        help="Labels of recordings in no known layout: PATTERN=LABEL,... on folder and file names, e.g. "
        "'DEF=anomaly,NON-DEF=normal' or 'ON_=normal,BLADE_FAULT_=anomaly' (ingest.label_rule; repeatable).",
    ),
    machine_from: str | None = typer.Option(
        None,
        help="Machine id of recordings in no known layout: folder (nearest folder no label rule matched), input, or "
        "a regular expression with one group (ingest.machine_from).",
    ),
    manifest: Path | None = typer.Option(
        None,
        help="CSV listing recordings: path (relative to it), optional machine_id, label, split, timestamp "
        "(ingest.manifest).",
    ),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Extract log-mel spectrograms, the 13 statistical features and vibration features.

    Writes OUT/features.parquet (one row per recording, or per window with --segment), the memory-mapped
    log-mel store OUT/logmel/ and OUT/ingest_report.json (every skipped file and why). Re-running processes
    only new or changed files. The windows are part of the feature spec: train and serve with the same
    features.segment (vibrasense.yaml or VIBRASENSE_FEATURES__SEGMENT__LENGTH_S / __HOP_S). Files in no known
    layout are recordings too, unlabelled unless --label-rule or a --manifest labels them.
    """
    from vibrasense.features.pipeline import extract_features

    if hop is not None and segment is None:
        raise ConfigError("--hop needs --segment (the window length)")
    config = settings(
        signals={"sample_rate": sample_rate, "channel": channel},
        ingest={
            "label_rule": ",".join(label_rule) if label_rule else None,
            "machine_from": machine_from,
            "manifest": manifest,
        },
        features={
            "workers": workers,
            "batch_size": batch_size,
            "dask_scheduler": dask_scheduler,
            "logmel": {"n_mels": n_mels, "n_fft": n_fft, "hop_length": hop_length},
            "vibration": {"bearing": bearing, "shaft_hz": shaft_hz},
            "segment": {
                "length_s": parse_duration(segment) if segment is not None else None,
                "hop_s": parse_duration(hop) if hop is not None else None,
            },
        },
    )
    sources = [*(inputs or []), *([config.ingest.manifest] if config.ingest.manifest else [])]
    if not sources:
        raise ConfigError("give the recordings to ingest (folders, archives or files) or --manifest FILE")
    run = extract_features(sources, output_folder(out or config.workdir / "features"), config, progress=progress)
    rows = "windows" if config.features.segment.length_s else "recordings"
    console.print(
        f"[bold]{run.processed}[/] {rows} processed, {run.unchanged} recordings unchanged, "
        f"[{'red' if run.skipped else 'green'}]{len(run.skipped)} skipped[/] in {run.seconds:.1f} s"
    )
    for item in run.skipped[:20]:
        console.print(f"  skipped {item.source}: {item.reason}", highlight=False)
    if len(run.skipped) > 20:
        console.print(f"  ... and {len(run.skipped) - 20} more, see {run.report_path}")
    if run.ignored:
        console.print(f"  {len(run.ignored)} files or manifest rows ignored as no recording, see {run.report_path}")
    console.print(f"features: {run.features_path}\nlog-mel:  {run.logmel_dir}\nreport:   {run.report_path}")
    if run.skipped and not run.processed and not run.unchanged:
        first = run.skipped[0]
        raise InputError(
            first.source if len(run.skipped) == 1 else ", ".join(str(path) for path in sources),
            first.reason
            if len(run.skipped) == 1
            else f"none of the {len(run.skipped)} recordings could be read (see {run.report_path})",
        )
