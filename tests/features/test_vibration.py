"""Vibration features: statistics, band energies, and envelope lines at the bearing defect frequencies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vibrasense.config import VibrationSettings, load_settings
from vibrasense.features.featurize import resolve_bearing
from vibrasense.features.names import vibration_feature_names
from vibrasense.features.spec import FeatureSpec
from vibrasense.features.vibration import envelope_spectrum, vibration_features
from vibrasense.signals.bearings import PRESETS, defect_frequencies, layout_context
from vibrasense.signals.layouts import discover
from vibrasense.signals.readers import read_signal
from vibrasense.signals.synthetic import bearing_vibration

SETTINGS = VibrationSettings()
SPEC = FeatureSpec.from_settings(load_settings(None))
CWRU = PRESETS["cwru-6205-de"]
SHAFT = 1797 / 60


def test_statistics_of_a_sine() -> None:
    x = np.sin(2 * np.pi * 50 * np.arange(12_000) / 12_000)
    features = vibration_features(x, 12_000, SETTINGS)
    assert list(features) == list(vibration_feature_names(SETTINGS))
    assert features["vib_rms"] == pytest.approx(1 / np.sqrt(2), rel=1e-3)
    assert features["vib_crest_factor"] == pytest.approx(np.sqrt(2), rel=1e-3)
    assert features["vib_kurtosis"] == pytest.approx(-1.5, abs=0.01)  # Fisher (excess) kurtosis of a sine
    assert np.isnan(features["vib_env_bpfo"])  # no bearing known: not guessed


@pytest.mark.parametrize(("estimator", "tolerance"), [("periodogram", 1e-6), ("welch", 2e-3)])
def test_band_energy_lands_in_its_band_and_sums_to_the_variance(estimator: str, tolerance: float) -> None:
    rate = 12_000
    x = np.sin(2 * np.pi * 1200 * np.arange(rate) / rate) + 0.5 * np.sin(2 * np.pi * 4500 * np.arange(rate) / rate)
    settings = VibrationSettings(band_edges_hz=[0, 1000, 1500, 4000, 5000, 6001], band_estimator=estimator)
    energies = {k: v for k, v in vibration_features(x, rate, settings).items() if k.startswith("vib_band_")}
    assert energies["vib_band_1000_1500hz"] == pytest.approx(0.5, rel=tolerance)
    assert energies["vib_band_4000_5000hz"] == pytest.approx(0.125, rel=tolerance)
    assert sum(energies.values()) == pytest.approx(np.var(x), rel=tolerance)


@pytest.mark.parametrize(
    ("defect", "line"), [("outer_race", "bpfo"), ("inner_race", "bpfi"), ("rolling_element", "bsf")]
)
def test_envelope_spectrum_of_a_synthetic_fault_shows_its_defect_line(defect: str, line: str) -> None:
    x = bearing_vibration(2.0, 12_000, CWRU, SHAFT, defect, severity=2.0, seed=3)  # type: ignore[arg-type]
    freqs, amplitudes = envelope_spectrum(x, 12_000)
    expected = defect_frequencies(CWRU, SHAFT)[line] * (2 if line == "bsf" else 1)
    near = np.abs(freqs - expected) <= 0.03 * expected
    assert amplitudes[near].max() > 10 * np.median(amplitudes[(freqs > 0) & (freqs < 1000)])
    features = vibration_features(x, 12_000, SETTINGS, CWRU, SHAFT)
    others = [features[f"vib_env_{k}"] for k in ("bpfo", "bpfi", "bsf") if k != line]
    assert features[f"vib_env_{line}"] > 2 * max(others)


@pytest.mark.realdata
def test_cwru_inner_race_file_shows_its_defect(shared_data: Path) -> None:
    refs = {r.recording_id: r for r in discover(shared_data / "cwru")}
    features = {}
    for name in ("cwru_105_0", "cwru_97_Normal_0", "cwru_130@6_0"):
        signal = read_signal(refs[name])
        bearing, shaft = resolve_bearing(SPEC, layout_context(refs[name]))
        features[name] = vibration_features(signal.samples, signal.sample_rate, SETTINGS, bearing, shaft)
    inner, normal, outer = features["cwru_105_0"], features["cwru_97_Normal_0"], features["cwru_130@6_0"]
    assert inner["vib_kurtosis"] > normal["vib_kurtosis"]
    assert inner["vib_env_bpfi"] > 5 * max(inner["vib_env_bpfo"], inner["vib_env_bsf"])
    assert outer["vib_env_bpfo"] > 5 * max(outer["vib_env_bpfi"], outer["vib_env_bsf"])
    assert max(normal[f"vib_env_{k}"] for k in ("bpfo", "bpfi", "bsf")) < 5
