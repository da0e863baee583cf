"""Thresholds and alarm levels come from scores of normal recordings by models that did not see them: held out,
cross-validated (K-fold, or leave-one-out for few recordings), or (very few recordings) the training scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vibrasense.models import get_detector
from vibrasense.models.calibration import FOLDS, MIN_LEAVE_ONE_OUT, MIN_PER_FOLD
from vibrasense.models.threshold import fit_threshold


def normal_rows(n: int, columns: int = 20, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(size=(n, columns)), columns=[f"f{k}" for k in range(columns)])


def test_a_tabular_detector_is_cross_validated_and_its_threshold_set_from_the_unseen_scores() -> None:
    X = normal_rows(40)
    detector = get_detector("mahalanobis").fit(X)
    normal = detector.calibration_
    assert normal.source == "cross-validated" and normal.positions.tolist() == list(range(40))
    in_sample = detector.score(X)
    # a 20-feature covariance fitted on 40 rows scores its own rows lower than unseen ones (measured: median 1.19x,
    # 99th percentile 1.24x)
    assert np.median(normal.scores) > 1.1 * np.median(in_sample)
    assert np.quantile(normal.scores, 0.99) > 1.1 * np.quantile(in_sample, 0.99)
    assert detector.threshold_ == fit_threshold(normal.scores) > 1.1 * np.percentile(in_sample, 95)
    again = get_detector("mahalanobis").fit(X).calibration_
    assert normal.scores.tolist() == again.scores.tolist()  # seeded folds


def test_new_normal_rows_cross_the_cross_validated_threshold_about_as_often_as_its_percentile_says() -> None:
    train, new = normal_rows(30, columns=10), normal_rows(4_000, columns=10, seed=1)
    for name in ("mahalanobis", "one-class-svm"):
        detector = get_detector(name).fit(train)
        false_alarms = float((detector.score(new) > detector.threshold_).mean())
        # 95th percentile: 5 % expected (measured 2.7 % and 5.9 %). Set from the training rows' own scores
        # instead, Mahalanobis called 10.7 % of new normal rows anomalous and the one-class SVM 66.7 %
        in_sample = float((detector.score(new) > fit_threshold(detector.training_scores_)).mean())
        assert 0.0 < false_alarms < 0.12, (name, false_alarms)
        assert in_sample > 2 * false_alarms, (name, in_sample)


def test_few_recordings_are_left_out_one_at_a_time_and_very_few_give_the_training_scores() -> None:
    X = normal_rows(FOLDS * MIN_PER_FOLD - 1, columns=3)
    detector = get_detector("mahalanobis").fit(X)
    assert detector.calibration_.source == "cross-validated"
    for k in (0, 7):
        alone = get_detector("mahalanobis").fit(X.drop(index=k))
        assert detector.calibration_.scores[k] == pytest.approx(alone.score(X.iloc[[k]])[0])
    tiny = normal_rows(MIN_LEAVE_ONE_OUT - 1, columns=2)
    detector = get_detector("mahalanobis").fit(tiny)
    assert detector.calibration_.source == "in sample"
    np.testing.assert_allclose(detector.calibration_.scores, detector.score(tiny))


def test_an_autoencoder_gives_the_scores_of_its_validation_recordings() -> None:
    rng = np.random.default_rng(0)
    base = np.linspace(-20, -60, 16, dtype=np.float32)
    X = [base + rng.normal(0, 3, (40, 16)).astype(np.float32) for _ in range(10)]
    detector = get_detector("dense-ae", z_dim=4, max_epochs=1, batch_size=32, accelerator="cpu").fit(X)
    normal = detector.calibration_
    held_out = detector.calibration_ids(X)
    assert normal.source == "held out" and normal.positions.tolist() == held_out and len(held_out) == 2
    np.testing.assert_allclose(normal.scores, detector.score([X[k] for k in held_out]))


def test_auto_keeps_the_calibration_of_the_detector_it_selected() -> None:
    X = normal_rows(30, columns=6)
    detector = get_detector("auto").fit(X)
    assert detector.calibration_ is detector.best_.calibration_
    assert detector.threshold_ == detector.best_.threshold_
