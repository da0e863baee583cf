"""Welch band energies: scipy's estimate, the same from the log-mel's frames as from their own, old specs as saved."""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import scipy.signal

from vibrasense.config import load_settings
from vibrasense.features import welch
from vibrasense.features.featurize import featurize
from vibrasense.features.spec import FeatureSpec
from vibrasense.features.vibration import periodogram_band_energies

EDGES = [0, 500, 1000, 1500, 2000, 3000, 4000, 5000, 6000]
SPEC = FeatureSpec.from_settings(load_settings(None))
BANDS = [c for c in SPEC.columns if c.startswith("vib_band_")]


def _signal(seconds: float, rate: int, seed: int = 0) -> np.ndarray:
    """A DC offset, two tones and noise: the offset must not leak into the lowest band."""
    t = np.arange(int(seconds * rate)) / rate
    noise = np.random.default_rng(seed).standard_normal(len(t))
    return (0.8 + np.sin(2 * np.pi * 1200 * t) + 0.5 * np.sin(2 * np.pi * 4500 * t) + 0.2 * noise).astype(np.float32)


def _scipy_bands(x: np.ndarray, rate: int, frame: int) -> np.ndarray:
    frame = min(frame, len(x))
    freqs, density = scipy.signal.welch(
        x.astype(np.float64), rate, "hann", nperseg=frame, noverlap=frame // 2, detrend="constant"
    )
    width = freqs[1] - freqs[0]
    return np.array([density[(freqs >= a) & (freqs < b)].sum() * width for a, b in itertools.pairwise(EDGES)])


@pytest.mark.parametrize(("seconds", "rate"), [(10.0, 16_000), (1.0, 12_000), (0.1, 25_600), (0.04, 16_000)])
def test_band_energies_are_scipys_welch_estimate(seconds: float, rate: int) -> None:
    x = _signal(seconds, rate)
    energies = welch.band_energies(x, rate, EDGES, 1024)
    assert list(energies) == BANDS
    np.testing.assert_allclose(list(energies.values()), _scipy_bands(x, rate, 1024), rtol=1e-5, atol=1e-12)
    if seconds >= 1:  # the 0.8 offset (0.64) is removed segment by segment: what is left is the noise's share
        assert energies["vib_band_0_500hz"] == pytest.approx(0.2**2 * 500 / (rate / 2), rel=0.15)


def test_a_single_sample_has_no_band_energy() -> None:
    assert welch.band_energies(np.array([0.5], dtype=np.float32), 16_000, EDGES, 1024) == dict.fromkeys(BANDS, 0.0)


@pytest.mark.parametrize(("seconds", "rate"), [(10.0, 16_000), (2.5, 16_000), (0.05, 16_000), (1.0, 12_000)])
def test_bands_from_the_logmel_frames_equal_their_own(seconds: float, rate: int) -> None:
    """With every column (log-mel computed) and with the bands alone (no log-mel): the same numbers, at the audio
    rate (shared frames) and at another rate (own frames at the recording's rate)."""
    x = _signal(seconds, rate, seed=1)
    every = featurize(x, rate, SPEC).values
    alone = featurize(x, rate, SPEC, columns=BANDS, logmel=False).values
    own = welch.band_energies(x, rate, EDGES, 1024)
    np.testing.assert_allclose([every[c] for c in BANDS], [own[c] for c in BANDS], rtol=1e-7)
    assert alone == own


def test_a_spec_saved_before_the_estimators_keeps_its_periodogram_and_its_hash(tmp_path: Path) -> None:
    saved = SPEC.model_dump(mode="json")
    del saved["segment"], saved["vibration"]["band_estimator"], saved["vibration"]["band_frame"]
    before = hashlib.sha256(json.dumps(saved, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]
    (tmp_path / "feature_spec.json").write_text(json.dumps({"hash": before, **saved}))
    old = FeatureSpec.load(tmp_path)
    assert old.vibration.band_estimator == "periodogram"
    assert old.hash == before != SPEC.hash
    assert SPEC.differences(old) == ["features.vibration.band_estimator: 'welch' vs 'periodogram'"]
    x = _signal(10.0, 16_000, seed=2)
    centred = x.astype(np.float64) - x.astype(np.float64).mean()
    assert featurize(x, 16_000, old, columns=BANDS).values == periodogram_band_energies(centred, 16_000, EDGES)
    SPEC.save(tmp_path)
    assert FeatureSpec.load(tmp_path).vibration.band_estimator == "welch"
