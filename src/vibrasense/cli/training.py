"""``vibrasense train``, ``vibrasense evaluate`` and ``vibrasense models list|promote|export``."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer
from rich.table import Table

from vibrasense.cli.common import console, settings
from vibrasense.config import ModelSettings, Settings

models_app = typer.Typer(help="The model registry: versions, aliases, promotion, export.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add ``train``, ``evaluate`` and the ``models`` group."""
    app.command("train")(train)
    app.command("evaluate")(evaluate)
    app.add_typer(models_app, name="models")


def _features_dir(config: Settings, features: Path | None) -> Path:
    return features or config.workdir / "features"


def train(
    model: str | None = typer.Option(
        None, "--model", "-m", help="Detector name (training.model.name); see `models list`."
    ),
    param: list[str] | None = typer.Option(
        None,
        "--param",
        "-p",
        help="KEY=VALUE, a hyper-parameter of the detector (training.model.params), repeatable, e.g. "
        "--param n_neighbors=10; the configured params apply only while the detector stays the configured one.",
    ),
    features: Path | None = typer.Option(
        None, "--features", "-f", help="Features folder (default <workdir>/features)."
    ),
    max_epochs: int | None = typer.Option(None, help="Autoencoder epochs (training.max_epochs)."),
    z_dim: int | None = typer.Option(
        None, help="Autoencoder bottleneck size (training.z_dim; default cnn-ae 40, dense-ae 8)."
    ),
    learning_rate: float | None = typer.Option(None, help="Adam learning rate (training.learning_rate)."),
    batch_size: int | None = typer.Option(None, help="Windows per batch (training.batch_size)."),
    threshold_method: str | None = typer.Option(None, help="percentile or gamma (training.threshold_method)."),
    threshold_percentile: float | None = typer.Option(None, help="Percentile of normal scores (default 95)."),
    accelerator: str | None = typer.Option(None, help="Lightning accelerator: auto, cpu, gpu (training.accelerator)."),
) -> None:
    """Train a detector on normal recordings, evaluate it on the test split, track and register it."""
    from vibrasense.models.base import detector_class, parse_param
    from vibrasense.training import train_and_register

    config = settings(
        training={
            "max_epochs": max_epochs,
            "z_dim": z_dim,
            "learning_rate": learning_rate,
            "batch_size": batch_size,
            "threshold_method": threshold_method,
            "threshold_percentile": threshold_percentile,
            "accelerator": accelerator,
        }
    )
    if model is not None or param:
        configured = config.training.model
        name = model or configured.name
        given = dict(parse_param(detector_class(name), text) for text in param or ())
        kept = configured.params if name == configured.name else {}
        config.training.model = ModelSettings(name=name, params=kept | given)
    result = train_and_register(config, _features_dir(config, features))
    console.print(
        f"run [bold]{result.run_id}[/]: {result.model_name} registered as "
        f"{config.tracking.registered_model} v{result.model_version} ({result.alias})",
        highlight=False,
    )
    _print_metrics(result.metrics)
    for note in result.notes:
        console.print(f"note: {note}", highlight=False)


def evaluate(
    model: str = typer.Option("champion", "--model", "-m", help="Registry alias or version to evaluate."),
    features: Path | None = typer.Option(None, "--features", "-f", help="Features folder with a labelled test split."),
) -> None:
    """Score the labelled test recordings with a registered model and print its metrics."""
    from vibrasense.registry import load_registered_detector
    from vibrasense.training import evaluate as evaluate_detector
    from vibrasense.training.data import load_training_data

    config = settings()
    version, detector = load_registered_detector(config, model)
    data = load_training_data(config, _features_dir(config, features))
    result = evaluate_detector(detector, data)
    console.print(
        f"{config.tracking.registered_model} v{version.version} ({detector.name}) on {len(result.rows)} "
        f"test recordings",
        highlight=False,
    )
    _print_metrics(result.metrics)


@models_app.command("list")
def list_models() -> None:
    """Registered versions, their aliases and headline metrics."""
    from vibrasense.models import list_detectors
    from vibrasense.registry import list_versions

    config = settings()
    table = Table("version", "aliases", "detector", "auc", "pauc", "f1", "threshold", "run")
    versions = list_versions(config)
    for info in versions:
        table.add_row(
            info.version,
            ", ".join(info.aliases),
            info.detector,
            *(f"{info.metrics[k]:.4f}" if k in info.metrics else "-" for k in ("auc", "pauc", "f1", "threshold")),
            info.run_id,
        )
    if versions:
        console.print(table)
    else:
        console.print(f"no versions of {config.tracking.registered_model} yet; run `vibrasense train`")
    console.print(f"detectors: {', '.join(list_detectors())}", highlight=False)


@models_app.command("promote")
def promote(
    features: Path | None = typer.Option(
        None, "--features", "-f", help="Evaluation set (default: the challenger's training features)."
    ),
) -> None:
    """Make the challenger champion only if it beats the champion on the same evaluation set."""
    from vibrasense.training import promote

    result = promote(settings(), features)
    for label, version, metrics in (
        ("champion", result.champion_version, result.champion_metrics),
        ("challenger", result.challenger_version, result.challenger_metrics),
    ):
        shown = "  ".join(f"{k} {metrics[k]:.4f}" for k in ("auc", "pauc", "f1") if k in metrics)
        console.print(f"{label:<10} v{version or '-'}  {shown}", highlight=False)
    console.print(("promoted: " if result.promoted else "not promoted: ") + result.reason, highlight=False)


class ExportFormat(StrEnum):
    """What ``models export`` writes."""

    onnx = "onnx"


@models_app.command("export")
def export(
    out: Path = typer.Option(
        ..., "--out", "-o", help="Folder to write model.onnx, feature_spec.json, model_inputs.json."
    ),
    export_format: ExportFormat = typer.Option(ExportFormat.onnx, "--format", help="Export format."),
    version: int | None = typer.Option(None, "--version", help="Registered version to export; wins over --alias."),
    alias: str = typer.Option("champion", "--alias", help="Registry alias to export."),
) -> None:
    """Export a registered model for ONNX Runtime (an edge box scores it without torch or scikit-learn)."""
    from vibrasense.inference.onnx_export import export_onnx
    from vibrasense.registry import resolve_version, tracking_client
    from vibrasense.registry.versions import detector_directory

    config = settings()
    client = tracking_client(config)
    found = resolve_version(client, config, version if version is not None else alias)
    written = export_onnx(detector_directory(client, config, found), out)
    console.print(
        f"{config.tracking.registered_model} v{found.version} exported to {export_format.value}: {written}",
        highlight=False,
    )


def _print_metrics(metrics: dict[str, float]) -> None:
    headline = ("auc", "pauc", "f1", "precision", "recall", "accuracy", "threshold")
    console.print("  ".join(f"{k} {metrics[k]:.4f}" for k in headline if k in metrics), highlight=False)
    if "tp" in metrics:
        console.print(
            "confusion: " + "  ".join(f"{k.upper()} {int(metrics[k])}" for k in ("tp", "fp", "tn", "fn")),
            highlight=False,
        )
