"""The main job on embedded defaults: a synthetic plant, end to end, printing what each stage did."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from vibrasense.config import Settings
from vibrasense.errors import redact
from vibrasense.features.pipeline import FeatureRun, extract_features
from vibrasense.pipelines import stages
from vibrasense.signals import synthetic

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoPlant:
    """Sizes of the synthetic plant: small enough to run anywhere in about a minute."""

    machines: int = 3
    machine_type: str = "pump"
    train_normal: int = 24
    test_normal: int = 8
    test_anomaly: int = 8
    seconds: float = 10.0
    run_to_failure_snapshots: int = 150
    seed: int = 7
    max_epochs: int = 10  # of the autoencoder, unless training.max_epochs is configured


def run_demo(settings: Settings, console: Console, plant: DemoPlant = DemoPlant()) -> None:
    """Generate the plant, then run every stage on it, each printing a short summary."""
    if "max_epochs" not in settings.training.model_fields_set:
        training = settings.training.model_copy(update={"max_epochs": plant.max_epochs})
        settings = settings.model_copy(update={"training": training})
    root = settings.workdir / "demo"
    console.rule("[bold]1. synthetic plant")
    audio_root, run_root = _generate_plant(root / "plant", plant, settings)
    console.print(f"machine sound (DCASE 2020 layout): {audio_root}\nrun-to-failure (FEMTO layout): {run_root}")

    console.rule("[bold]2. features")
    run = extract_features([audio_root, run_root], settings.workdir / "features", settings)
    console.print(_features_summary(run))

    console.rule("[bold]3. feature store (Feast)")
    stages.feature_store(settings, run, console)

    console.rule("[bold]4. training, evaluation, registry (MLflow)")
    stages.train_models(settings, run.out_dir, console)

    console.rule("[bold]5. scoring service (FastAPI)")
    stages.serve_and_score(settings, audio_root, console)

    console.rule("[bold]6. bearing prognostics")
    stages.prognose_run(settings, run_root, console)

    console.rule("[bold]7. live plant (MQTT gateway)")
    stages.live_plant(settings, console, plant.machine_type, plant.machines, plant.seconds)
    console.print(f"\nMLflow: .venv/bin/mlflow ui --backend-store-uri {redact(settings.tracking_uri)}", highlight=False)


def _generate_plant(root: Path, plant: DemoPlant, settings: Settings) -> tuple[Path, Path]:
    audio_root = synthetic.write_audio_plant(
        root / "sound",
        n_machines=plant.machines,
        machine_type=plant.machine_type,
        n_normal_train=plant.train_normal,
        n_test_normal=plant.test_normal,
        n_test_anomaly=plant.test_anomaly,
        seconds=plant.seconds,
        sample_rate=settings.signals.sample_rate,
        seed=plant.seed,
    )
    run_root = synthetic.write_run_to_failure(
        root / "vibration", n_snapshots=plant.run_to_failure_snapshots, seed=plant.seed
    )
    return audio_root, run_root


def _features_summary(run: FeatureRun) -> Table:
    table = pd.read_parquet(run.features_path)
    summary = Table(
        title=f"{run.processed} processed, {run.unchanged} unchanged, {len(run.skipped)} skipped "
        f"in {run.seconds:.1f} s -> {run.features_path}"
    )
    for column in ("machine_id", "kind", "label", "recordings", "rms_mean", "vib_kurtosis"):
        summary.add_column(column)
    groups = table.groupby(["machine_id", "kind", "label"], observed=True)
    for (machine_id, kind, label), group in groups:
        summary.add_row(
            machine_id,
            kind,
            label,
            str(len(group)),
            f"{group['rms_mean'].mean():.4f}",
            f"{group['vib_kurtosis'].mean():.2f}",
        )
    return summary
