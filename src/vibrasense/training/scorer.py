"""A fitted detector plus the preprocessing it was trained with: raw samples in, (score, threshold, flag) out.

The preprocessing settings (sample rate, log-mel and vibration settings) are saved beside the detector at
training time and used at scoring time, so a later change of configuration cannot skew the inputs. The hot
path uses no pandas; torch runs under ``no_grad`` on one thread.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vibrasense.config import LogMelSettings, Settings, VibrationSettings
from vibrasense.errors import InputError, ModelError
from vibrasense.features import spectral
from vibrasense.features.vibration import vibration_features
from vibrasense.models.autoencoder import AutoencoderDetector
from vibrasense.models.base import Detector, load_detector
from vibrasense.models.tabular import TabularDetector
from vibrasense.signals.bearings import get_bearing
from vibrasense.signals.resample import resample
from vibrasense.threads import one_native_thread

PREPROCESSING_FILE = "preprocessing.json"


def save_preprocessing(settings: Settings, directory: Path) -> Path:
    """Write the settings that turn raw samples into the detector's inputs."""
    path = directory / PREPROCESSING_FILE
    path.write_text(
        json.dumps(
            {
                "sample_rate": settings.signals.sample_rate,
                "logmel": settings.features.logmel.model_dump(mode="json"),
                "vibration": settings.features.vibration.model_dump(mode="json"),
            },
            indent=2,
        )
    )
    return path


class DetectorScorer:
    """Satisfies ``serving.model.Scorer``: ``score(samples, sample_rate) -> (score, threshold, is_anomaly)``."""

    def __init__(self, detector: Detector, preprocessing: dict[str, Any], name: str, version: str) -> None:
        self.detector = detector
        self.name = name
        self.version = str(version)
        self.sample_rate = float(preprocessing["sample_rate"])
        self.logmel_settings = LogMelSettings(**preprocessing["logmel"])
        self.vibration_settings = VibrationSettings(**preprocessing["vibration"])
        self._leaf = getattr(detector, "best_", detector)
        bearing = self.vibration_settings.bearing
        self._bearing = get_bearing(bearing) if bearing != "auto" else None
        if isinstance(self._leaf, TabularDetector):
            self._columns = list(self._leaf.kept_columns_)
        self.threshold = float(detector.threshold_)

    @classmethod
    def from_directory(cls, directory: Path | str, name: str, version: str) -> DetectorScorer:
        """Load a detector folder written at training (detector files plus ``preprocessing.json``)."""
        folder = Path(directory)
        path = folder / PREPROCESSING_FILE
        if not path.is_file():
            raise ModelError(f"{folder}: {PREPROCESSING_FILE} missing; the model was not saved by vibrasense train")
        return cls(load_detector(folder), json.loads(path.read_text()), name, version)

    def score(self, samples: np.ndarray, sample_rate: float) -> tuple[float, float, bool]:
        """``(score, threshold, is_anomaly)`` of float32 mono samples at ``sample_rate`` Hz."""
        x = np.asarray(samples, dtype=np.float32)
        if x.ndim != 1 or x.size == 0 or not np.isfinite(x).all():
            raise InputError("<samples>", "need a non-empty 1-D array of finite samples")
        with one_native_thread(), _torch_single_thread(), torch.no_grad():
            value = self._score(x, float(sample_rate))
        return value, self.threshold, bool(value > self.threshold)

    def _score(self, x: np.ndarray, sample_rate: float) -> float:
        audio = resample(x, sample_rate, self.sample_rate) if sample_rate != self.sample_rate else x
        if isinstance(self._leaf, AutoencoderDetector):
            logmel = spectral.extract_logmel(audio, self.sample_rate, self.logmel_settings)
            return float(self._leaf.score_one(logmel))
        _, features = spectral.analyse_clip(audio, self.sample_rate, self.logmel_settings)
        needs_vibration = any(c.startswith("vib_") for c in self._columns)
        if needs_vibration:
            features |= vibration_features(
                x, sample_rate, self.vibration_settings, self._bearing, self.vibration_settings.shaft_hz
            )
        row = np.array([[features.get(c, np.nan) for c in self._columns]], dtype=np.float64)
        return float(self._leaf.score(row)[0])


@contextlib.contextmanager
def _torch_single_thread() -> Iterator[None]:
    """Run torch on one thread inside the block (a clip is small; threads only add contention)."""
    previous = torch.get_num_threads()
    if previous != 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if previous != 1:
            torch.set_num_threads(previous)
