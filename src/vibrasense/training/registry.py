"""The model registry: every trained model is a version; aliases ``champion`` and ``challenger`` say which serves.

The first version becomes ``champion``; later ones ``challenger``. :func:`promote_if_better` re-scores the
challenger and the champion on the same labelled evaluation set and moves ``champion`` only when the
challenger wins (AUC first, then pAUC).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from vibrasense.config import Settings
from vibrasense.errors import ModelError
from vibrasense.models.base import Detector, load_detector
from vibrasense.training.data import anomaly_labels, load_training_data
from vibrasense.training.metrics import detection_metrics
from vibrasense.training.pyfunc import DETECTOR_ARTIFACT
from vibrasense.training.scorer import DetectorScorer
from vibrasense.training.tracking import tracking_client

log = logging.getLogger(__name__)

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


@dataclass
class Promotion:
    """What ``promote_if_better`` compared and decided."""

    champion_version: str | None
    challenger_version: str | None
    champion_metrics: dict[str, float] = field(default_factory=dict)
    challenger_metrics: dict[str, float] = field(default_factory=dict)
    promoted: bool = False
    reason: str = ""


def assign_alias(client: MlflowClient, settings: Settings, version: str) -> str:
    """``champion`` for the first version of the registered model, ``challenger`` afterwards."""
    name = settings.tracking.registered_model
    alias = CHALLENGER if _alias_version(client, name, CHAMPION) else CHAMPION
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
            f"no version {target!r} of registered model {name!r} in {settings.tracking_uri} (versions: {known}); "
            "train one with `vibrasense train` or pick an existing alias/version"
        ) from None


def detector_directory(client: MlflowClient, settings: Settings, version: ModelVersion) -> Path:
    """The detector's own files of a version, downloaded once into ``<workdir>/model-cache/<run_id>``."""
    target = settings.workdir.resolve() / "model-cache" / version.run_id
    folder = target / DETECTOR_ARTIFACT
    if not (folder / "detector.json").is_file():
        target.mkdir(parents=True, exist_ok=True)
        client.download_artifacts(version.run_id, DETECTOR_ARTIFACT, str(target))
    return folder


def load_scorer(settings: Settings, alias_or_version: str | int) -> DetectorScorer:
    """The registered model carrying ``alias_or_version``, ready to score raw recordings (no Lightning)."""
    client = tracking_client(settings)
    version = resolve_version(client, settings, alias_or_version)
    folder = detector_directory(client, settings, version)
    return DetectorScorer.from_directory(folder, settings.tracking.registered_model, version.version)


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


def promote_if_better(settings: Settings, features_dir: Path | str | None = None) -> Promotion:
    """Make the challenger champion only if it beats the champion on the same evaluation set.

    Both are re-scored on the labelled test recordings of ``features_dir`` (default: the challenger's
    training features); the comparison is AUC, then pAUC.
    """
    client = tracking_client(settings)
    name = settings.tracking.registered_model
    champion = _alias_version(client, name, CHAMPION)
    challenger = _alias_version(client, name, CHALLENGER)
    if champion is None or challenger is None:
        return Promotion(
            str(champion.version) if champion else None,
            str(challenger.version) if challenger else None,
            reason=f"nothing to compare: needs both a {CHAMPION} and a {CHALLENGER} version",
        )
    folder = features_dir or client.get_run(challenger.run_id).data.params.get("features_dir")
    if not folder:
        raise ModelError("promote needs an evaluation set: pass --features DIR (output of `vibrasense features`)")
    data = load_training_data(settings, folder)
    labels = anomaly_labels(data.test)
    if len(set(labels.tolist())) < 2:
        raise ModelError(
            f"{folder}: promotion compares AUC and needs normal and anomalous recordings in the test split "
            f"(split 'test', labels normal and anomaly); found {len(data.test)} labelled test recordings"
        )
    results = {}
    for version in (champion, challenger):
        detector = load_detector(detector_directory(client, settings, version))
        scores = detector.score(data.inputs(detector, data.test))
        results[version.version] = detection_metrics(labels, scores, detector.threshold_)
    old, new = results[champion.version], results[challenger.version]
    promoted = (new["auc"], new["pauc"]) > (old["auc"], old["pauc"])
    if promoted:
        client.set_registered_model_alias(name, CHAMPION, challenger.version)
        client.delete_registered_model_alias(name, CHALLENGER)
        reason = f"v{challenger.version} beats v{champion.version} on {folder} (AUC, then pAUC)"
    else:
        reason = f"v{challenger.version} does not beat v{champion.version} on {folder}; champion kept"
    log.info(reason)
    return Promotion(str(champion.version), str(challenger.version), old, new, promoted, reason)


def _alias_version(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def _versions(client: MlflowClient, name: str) -> list[Any]:
    try:
        return list(client.search_model_versions(f"name='{name}'"))
    except MlflowException:
        return []
