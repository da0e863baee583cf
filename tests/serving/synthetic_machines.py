"""Synthetic machine sounds and a small real detector fitted on them, shared by the serving tests.

The detector scores log band energies of a recording by their mean absolute z-score against healthy
training clips; its threshold is learned from those clips. Serving only needs the ``Scorer`` protocol,
so this keeps the app tests independent of the training stage (``test_champion.py`` covers that).
"""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf

from vibrasense.inference import Verdict
from vibrasense.signals.records import SignalContext

RATE = 16_000
PROGNOSIS_MACHINE = "synthetic_bearing_1"
"""The bearing of the ``prognosis_csv`` fixture (a synthetic run to failure)."""


def healthy_clip(seed: int, seconds: float = 1.0, rate: int = RATE) -> np.ndarray:
    """A motor hum at 120 Hz and its harmonics, with a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    hum = 0.4 * np.sin(2 * np.pi * 120 * t) + 0.1 * np.sin(2 * np.pi * 240 * t + rng.uniform(0, 6))
    return (hum + 0.02 * rng.standard_normal(t.size)).astype(np.float32)


def faulty_clip(seed: int, seconds: float = 1.0, rate: int = RATE) -> np.ndarray:
    """The same hum with a strong 3.2 kHz whine and periodic impacts: a failing bearing."""
    clip = healthy_clip(seed, seconds, rate).astype(np.float64)
    t = np.arange(clip.size) / rate
    clip += 0.3 * np.sin(2 * np.pi * 3200 * t)
    clip[:: rate // 50] += 0.9
    return clip.astype(np.float32)


def wav_bytes(samples: np.ndarray, rate: int = RATE, subtype: str = "PCM_16") -> bytes:
    """Samples as a WAV file in memory."""
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format="WAV", subtype=subtype)
    return buffer.getvalue()


class BandEnergyScorer:
    """Mean |z| of log energies in 16 frequency bands against healthy clips; threshold = max healthy * 1.5."""

    def __init__(self, name: str = "band-energy-test", version: str = "1", bands: int = 16) -> None:
        self.name = name
        self.version = version
        self.bands = bands

    def _features(self, samples: np.ndarray, sample_rate: float) -> np.ndarray:
        power = np.abs(np.fft.rfft(samples.astype(np.float64))) ** 2
        freqs = np.fft.rfftfreq(samples.size, 1 / sample_rate)
        edges = np.linspace(0, min(sample_rate / 2, 8000), self.bands + 1)
        index = np.clip(np.searchsorted(edges, freqs, side="right") - 1, 0, self.bands - 1)
        energy = np.bincount(index, weights=power, minlength=self.bands) / max(samples.size, 1)
        return np.log10(energy + 1e-12)

    def fit(self, clips: list[np.ndarray], sample_rate: float) -> BandEnergyScorer:
        features = np.stack([self._features(clip, sample_rate) for clip in clips])
        self.mean_ = features.mean(axis=0)
        self.std_ = features.std(axis=0) + 1e-3
        train = [self._raw(clip, sample_rate) for clip in clips]
        self.threshold_ = float(max(train) * 1.5)
        return self

    def _raw(self, samples: np.ndarray, sample_rate: float) -> float:
        return float(np.mean(np.abs((self._features(samples, sample_rate) - self.mean_) / self.std_)))

    def score(
        self,
        samples: np.ndarray,
        sample_rate: float,
        context: SignalContext | None = None,
        *,
        machine_id: str | None = None,
    ) -> Verdict:
        value = self._raw(samples, sample_rate)
        return Verdict(value, self.threshold_, value > self.threshold_)


def fitted_scorer(version: str = "1") -> BandEnergyScorer:
    """A scorer fitted on eight healthy clips."""
    return BandEnergyScorer(version=version).fit([healthy_clip(seed) for seed in range(8)], RATE)
