"""Registered versions: every trained model is a version; aliases ``champion`` and ``challenger`` say which serves.

The first version becomes ``champion``; later ones ``challenger``. A version's model folder (detector,
feature spec, model inputs) is downloaded once into ``<workdir>/model-cache`` and loaded by the inference
package.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from vibrasense.config import Settings
from vibrasense.errors import ModelError, redact
from vibrasense.inference import ModelScorer
from vibrasense.models.base import Detector, load_detector
from vibrasense.registry.tracking import tracking_client

DETECTOR_ARTIFACT = "detector"
"""The run artifact holding the model folder."""

CHAMPION = "champion"
CHALLENGER = "challenger"
LISTED_METRICS = ("auc", "pauc", "f1", "threshold")


@dataclass
class VersionInfo:
    """One registered version as ``vibrasense models list`` shows it."""

    version: str
    aliases: list[str]
    run_id: str
    detector: str
    metrics: dict[str, float]
    created: int


def assign_alias(client: MlflowClient, settings: Settings, version: str) -> str:
    """``champion`` for the first version of the registered model, ``challenger`` afterwards."""
    name = settings.tracking.registered_model
    alias = CHALLENGER if alias_version(client, name, CHAMPION) else CHAMPION
    client.set_registered_model_alias(name, alias, version)
    return alias


def resolve_version(client: MlflowClient, settings: Settings, alias_or_version: str | int) -> ModelVersion:
    """The version named by number (``3``, ``"3"``) or alias (``"champion"``)."""
    name = settings.tracking.registered_model
    target = str(alias_or_version)
    try:
        if target.isdigit():
            return client.get_model_version(name, target)
        return client.get_model_version_by_alias(name, target)
    except MlflowException:
        known = ", ".join(f"v{v.version} {v.aliases}" for v in _versions(client, name)) or "none"
        raise ModelError(
            f"no version {target!r} of registered model {name!r} in {redact(settings.tracking_uri)} (versions: "
            f"{known}); train one with `vibrasense train` or pick an existing alias/version"
        ) from None


def detector_directory(client: MlflowClient, settings: Settings, version: ModelVersion) -> Path:
    """The detector's own files of a version, downloaded once into ``<workdir>/model-cache/<run_id>``."""
    target = settings.workdir.resolve() / "model-cache" / version.run_id
    folder = target / DETECTOR_ARTIFACT
    if not (folder / "detector.json").is_file():
        target.mkdir(parents=True, exist_ok=True)
        client.download_artifacts(version.run_id, DETECTOR_ARTIFACT, str(target))
    return folder


def load_scorer(settings: Settings, alias_or_version: str | int) -> ModelScorer:
    """The registered model carrying ``alias_or_version``, ready to score raw recordings (no Lightning)."""
    client = tracking_client(settings)
    version = resolve_version(client, settings, alias_or_version)
    folder = detector_directory(client, settings, version)
    return ModelScorer.from_directory(folder, settings.tracking.registered_model, version.version)


def load_registered_detector(settings: Settings, alias_or_version: str | int) -> tuple[ModelVersion, Detector]:
    """A registered version and its detector."""
    client = tracking_client(settings)
    version = resolve_version(client, settings, alias_or_version)
    return version, load_detector(detector_directory(client, settings, version))


def list_versions(settings: Settings) -> list[VersionInfo]:
    """Every version of the registered model, newest first, with aliases and headline metrics."""
    client = tracking_client(settings)
    infos = []
    name = settings.tracking.registered_model
    for found in _versions(client, name):
        version = client.get_model_version(name, str(found.version))  # search results omit aliases
        run = client.get_run(version.run_id)
        infos.append(
            VersionInfo(
                version=str(version.version),
                aliases=list(version.aliases),
                run_id=version.run_id,
                detector=run.data.tags.get("vibrasense.detector", "?"),
                metrics={k: run.data.metrics[k] for k in LISTED_METRICS if k in run.data.metrics},
                created=version.creation_timestamp,
            )
        )
    return sorted(infos, key=lambda i: int(i.version), reverse=True)


def alias_version(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    """The version carrying ``alias``, or ``None``."""
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def _versions(client: MlflowClient, name: str) -> list[Any]:
    try:
        return list(client.search_model_versions(f"name='{name}'"))
    except MlflowException:
        return []
