"""Explanations at the detector level: Mahalanobis splits its score exactly over the features, the other tabular
detectors point at the feature out of its normal range, the autoencoders at the frames and bands of an injected
tone, and all of it survives save and load."""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest

from vibrasense.errors import ModelError
from vibrasense.models import get_detector, load_detector
from vibrasense.models.explain import IQR_TO_SIGMA
from vibrasense.models.tabular import PIPELINE_FILE

COLUMNS = [f"f{i}" for i in range(6)]
TINY_AE = {"z_dim": 4, "max_epochs": 6, "batch_size": 32, "learning_rate": 3e-3, "accelerator": "cpu"}
N_MELS = 16


def normal_table(seed: int = 0, n: int = 200) -> pd.DataFrame:
    """Six correlated features of different scales and offsets, plus a constant and an empty column."""
    rng = np.random.default_rng(seed)
    values = rng.standard_normal((n, 6)) * [1.0, 2.0, 0.5, 3.0, 1.0, 10.0] + [0.0, 5.0, -2.0, 100.0, 1.0, 50.0]
    values[:, 1] += 0.8 * values[:, 0]
    frame = pd.DataFrame(values, columns=COLUMNS)
    frame["constant"] = 1.0
    frame["empty"] = np.nan
    return frame


def perturbed(table: pd.DataFrame, column: str, sigmas: float) -> pd.DataFrame:
    """The first row of ``table`` with ``column`` moved by ``sigmas`` of its spread."""
    row = table.iloc[[0]].copy()
    row[column] += sigmas * table[column].std()
    return row


@pytest.mark.parametrize("covariance", ["ledoit-wolf", "min-cov-det"])
def test_mahalanobis_contributions_sum_to_the_score_and_name_the_perturbed_feature(covariance: str) -> None:
    train = normal_table()
    detector = get_detector("mahalanobis", covariance=covariance).fit(train)
    rows = pd.concat([normal_table(seed=1, n=20), perturbed(train, "f3", 8.0)], ignore_index=True)
    contributions = detector.feature_contributions(rows)
    assert contributions.shape == (21, 6)  # the constant and empty columns are not features of the model
    np.testing.assert_allclose(contributions.sum(axis=1), detector.score(rows), rtol=1e-9)
    assert detector.kept_columns_[int(np.argmax(contributions[-1]))] == "f3"
    assert contributions[-1].max() / contributions[-1].sum() > 0.8


@pytest.mark.parametrize("name", ["isolation-forest", "one-class-svm", "lof"])
def test_other_detectors_attribute_by_robust_z_and_name_the_perturbed_feature(name: str) -> None:
    train = normal_table()
    detector = get_detector(name).fit(train)
    assert detector.attribution == "robust-z"
    row = perturbed(train, "f5", -6.0)
    contributions = detector.feature_contributions(row)[0]
    assert detector.kept_columns_[int(np.argmax(contributions))] == "f5"
    values = train[COLUMNS].to_numpy()
    q25, median, q75 = np.percentile(values, [25, 50, 75], axis=0)
    expected = ((row[COLUMNS].to_numpy()[0] - median) / ((q75 - q25) / IQR_TO_SIGMA)) ** 2
    np.testing.assert_allclose(contributions, expected, rtol=1e-12)


def test_normal_ranges_are_the_5th_to_95th_percentile_of_the_normal_data_and_a_missing_value_counts_zero() -> None:
    train = normal_table()
    train.loc[3, "f2"] = np.nan  # one missing value: percentiles of the others
    detector = get_detector("isolation-forest").fit(train)
    ranges = detector.normal_ranges_
    np.testing.assert_allclose(ranges.low, np.nanpercentile(train[COLUMNS], 5, axis=0))
    np.testing.assert_allclose(ranges.high, np.nanpercentile(train[COLUMNS], 95, axis=0))
    row = perturbed(train, "f0", 5.0)
    row["f2"] = np.nan
    contributions = detector.feature_contributions(row)[0]
    assert contributions[COLUMNS.index("f2")] == 0.0 and np.isfinite(contributions).all()


@pytest.mark.parametrize("name", ["mahalanobis", "lof", "auto"])
def test_explanations_survive_save_and_load(name: str, tmp_path: Path) -> None:
    train = normal_table()
    detector = get_detector(name).fit(train)
    rows = pd.concat([normal_table(seed=2, n=5), perturbed(train, "f1", 7.0)], ignore_index=True)
    tabular = detector.best_ if name == "auto" else detector
    before = tabular.feature_contributions(rows)
    loaded = load_detector(detector.save(tmp_path / name))
    loaded_tabular = loaded.best_ if name == "auto" else loaded
    np.testing.assert_array_equal(loaded_tabular.feature_contributions(rows), before)
    for field in ("median", "scale", "low", "high"):
        np.testing.assert_array_equal(
            getattr(loaded_tabular.normal_ranges_, field), getattr(tabular.normal_ranges_, field)
        )


def test_a_detector_saved_before_normal_ranges_loads_scores_and_says_it_cannot_explain(tmp_path: Path) -> None:
    train = normal_table()
    folder = get_detector("isolation-forest").fit(train).save(tmp_path / "old")
    state = joblib.load(folder / PIPELINE_FILE)
    del state["normal_ranges"]
    joblib.dump(state, folder / PIPELINE_FILE)
    old = load_detector(folder)
    assert old.normal_ranges_ is None and np.isfinite(old.score(train.iloc[:3])).all()
    with pytest.raises(ModelError, match="retrain it to explain"):
        old.feature_contributions(train.iloc[:3])


def spectrogram(rng: np.random.Generator, frames: int = 64) -> np.ndarray:
    """A stationary machine spectrum (frames, bands) with noise."""
    return np.linspace(-20, -60, N_MELS, dtype=np.float32) + rng.normal(0, 1.0, (frames, N_MELS)).astype(np.float32)


@pytest.fixture(scope="module", params=[("cnn-ae", {"patch_frames": 16}), ("dense-ae", {"train_hop_frames": 2})])
def autoencoder(request: pytest.FixtureRequest):
    name, params = request.param
    rng = np.random.default_rng(0)
    return get_detector(name, **TINY_AE, **params).fit([spectrogram(rng) for _ in range(16)])


def test_the_error_map_points_at_the_frames_and_bands_of_an_injected_tone(autoencoder, tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    clip = spectrogram(rng)
    clip[20:30, 9:11] += 25.0
    errors = autoencoder.error_map(clip)
    assert errors.shape == clip.shape and (errors >= 0).all()
    by_band, by_frame = errors.mean(axis=0), errors.mean(axis=1)
    assert set(np.argsort(by_band)[-2:]) == {9, 10}
    assert 20 <= int(np.argmax(by_frame)) < 30
    assert by_frame[20:30].min() > 3 * np.median(by_frame)
    loaded = load_detector(autoencoder.save(tmp_path / autoencoder.name))
    np.testing.assert_allclose(loaded.error_map(clip), errors, rtol=1e-6)


def test_the_error_map_of_a_clip_shorter_than_a_window_covers_its_frames_only(autoencoder) -> None:
    short = spectrogram(np.random.default_rng(6), frames=3)
    errors = autoencoder.error_map(short)
    assert errors.shape == (3, N_MELS) and np.isfinite(errors).all()
    with pytest.raises(ModelError, match="expected a log-mel spectrogram"):
        autoencoder.error_map(short[:, :5])
