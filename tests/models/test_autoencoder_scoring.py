"""How the autoencoders aggregate residuals over time, what they save for it, and how older folders load."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime
import pytest

from vibrasense.errors import ModelError
from vibrasense.inference.onnx_export import detector_to_onnx
from vibrasense.models import get_detector, load_detector
from vibrasense.models.autoencoder import STATE_FILE
from vibrasense.models.base import DETECTOR_FILE

N_MELS = 16
TINY = {"z_dim": 4, "max_epochs": 2, "batch_size": 32, "accelerator": "cpu"}


def clips(n: int, shift: float = 0.0, seed: int = 0, noise: float = 3.0) -> list[np.ndarray]:
    """Noisy stationary spectra (frames, N_MELS); ``shift`` raises the two lowest bands for the whole clip,
    ``noise`` is the frames' spread about the mean spectrum."""
    rng = np.random.default_rng(seed)
    base = np.linspace(-20, -60, N_MELS, dtype=np.float32)
    out = []
    for _ in range(n):
        spectrogram = base + rng.normal(0, noise, (40, N_MELS)).astype(np.float32)
        spectrogram[:, :2] += shift
        out.append(spectrogram)
    return out


def _strip_new_fields(folder: Path) -> None:
    """Make ``folder`` look like one saved before band-offset scoring, overlapping cnn-ae patches, the cnn-ae's
    width and the dense-ae's scoring hop were parameters."""
    state = json.loads((folder / STATE_FILE).read_text())
    del state["offset_mean"], state["offset_std"]
    (folder / STATE_FILE).write_text(json.dumps(state))
    meta = json.loads((folder / DETECTOR_FILE).read_text())
    meta["params"] = {
        k: v for k, v in meta["params"].items() if k not in ("score_aggregation", "score_hop_frames", "base_channels")
    }
    (folder / DETECTOR_FILE).write_text(json.dumps(meta))


def test_band_offset_statistics_are_saved_with_the_model(tmp_path: Path) -> None:
    detector = get_detector("dense-ae", **TINY).fit(clips(6))
    state = json.loads((detector.save(tmp_path) / STATE_FILE).read_text())
    assert len(state["offset_mean"]) == len(state["offset_std"]) == N_MELS
    assert len(state["spread_mean"]) == len(state["spread_std"]) == N_MELS
    spread = np.asarray(state["offset_std"])
    assert spread.min() > 0 and np.isclose(spread, spread.min()).sum() >= N_MELS // 2  # floored at the median
    assert load_detector(tmp_path).score(clips(2, seed=9)) == pytest.approx(detector.score(clips(2, seed=9)))


@pytest.mark.parametrize("name", ["cnn-ae", "dense-ae"])
def test_a_folder_saved_before_band_offsets_scores_as_it_was_trained(name: str, tmp_path: Path) -> None:
    # what those folders were: cnn-ae 32 channels wide, scoring its training hop; dense-ae scoring every frame
    before = (
        {"patch_frames": 16, "score_hop_frames": 16, "base_channels": 32}
        if name == "cnn-ae"
        else {"score_hop_frames": 1}
    )
    legacy = {"score_aggregation": "mean"} | before
    detector = get_detector(name, **TINY, **legacy).fit(clips(6))
    detector.save(tmp_path)
    _strip_new_fields(tmp_path)
    loaded = load_detector(tmp_path)
    assert loaded.score_aggregation == "mean"
    assert loaded.score_hop == detector.score_hop
    assert loaded.get_params() == detector.get_params()
    test = clips(3, shift=6.0, seed=4)
    assert loaded.score(test) == pytest.approx(detector.score(test), rel=1e-6)


WINDOW = {"cnn-ae": {"patch_frames": 16}, "dense-ae": {}}


@pytest.mark.parametrize("name", ["cnn-ae", "dense-ae"])
def test_the_default_scores_a_band_shift_and_a_change_of_fluctuation_above_normal_clips(name: str) -> None:
    detector = get_detector(name, **TINY, **WINDOW[name]).fit(clips(8))
    assert detector.score_aggregation == "band-offset-spread"
    normal = detector.score(clips(4, seed=5))
    shifted, steadier = detector.score(clips(4, shift=9.0, seed=6)), detector.score(clips(4, seed=6, noise=1.0))
    assert shifted.min() > normal.max() and steadier.min() > normal.max()
    # each part in units of a new normal clip's score: normal clips score about 1
    assert 0.2 < np.median(normal) < 5


