"""Promotion on labelled data: both registered versions are evaluated on the same test recordings.

The registry decides on the metrics; this module says how a model folder is evaluated on a features
folder. A model trained on another feature spec than the evaluation set cannot be scored on its rows.
"""

from __future__ import annotations

from pathlib import Path

from vibrasense.config import Settings
from vibrasense.errors import ModelError
from vibrasense.features.spec import FeatureSpec
from vibrasense.models.base import load_detector
from vibrasense.registry import Promotion, promote_if_better
from vibrasense.training.data import TrainingData, anomaly_labels, load_training_data
from vibrasense.training.metrics import detection_metrics


def promote(settings: Settings, features_dir: Path | str | None = None) -> Promotion:
    """Make the challenger champion only if it beats the champion on the labelled test recordings."""
    loaded: dict[Path, TrainingData] = {}

    def evaluate(model_folder: Path, features: Path) -> dict[str, float]:
        if features not in loaded:
            loaded[features] = _labelled(settings, features)
        data = loaded[features]
        spec = FeatureSpec.load(model_folder)
        if spec.hash != data.spec.hash:
            raise ModelError(
                f"{model_folder}: this version was trained on another feature spec than {features} "
                f"({'; '.join(spec.differences(data.spec))}); evaluate both versions on features of one spec"
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
