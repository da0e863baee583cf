"""Explained verdicts of model folders: a tabular model's top features, an autoencoder's worst bands and time span
for a tone injected into a synthetic clip, and which scorers a service asks to explain."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.signal

from vibrasense.config import load_settings
from vibrasense.features.featurize import RawRecording, featurize, featurize_batch
from vibrasense.features.spec import FeatureSpec
from vibrasense.inference import ModelInputs, ModelScorer, Verdict, explained_verdict
from vibrasense.inference.explanation import MAP_BANDS, MAP_TIMES, TOP_FEATURES, mel_band_ranges
from vibrasense.models import get_detector
from vibrasense.signals.readers import read_path
from vibrasense.signals.records import SignalContext
from vibrasense.signals.synthetic import bearing_vibration, machine_sound

RATE = 12_000
AUDIO_RATE = 16_000
CWRU = SignalContext("cwru-6205-de", 1797 / 60)


def save_model(folder: Path, detector, spec: FeatureSpec, inputs: ModelInputs) -> ModelScorer:
    detector.save(folder)
    spec.save(folder)
    inputs.save(folder)
    return ModelScorer.from_directory(folder, "explained", "1")


@pytest.fixture(scope="module")
def tabular_scorer(tmp_path_factory: pytest.TempPathFactory) -> ModelScorer:
    """Mahalanobis on every feature of healthy synthetic bearing clips, read back from its folder."""
    spec = FeatureSpec.from_settings(load_settings(None))
    clips = [bearing_vibration(1.0, RATE, seed=seed) for seed in range(40)]
    rows = pd.DataFrame([f.values for f in featurize_batch([RawRecording(c, RATE, CWRU) for c in clips], spec)])
    detector = get_detector("mahalanobis").fit(rows)
    inputs = ModelInputs("tabular", tuple(detector.kept_columns_), CWRU)
    return save_model(tmp_path_factory.mktemp("tabular"), detector, spec, inputs)


@pytest.fixture(scope="module")
def autoencoder_scorer(tmp_path_factory: pytest.TempPathFactory) -> ModelScorer:
    """A small CNN autoencoder on 32-band log-mels of a synthetic machine's normal 3 s clips."""
    settings = load_settings(None, features={"logmel": {"n_mels": 32}})
    spec = FeatureSpec.from_settings(settings)
    logmels = [featurize(machine_sound(3.0, AUDIO_RATE, clip=i), AUDIO_RATE, spec).logmel for i in range(12)]
    detector = get_detector(
        "cnn-ae", z_dim=4, patch_frames=16, max_epochs=6, batch_size=32, learning_rate=3e-3, accelerator="cpu"
    ).fit(logmels)
    return save_model(tmp_path_factory.mktemp("cnn-ae"), detector, spec, ModelInputs("logmel"))


def with_tone(clip: np.ndarray, hz: float, start_s: float, end_s: float) -> np.ndarray:
    t = np.arange(clip.size) / AUDIO_RATE
    on = (t >= start_s) & (t < end_s)
    louder = clip.astype(np.float64)
    louder[on] += 0.3 * np.sin(2 * np.pi * hz * t[on])
    return louder.astype(np.float32)


def test_a_tabular_verdict_names_its_top_features_and_they_sum_to_the_score(tabular_scorer: ModelScorer) -> None:
    faulty = bearing_vibration(1.0, RATE, defect="inner_race", seed=99)
    plain = tabular_scorer.score(faulty, RATE)
    verdict = tabular_scorer.score(faulty, RATE, explain=True)
    assert plain.explanation is None and verdict[:3] == plain[:3] and verdict.is_anomaly
    explanation = verdict.explanation
    assert explanation.kind == "features" and explanation.method == "mahalanobis-decomposition"
    assert explanation.total == pytest.approx(verdict.score, rel=1e-9)
    listed = explanation.contributions
    assert len(listed) == TOP_FEATURES
    assert [c.contribution for c in listed] == sorted((c.contribution for c in listed), reverse=True)
    assert {c.feature for c in listed} <= set(tabular_scorer.inputs.columns)
    top = listed[0]
    assert not top.normal_low <= top.value <= top.normal_high  # the main driver is out of its normal range
    assert top.share == pytest.approx(top.contribution / verdict.score)
    assert explanation.summary.startswith(f"{top.feature} = ")


def test_an_autoencoder_verdict_points_at_the_band_and_time_of_an_injected_tone(
    autoencoder_scorer: ModelScorer,
) -> None:
    clip = with_tone(machine_sound(3.0, AUDIO_RATE, clip=99), 3000.0, 1.0, 1.5)
    verdict = autoencoder_scorer.score(clip, AUDIO_RATE, explain=True)
    assert verdict.score == autoencoder_scorer.score(clip, AUDIO_RATE).score and verdict.is_anomaly
    explanation = verdict.explanation
    assert explanation.kind == "spectrogram" and explanation.method == "reconstruction-error"
    top = explanation.bands[0]
    assert top.low_hz <= 3000.0 <= top.high_hz and top.share > 0.2
    span = explanation.time_span
    assert 0.85 <= span.start_s <= 1.05 and 1.45 <= span.end_s <= 1.65 and span.share > 0.5
    grid = explanation.error_map
    frames = autoencoder_scorer.model_input(clip, AUDIO_RATE)[0].shape[0]
    assert len(grid.error) == len(grid.logmel_db) == len(grid.band_low_hz) == len(grid.band_high_hz) == 32
    assert {len(row) for row in grid.error} == {len(row) for row in grid.logmel_db} == {min(frames, MAP_TIMES)}
    assert len(grid.time_edges_s) == MAP_TIMES + 1 and grid.time_edges_s[-1] == pytest.approx(3.0, abs=0.05)
    assert np.all(np.diff(grid.band_low_hz) > 0) and np.all(np.diff(grid.time_edges_s) > 0)
    worst_row, worst_column = np.unravel_index(np.argmax(grid.error), (32, MAP_TIMES))
    assert grid.band_low_hz[worst_row] <= 3000.0 <= grid.band_high_hz[worst_row]
    assert grid.time_edges_s[worst_column] < 1.5 and grid.time_edges_s[worst_column + 1] > 1.0


