"""Every detector through the same checks: fit on normal data, separate easy anomalies, threshold, persist."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from vibrasense.errors import ModelError
from vibrasense.models import get_detector, list_detectors, load_detector

N_MELS = 16
TINY_AE = {
    "z_dim": 4,
    "max_epochs": 4,
    "batch_size": 32,
    "learning_rate": 3e-3,
    "accelerator": "cpu",
}
HYPER = {
    "cnn-ae": TINY_AE | {"patch_frames": 16},
    "dense-ae": TINY_AE | {"train_hop_frames": 2},
}


def tabular_task(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """200 normal rows of 6 informative columns (plus a constant and an all-NaN one); anomalies shifted."""
    rng = np.random.default_rng(seed)

    def table(n: int, shift: float) -> pd.DataFrame:
        values = rng.standard_normal((n, 6)) + shift
        frame = pd.DataFrame(values, columns=[f"f{i}" for i in range(6)])
        frame["constant"] = 1.0
        frame["empty"] = np.nan
        frame["recording_id"] = [f"r{i}" for i in range(n)]
        return frame

    test = pd.concat([table(40, 0.0), table(40, 3.0)], ignore_index=True)
    return table(200, 0.0), test, np.r_[np.zeros(40), np.ones(40)]


def spectrogram(rng: np.random.Generator, anomalous: bool, frames: int = 48) -> np.ndarray:
    """A stationary machine spectrum with noise; an anomaly adds a loud tone in two bands."""
    base = np.linspace(-20, -60, N_MELS, dtype=np.float32)
    spec = base + rng.normal(0, 1.0, (frames, N_MELS)).astype(np.float32)
    if anomalous:
        spec[:, 5:7] += 25.0
    return spec


def logmel_task(seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    train = [spectrogram(rng, False) for _ in range(16)]
    test = [spectrogram(rng, False) for _ in range(10)] + [spectrogram(rng, True) for _ in range(10)]
    return train, test, np.r_[np.zeros(10), np.ones(10)]


@pytest.fixture(scope="module", params=list_detectors())
def fitted(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    name = request.param
    detector = get_detector(name, **HYPER.get(name, {}))
    if detector.input_kind == "logmel":
        train, test, labels = logmel_task()
    else:
        train, test, labels = tabular_task()
    detector.fit(train)
    return detector, train, test, labels, tmp_path_factory.mktemp(name)


def test_registry_lists_every_detector() -> None:
    assert set(list_detectors()) == {
        "auto",
        "cnn-ae",
        "dense-ae",
        "isolation-forest",
        "lof",
        "mahalanobis",
        "one-class-svm",
    }


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(ModelError, match=r"unknown model 'svm'.*isolation-forest"):
        get_detector("svm")


def test_separates_easy_anomalies(fitted) -> None:
    detector, _, test, labels, _ = fitted
    scores = detector.score(test)
    assert scores.shape == (len(labels),)
    assert roc_auc_score(labels, scores) > 0.9


def test_threshold_is_the_percentile_of_training_scores(fitted) -> None:
    detector, train, *_ = fitted
    training_scores = detector.score(train)
    assert detector.threshold_ == pytest.approx(np.percentile(training_scores, 95), rel=1e-6)
    assert np.mean(training_scores > detector.threshold_) == pytest.approx(0.05, abs=0.05)


def test_predict_is_score_above_threshold(fitted) -> None:
    detector, _, test, *_ = fitted
    predictions = detector.predict(test)
    assert set(np.unique(predictions)) <= {0, 1}
    np.testing.assert_array_equal(predictions, (detector.score(test) > detector.threshold_).astype(int))


def test_save_load_round_trip_gives_identical_scores(fitted) -> None:
    detector, _, test, _, folder = fitted
    detector.save(folder)
    loaded = load_detector(folder)
    assert type(loaded) is type(detector)
    assert loaded.threshold_ == detector.threshold_
    np.testing.assert_allclose(loaded.score(test), detector.score(test), rtol=1e-6)


@pytest.mark.parametrize("name", list_detectors())
def test_unfitted_detector_refuses_to_score(name: str) -> None:
    train, *_ = logmel_task() if get_detector(name).input_kind == "logmel" else tabular_task()
    with pytest.raises(ModelError, match="not fitted"):
        get_detector(name).score(train)


def test_tabular_detectors_drop_empty_and_constant_columns(fitted) -> None:
    detector, *_ = fitted
    if detector.input_kind != "tabular" or detector.name == "auto":
        pytest.skip("tabular detectors only")
    assert detector.dropped_columns_ == {"constant": "constant", "empty": "all NaN"}
    assert detector.kept_columns_ == [f"f{i}" for i in range(6)]


@pytest.mark.parametrize("name", ["isolation-forest", "mahalanobis"])
def test_only_constant_columns_is_an_error_naming_them(name: str) -> None:
    frame = pd.DataFrame({"a": [1.0] * 10, "b": [np.nan] * 10})
    with pytest.raises(ModelError, match=r"a \(constant\), b \(all NaN\)"):
        get_detector(name).fit(frame)


def test_no_training_data_is_an_error() -> None:
    with pytest.raises(ModelError, match="no normal training recordings"):
        get_detector("lof").fit(np.zeros((0, 3)))


def test_gamma_threshold_lies_near_the_percentile() -> None:
    train, *_ = tabular_task()
    percentile = get_detector("mahalanobis").fit(train).threshold_
    gamma = get_detector("mahalanobis", threshold_method="gamma").fit(train).threshold_
    assert gamma == pytest.approx(percentile, rel=0.25)
    assert gamma != percentile


def test_auto_records_why_it_chose() -> None:
    train, test, labels = tabular_task()
    auto = get_detector("auto").fit(train)
    report = auto.selection_report_
    assert report["criterion"].startswith("normal-only")
    assert report["selected"] in report["candidates"]
    assert all(0 <= r["auc"] <= 1 for r in report["candidates"].values())
    labelled = get_detector("auto").fit(train, X_val=test, y_val=labels)
    assert labelled.selection_report_["criterion"].startswith("validation AUC")
    best = labelled.selection_report_["selected"]
    assert labelled.selection_report_["candidates"][best]["auc"] > 0.9


def test_autoencoder_history_and_window_shapes(fitted, tmp_path: Path) -> None:
    detector, *_ = fitted
    if detector.input_kind != "logmel":
        pytest.skip("autoencoders only")
    assert 1 <= len(detector.history_) <= TINY_AE["max_epochs"]
    assert {"train_loss", "val_loss"} <= set(detector.history_[0])
    short = np.zeros((3, N_MELS), dtype=np.float32)  # shorter than a window: padded, still scored
    assert np.isfinite(detector.score([short])[0])
    with pytest.raises(ModelError, match="expected a log-mel spectrogram"):
        detector.score([np.zeros((40, N_MELS + 1), dtype=np.float32)])
