"""Promotion on labelled data: both registered versions are evaluated on the same test recordings.

The registry decides on the metrics; this module says how a model folder is evaluated on a features
folder. Each version sees the recordings under the feature spec it was trained on: where the evaluation
folder's spec is another (settings changed, or a newer vibrasense's defaults), its recordings are extracted
again under the version's spec (:func:`features_under_spec`), and both must score the same test recordings.
"""

from __future__ import annotations

from pathlib import Path

from vibrasense.config import Settings
from vibrasense.errors import ModelError
from vibrasense.features.pipeline import SPECS_DIR, features_under_spec
from vibrasense.features.spec import FeatureSpec
from vibrasense.models.base import load_detector
from vibrasense.registry import Promotion, promote_if_better
from vibrasense.training.data import TrainingData, anomaly_labels, load_training_data
from vibrasense.training.metrics import detection_metrics


def promote(settings: Settings, features_dir: Path | str | None = None) -> Promotion:
    """Make the challenger champion only if it beats the champion on the labelled test recordings."""
    loaded: dict[Path, TrainingData] = {}
    scored: dict[Path, frozenset[str]] = {}

    def evaluate(model_folder: Path, features: Path) -> dict[str, float]:
        spec = FeatureSpec.load(model_folder)
        folder = features_under_spec(features, spec, settings)
        if folder not in loaded:
            loaded[folder] = _labelled(spec.applied_to(settings), folder)
        data = loaded[folder]
        scored[model_folder] = frozenset(data.test["recording_id"])
        if len(set(scored.values())) > 1:
            first, this = scored.values()
            raise ModelError(
                f"{features}: under the two versions' feature specs the test split holds different recordings "
                f"({len(first)} and {len(this)}; only in one: {sorted(first ^ this)[:5]}); see the ingest reports "
                f"of {features} and of its {SPECS_DIR}/ folders for what was skipped"
            )
        detector = load_detector(model_folder)
        scores = detector.score(data.inputs(detector, data.test))
        return detection_metrics(anomaly_labels(data.test), scores, detector.threshold_)

    return promote_if_better(settings, evaluate, features_dir)


def _labelled(settings: Settings, features: Path) -> TrainingData:
    data = load_training_data(settings, features)
    if len(set(anomaly_labels(data.test).tolist())) < 2:
        raise ModelError(
            f"{features}: promotion compares AUC and needs normal and anomalous recordings in the test split "
            f"(split 'test', labels normal and anomaly); found {len(data.test)} labelled test recordings"
        )
    return data