def test_a_short_clip_maps_at_most_one_column_per_frame(autoencoder_scorer: ModelScorer) -> None:
    clip = machine_sound(0.5, AUDIO_RATE, clip=3)
    grid = autoencoder_scorer.score(clip, AUDIO_RATE, explain=True).explanation.error_map
    frames = autoencoder_scorer.model_input(clip, AUDIO_RATE)[0].shape[0]
    assert frames < MAP_TIMES and {len(row) for row in grid.error} == {frames} and len(grid.error) <= MAP_BANDS


def test_mel_band_ranges_lie_within_the_slaney_mel_band_edges() -> None:
    librosa = pytest.importorskip("librosa")
    logmel = load_settings(None).features.logmel
    low, high = mel_band_ranges(AUDIO_RATE, logmel)
    edges = librosa.mel_frequencies(logmel.n_mels + 2, fmin=logmel.fmin, fmax=AUDIO_RATE / 2)
    bin_hz = AUDIO_RATE / logmel.n_fft
    assert np.all(low >= edges[:-2] - 1e-6) and np.all(low <= edges[:-2] + bin_hz)
    assert np.all(high <= edges[2:] + 1e-6) and np.all(high >= edges[2:] - bin_hz)


class PlainScorer:
    """A scorer without explanations (as the serving tests' scorers are)."""

    name, version = "plain", "1"

    def score(
        self, samples: np.ndarray, sample_rate: float, context: object = None, *, machine_id: str | None = None
    ) -> Verdict:
        return Verdict(1.0, 2.0, False)


def test_a_service_explains_tabular_scores_always_autoencoder_scores_when_asked(
    tabular_scorer: ModelScorer, autoencoder_scorer: ModelScorer
) -> None:
    vibration = bearing_vibration(1.0, RATE, seed=1)
    sound = machine_sound(1.0, AUDIO_RATE, clip=1)
    assert tabular_scorer.explains_cheaply and not autoencoder_scorer.explains_cheaply
    assert explained_verdict(tabular_scorer, vibration, RATE, None, None, explain=False).explanation is not None
    assert explained_verdict(autoencoder_scorer, sound, AUDIO_RATE, None, None, explain=False).explanation is None
    assert explained_verdict(autoencoder_scorer, sound, AUDIO_RATE, None, None, explain=True).explanation is not None
    assert explained_verdict(PlainScorer(), sound, AUDIO_RATE, None, None, explain=True) == Verdict(1.0, 2.0, False)


@pytest.mark.realdata
def test_real_cwru_faults_are_explained_by_the_bearing_resonance_band(shared_data: Path, tmp_path: Path) -> None:
    """Mahalanobis on 0.5 s windows of the healthy CWRU drive end (48 kHz decimated to the 12 kHz of the faults).

    Every seeded fault (outer race, inner race, ball; 7 mils) is explained first by the energy of a band in
    2-4 kHz, where CWRU's drive-end faults excite the structure's resonance, far above its normal range.
    """
    spec = FeatureSpec.from_settings(load_settings(None))
    columns = spec.vibration_columns
    normal = read_path(shared_data / "cwru" / "Normal" / "97_Normal_0.mat", "DE")
    samples = scipy.signal.decimate(normal.samples.astype(np.float64), 4).astype(np.float32)
    rate, window = normal.sample_rate / 4, int(0.5 * normal.sample_rate / 4)
    starts = range(0, samples.size - window + 1, window // 5)
    rows = [featurize(samples[s : s + window], rate, spec, CWRU, columns=columns, logmel=False) for s in starts]
    detector = get_detector("mahalanobis").fit(np.array([[row.values[c] for c in columns] for row in rows]))
    scorer = save_model(tmp_path / "cwru", detector, spec, ModelInputs("tabular", columns, CWRU))
    faults = shared_data / "cwru" / "12k_Drive_End_Bearing_Fault_Data"
    for record in ("OR/007/@6/130@6_0.mat", "IR/007/105_0.mat", "B/007/118_0.mat"):
        fault = read_path(faults / record, "DE")
        verdict = scorer.score(fault.samples[:window], fault.sample_rate, CWRU, explain=True)
        top = verdict.explanation.contributions[0]
        assert verdict.is_anomaly, record
        assert top.feature in ("vib_band_2000_3000hz", "vib_band_3000_4000hz") and top.share > 0.5, record
        assert top.value > 10 * top.normal_high, record