def test_band_offset_alone_misses_a_steadier_sound_that_band_spread_catches() -> None:
    normal, steadier = clips(4, seed=5), clips(4, seed=6, noise=1.0)
    scores = {}
    for aggregation in ("band-offset", "band-spread"):
        detector = get_detector("dense-ae", **TINY, score_aggregation=aggregation).fit(clips(8))
        scores[aggregation] = detector.score(steadier).min() > detector.score(normal).max()
    assert scores == {"band-offset": False, "band-spread": True}


def test_a_folder_saved_before_band_spread_scores_exports_and_saves_as_it_was_trained(tmp_path: Path) -> None:
    detector = get_detector("dense-ae", **TINY, score_aggregation="band-offset").fit(clips(6))
    detector.save(tmp_path / "old")
    state = json.loads((tmp_path / "old" / STATE_FILE).read_text())
    for key in ("spread_mean", "spread_std", "offset_reference", "spread_reference"):
        del state[key]
    (tmp_path / "old" / STATE_FILE).write_text(json.dumps(state))
    loaded = load_detector(tmp_path / "old")
    test = clips(3, shift=6.0, seed=4)
    assert loaded.score_aggregation == "band-offset"
    assert loaded.score(test) == pytest.approx(detector.score(test), rel=1e-6)
    assert load_detector(loaded.save(tmp_path / "again")).score(test) == pytest.approx(detector.score(test), rel=1e-6)
    session = onnxruntime.InferenceSession(detector_to_onnx(loaded).SerializeToString())
    (score,) = session.run(None, {session.get_inputs()[0].name: test[0]})
    assert float(score) == pytest.approx(detector.score_one(test[0]), rel=1e-4)


@pytest.mark.parametrize("name", ["cnn-ae", "dense-ae"])
def test_band_spread_scores_a_change_of_fluctuation_above_normal_clips(name: str, tmp_path: Path) -> None:
    detector = get_detector(name, **TINY, **WINDOW[name], score_aggregation="band-spread").fit(clips(8))
    normal, steadier = detector.score(clips(4, seed=5)), detector.score(clips(4, seed=6, noise=1.0))
    assert steadier.min() > normal.max()
    detector.save(tmp_path)
    assert load_detector(tmp_path).score(clips(2, seed=9)) == pytest.approx(detector.score(clips(2, seed=9)))


@pytest.mark.parametrize("aggregation", ["mean", "band-offset", "band-spread", "band-offset-spread"])
@pytest.mark.parametrize("name", ["cnn-ae", "dense-ae"])
def test_onnx_graph_aggregates_as_the_detector(name: str, aggregation: str) -> None:
    detector = get_detector(name, **TINY, **WINDOW[name], score_aggregation=aggregation).fit(clips(4))
    session = onnxruntime.InferenceSession(
        detector_to_onnx(detector).SerializeToString(), providers=["CPUExecutionProvider"]
    )
    for spectrogram in [*clips(2, shift=4.0, seed=7), clips(1)[0][:3]]:
        (score,) = session.run(None, {session.get_inputs()[0].name: spectrogram})
        assert float(score) == pytest.approx(detector.score_one(spectrogram), rel=1e-4)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"score_aggregation": "max"}, "unknown"),
        ({"score_hop_frames": 0}, "hop"),
        ({"score_hop_frames": 17}, "hop"),
        ({"base_channels": 0}, "base_channels=0"),
    ],
)
def test_bad_scoring_parameters_are_refused_before_training(params: dict, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        get_detector("cnn-ae", **TINY, patch_frames=16, **params).fit(clips(2))


@pytest.mark.parametrize("aggregation", ["band-offset-spread", "mean"])
@pytest.mark.parametrize("name", ["cnn-ae", "dense-ae"])
def test_the_scores_the_fit_keeps_are_the_scores_of_its_recordings(name: str, aggregation: str) -> None:
    """The fit passes each recording through the network once and keeps those scores (the threshold comes from
    the held-out ones): they are what scoring the recordings again gives."""
    training = clips(8, seed=4)
    params = TINY | ({"patch_frames": 16} if name == "cnn-ae" else {})
    detector = get_detector(name, **params, score_aggregation=aggregation).fit(training)
    np.testing.assert_array_equal(detector.training_scores_, detector.score(training))
    held_out = detector.training_scores_[detector.calibration_ids(training)]
    assert len(held_out) >= 1 and detector.threshold_ >= held_out.min()
