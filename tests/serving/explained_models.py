"""Real models that explain their scores, fitted on the serving tests' synthetic machine sounds."""

from __future__ import annotations

import numpy as np
from synthetic_machines import RATE, healthy_clip

from vibrasense.config import Settings
from vibrasense.features.featurize import featurize
from vibrasense.features.spec import FeatureSpec
from vibrasense.inference import ModelInputs, ModelScorer
from vibrasense.models import get_detector


def tabular_scorer(settings: Settings) -> ModelScorer:
    """Mahalanobis on the audio and vibration features (no bearing ones) of healthy synthetic clips."""
    spec = FeatureSpec.from_settings(settings)
    columns = tuple(c for c in spec.columns if c not in spec.envelope_columns)
    rows = [featurize(healthy_clip(seed), RATE, spec, columns=columns, logmel=False) for seed in range(30)]
    detector = get_detector("mahalanobis").fit(np.array([[row.values[c] for c in columns] for row in rows]))
    return ModelScorer(detector, spec, ModelInputs("tabular", columns), "explained-tabular", "1")


def autoencoder_scorer(settings: Settings) -> ModelScorer:
    """A small CNN autoencoder on the log-mels of healthy synthetic clips."""
    spec = FeatureSpec.from_settings(settings)
    logmels = [featurize(healthy_clip(seed), RATE, spec).logmel for seed in range(12)]
    detector = get_detector(
        "cnn-ae", z_dim=4, patch_frames=16, max_epochs=4, batch_size=32, learning_rate=3e-3, accelerator="cpu"
    ).fit(logmels)
    return ModelScorer(detector, spec, ModelInputs("logmel"), "explained-ae", "1")
