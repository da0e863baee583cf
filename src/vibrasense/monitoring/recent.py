"""What the running system saw lately, against the champion's training reference.

The reference is the one saved with the model (``training_reference.parquet``); recent features are the rows
of the features table that the model did not learn from, recorded since the look-back; recent scores are the
verdicts of the score store since then.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd

from vibrasense.config import Settings
from vibrasense.errors import InputError, ModelError
from vibrasense.features.pipeline import features_under_spec, read_features
from vibrasense.features.spec import FeatureSpec
from vibrasense.inference.training_reference import normal_reference, read_reference
from vibrasense.monitoring.drift import SCORE_COLUMN, DriftReport, detect_drift
from vibrasense.registry import tracking_client
from vibrasense.registry.versions import detector_directory, resolve_version
from vibrasense.serving.scores import ScoreStore
from vibrasense.serving.service import SCORE_SPOOL_FILE


@dataclass(frozen=True)
class ChampionReference:
    """What a registered version learned from: its description, training reference and feature spec."""

    name: str
    table: pd.DataFrame
    spec: FeatureSpec


def champion_reference(settings: Settings, target: str | int) -> ChampionReference:
    """The training reference and spec of the registered version ``target`` names (alias or number)."""
    client = tracking_client(settings)
    version = resolve_version(client, settings, target)
    folder = detector_directory(client, settings, version)
    name = f"{settings.tracking.registered_model} v{version.version} ({target})"
    reference = read_reference(folder)
    if reference is None:
        raise ModelError(f"{name} was trained before training references were kept: retrain it with `vibrasense train`")
    return ChampionReference(name, reference, FeatureSpec.load(folder))


def recent_features(
    features_dir: Path, since: datetime, reference: pd.DataFrame, machine_id: str | None
) -> pd.DataFrame:
    """Feature rows recorded at or after ``since`` that the model never saw (of one machine, or all)."""
    if not (features_dir / "features.parquet").is_file():
        return pd.DataFrame(columns=["machine_id"])
    table = read_features(features_dir)
    stamps = pd.to_datetime(table["event_timestamp"], utc=True)
    keep = (stamps >= pd.Timestamp(since)) & ~table["recording_id"].isin(reference["recording_id"])
    if machine_id is not None:
        keep &= table["machine_id"] == machine_id
    return table[keep].reset_index(drop=True)


def recent_scores(settings: Settings, since: datetime, machine_id: str | None) -> pd.DataFrame:
    """(machine_id, score) of every verdict in the score store since ``since``."""
    store = ScoreStore(settings.score_store_url, settings.workdir / SCORE_SPOOL_FILE)
    rows = store.scores_since(since, machine_id)
    return pd.DataFrame({"machine_id": [r.machine_id for r in rows], SCORE_COLUMN: [r.score for r in rows]})


def recent_drift(
    settings: Settings,
    since: datetime,
    *,
    machine_id: str | None = None,
    features_dir: Path | None = None,
    target: str | int | None = None,
) -> DriftReport:
    """Recent features and scores of every machine (or one) against the served model's reference; the features
    under the model's own spec (extracted again under it where the folder's spec is another)."""
    target = target or settings.serving.model_version or settings.serving.model_alias
    champion = champion_reference(settings, target)
    name, reference = champion.name, champion.table
    features_dir = features_dir or settings.workdir / "features"
    if (features_dir / "features.parquet").is_file():  # the recordings as the model sees them
        features_dir = features_under_spec(features_dir, champion.spec, settings)
    features = recent_features(features_dir, since, reference, machine_id)
    scores = recent_scores(settings, since, machine_id)
    current = pd.concat([features, scores], ignore_index=True)
    if current.empty:
        raise InputError(
            "--since",
            f"nothing recorded or scored since {since:%Y-%m-%d %H:%M} UTC"
            + (f" for machine {machine_id}" if machine_id else "")
            + ": give an earlier --since",
        )
    reference = normal_reference(reference)
    if machine_id is not None:
        reference = reference[reference["machine_id"] == machine_id]
    return detect_drift(
        reference,
        current,
        settings.drift,
        reference_name=f"training reference of {name}",
        current_name=f"recordings and scores since {since:%Y-%m-%d %H:%M} UTC",
    )
