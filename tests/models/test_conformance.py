"""Every detector through the same checks: the estimator contract (get_params, set_params, clone), settable
from the configuration, fit on normal data, separate easy anomalies, threshold, persist."""

from __future__ import annotations

import copy
import inspect
import json
import subprocess
import sys
import typing
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import roc_auc_score
from sklearn.utils.validation import check_is_fitted

from vibrasense.config import load_settings
from vibrasense.errors import ModelError
from vibrasense.models import detector_class, get_detector, list_detectors, load_detector
from vibrasense.models.autoencoder import AutoencoderDetector, _split_validation
from vibrasense.models.base import Detector, parse_param
from vibrasense.models.calibration import calibration_splits
from vibrasense.training.train import build_detector

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


class Fitted(NamedTuple):
    detector: Detector
    train: Any
    test: Any
    labels: np.ndarray
    folder: Path
    params_before_fit: dict[str, Any]


@pytest.fixture(scope="module", params=list_detectors())
def fitted(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Fitted:
    name = request.param
    detector = get_detector(name, **HYPER.get(name, {}))
    if detector.input_kind == "logmel":
        train, test, labels = logmel_task()
    else:
        train, test, labels = tabular_task()
    before = copy.deepcopy(detector.get_params())
    detector.fit(train)
    return Fitted(detector, train, test, labels, tmp_path_factory.mktemp(name), before)


def other_values(detector: Detector) -> dict[str, Any]:
    """A different value of the constructor's type for every hyper-parameter, as YAML would give it.

    Only the types matter here (nothing is fitted); a text keeps its value, as no other is known valid.
    """
    changed: dict[str, Any] = {}
    annotations = typing.get_type_hints(type(detector).__init__)
    for key, value in detector.get_params().items():
        if value is None and int in typing.get_args(annotations[key]):
            changed[key] = 3  # an optional count (None: the detector's own choice)
        elif isinstance(value, bool):
            changed[key] = not value
        elif isinstance(value, int):
            changed[key] = value + 1
        elif isinstance(value, float):
            changed[key] = value / 2
        elif isinstance(value, list | tuple):
            changed[key] = list(value[:2])
        elif value is None or isinstance(value, dict):
            changed[key] = {}
        else:
            changed[key] = value
    return changed


def plain(values: dict[str, Any]) -> dict[str, Any]:
    """As JSON (and YAML) has it: tuples become lists."""
    return json.loads(json.dumps(values))


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


def test_detectors_are_discovered_without_importing_lightning() -> None:
    """Finding every detector imports the package's modules but never the training-only Lightning ones."""
    probe = (
        "import json, sys; from vibrasense.models import list_detectors; names = list_detectors(); "
        "print(json.dumps([names, sorted(m for m in sys.modules if m.split('.')[0] == 'lightning')]))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    names, lightning_modules = json.loads(out)
    assert names == list_detectors()
    assert lightning_modules == []


@pytest.mark.parametrize("name", list_detectors())
def test_get_params_set_params_and_clone_round_trip(name: str) -> None:
    detector = get_detector(name)
    signature = inspect.signature(detector_class(name)).parameters
    assert all(p.kind is p.POSITIONAL_OR_KEYWORD for p in signature.values())  # no **kwargs: every one is listed
    assert detector.get_params() == {key: p.default for key, p in signature.items()}  # stored as given
    changed = other_values(detector)
    assert detector.set_params(**changed) is detector
    assert plain(detector.get_params()) == plain(changed)
    copied = clone(detector)
    assert copied is not detector and type(copied) is type(detector)
    assert plain(copied.get_params()) == plain(changed)
    rebuilt = get_detector(name, **detector.get_params())
    assert plain(rebuilt.get_params()) == plain(changed)


@pytest.mark.parametrize("name", list_detectors())
def test_an_unknown_hyper_parameter_is_refused_naming_the_accepted_ones(name: str) -> None:
    accepted = ", ".join(sorted(get_detector(name).get_params()))
    with pytest.raises(ModelError, match=rf"no hyper-parameter 'bogus'; it accepts {accepted}"):
        get_detector(name, bogus=1)
    with pytest.raises(ModelError, match="no hyper-parameter 'bogus'"):
        get_detector(name).set_params(bogus=1)
    settings = load_settings(None, training={"model": {"name": name, "params": {"bogus": 1}}})
    with pytest.raises(ModelError, match=rf"training\.model\.params: model '{name}' has no hyper-parameter 'bogus'"):
        build_detector(settings)


@pytest.mark.parametrize("name", list_detectors())
def test_a_wrong_type_is_refused_naming_the_parameter(name: str) -> None:
    with pytest.raises(ModelError, match=rf"hyper-parameter threshold_percentile='high' of model '{name}'.*float"):
        get_detector(name, threshold_percentile="high")


@pytest.mark.parametrize("name", list_detectors())
def test_every_hyper_parameter_is_settable_from_the_configuration(name: str) -> None:
    changed = other_values(get_detector(name))
    settings = load_settings(None, training={"model": {"name": name, "params": plain(changed)}})
    assert plain(build_detector(settings).get_params()) == plain(changed)


@pytest.mark.parametrize("name", list_detectors())
def test_every_hyper_parameter_is_settable_from_the_command_line(name: str) -> None:
    cls = detector_class(name)
    for key, value in plain(other_values(get_detector(name))).items():
        text = value if isinstance(value, str) else json.dumps(value)
        assert parse_param(cls, f"{key}={text}") == (key, value)


def test_command_line_values_take_the_constructor_types() -> None:
    forest, svm = detector_class("isolation-forest"), detector_class("one-class-svm")
    assert parse_param(forest, "max_samples=0.5") == ("max_samples", 0.5)
    assert parse_param(forest, "max_samples=256") == ("max_samples", 256)
    assert parse_param(forest, "max_samples=auto") == ("max_samples", "auto")
    assert parse_param(svm, "gamma=scale") == ("gamma", "scale")
    assert parse_param(detector_class("auto"), "candidates=[lof, mahalanobis]") == (
        "candidates",
        ["lof", "mahalanobis"],
    )
    with pytest.raises(ModelError, match=r"n_neighbors='ten' of model 'lof'.*int"):
        parse_param(detector_class("lof"), "n_neighbors=ten")
    with pytest.raises(ModelError, match="expected KEY=VALUE"):
        parse_param(detector_class("lof"), "n_neighbors")


def test_fit_changes_no_hyper_parameter(fitted: Fitted) -> None:
    assert fitted.detector.get_params() == fitted.params_before_fit
    assert "input_kind" not in vars(fitted.detector)


def test_clone_of_a_fitted_detector_is_unfitted_with_equal_params(fitted: Fitted) -> None:
    check_is_fitted(fitted.detector)
    copied = clone(fitted.detector)
    assert not copied.is_fitted
    assert copied.get_params() == fitted.detector.get_params()
    with pytest.raises(NotFittedError):
        check_is_fitted(copied)


def test_separates_easy_anomalies(fitted: Fitted) -> None:
    detector, _, test, labels, *_ = fitted
    scores = detector.score(test)
    assert scores.shape == (len(labels),)
    assert roc_auc_score(labels, scores) > 0.9


def test_threshold_is_the_percentile_of_normal_scores_the_fit_never_saw(fitted: Fitted) -> None:
    detector, train, *_ = fitted
    training_scores = detector.score(train)
    if isinstance(detector, AutoencoderDetector):  # its validation recordings: out of the weights' fit
        _, held_out = _split_validation(len(train), detector.validation_fraction, detector.seed)
        normal = detector.score([train[i] for i in held_out])
        assert detector.threshold_ == pytest.approx(np.percentile(normal, 95), rel=1e-6)
        return
    leaf = getattr(detector, "best_", detector)  # auto: the detector it selected
    unseen = np.empty(len(train))
    for fit_rows, score_rows in calibration_splits(len(train)):  # tabular: refitted without each fold
        unseen[score_rows] = clone(leaf).fit(train.iloc[fit_rows]).score(train.iloc[score_rows])
    assert detector.threshold_ == pytest.approx(np.percentile(unseen, 95), rel=1e-6)
    # a detector scores the rows it was fitted on lower: fewer than the percentile's 5 % lie above
    assert np.mean(training_scores > detector.threshold_) <= 0.05


def test_predict_is_score_above_threshold(fitted: Fitted) -> None:
    detector, _, test, *_ = fitted
    predictions = detector.predict(test)
    assert set(np.unique(predictions)) <= {0, 1}
    np.testing.assert_array_equal(predictions, (detector.score(test) > detector.threshold_).astype(int))


def test_save_load_round_trip_gives_identical_scores(fitted: Fitted) -> None:
    detector, _, test, _, folder, _ = fitted
    detector.save(folder)
    loaded = load_detector(folder)
    assert type(loaded) is type(detector)
    assert loaded.threshold_ == detector.threshold_
    assert plain(loaded.get_params()) == plain(detector.get_params())
    assert loaded.input_kind == detector.input_kind
    np.testing.assert_allclose(loaded.score(test), detector.score(test), rtol=1e-6)


@pytest.mark.parametrize("name", list_detectors())
def test_unfitted_detector_refuses_to_score(name: str) -> None:
    train, *_ = logmel_task() if get_detector(name).input_kind == "logmel" else tabular_task()
    with pytest.raises(ModelError, match="not fitted"):
        get_detector(name).score(train)


def test_tabular_detectors_drop_empty_and_constant_columns(fitted: Fitted) -> None:
    detector, *_ = fitted
    if detector.input_kind != "tabular" or detector.selects_on_validation:
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
    unfitted = get_detector("auto")
    assert unfitted.input_kind == "tabular"
    auto = unfitted.fit(train)
    assert auto.input_kind == auto.best_.input_kind == "tabular"
    report = auto.selection_report_
    assert report["criterion"].startswith("normal-only")
    assert report["selected"] in report["candidates"]
    assert all(0 <= r["auc"] <= 1 for r in report["candidates"].values())
    labelled = get_detector("auto").fit(train, X_val=test, y_val=labels)
    assert labelled.selection_report_["criterion"].startswith("validation AUC")
    best = labelled.selection_report_["selected"]
    assert labelled.selection_report_["candidates"][best]["auc"] > 0.9


def test_autoencoder_history_and_window_shapes(fitted: Fitted) -> None:
    detector, *_ = fitted
    if detector.input_kind != "logmel":
        pytest.skip("autoencoders only")
    assert 1 <= len(detector.history_) <= TINY_AE["max_epochs"]
    assert {"train_loss", "val_loss"} <= set(detector.history_[0])
    short = np.zeros((3, N_MELS), dtype=np.float32)  # shorter than a window: padded, still scored
    assert np.isfinite(detector.score([short])[0])
    with pytest.raises(ModelError, match="expected a log-mel spectrogram"):
        detector.score([np.zeros((40, N_MELS + 1), dtype=np.float32)])


def test_auto_refuses_unknown_candidates_and_autoencoder_params_before_fitting() -> None:
    train, *_ = tabular_task()
    with pytest.raises(ModelError, match="unknown model 'svm'"):
        get_detector("auto", candidates=["svm"]).fit(train)
    with pytest.raises(ModelError, match="auto: autoencoder_params: model 'cnn-ae' has no hyper-parameter 'zdim'"):
        get_detector("auto", autoencoder_params={"zdim": 4}).fit(train)
