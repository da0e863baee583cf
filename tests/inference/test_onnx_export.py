"""Every detector exports to ONNX, and ONNX Runtime scores raw recordings as the native model does.

Synthetic clips here (each detector, clip lengths around the autoencoders' windows, ``auto``, a scoring
process without torch or scikit-learn); real MIMII and CWRU clips in ``test_onnx_realdata.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vibrasense.config import load_settings
from vibrasense.errors import InputError, ModelError
from vibrasense.features.featurize import RawRecording, featurize_batch
from vibrasense.features.spec import FeatureSpec
from vibrasense.inference import ModelInputs, ModelScorer
from vibrasense.inference.onnx_export import export_onnx
from vibrasense.inference.onnx_runtime import ONNX_FILE, OnnxScorer
from vibrasense.models import get_detector
from vibrasense.signals.records import SignalContext
from vibrasense.signals.synthetic import bearing_vibration, machine_sound

SPEC = FeatureSpec.from_settings(load_settings(None))
BEARING_RATE = 12_000
AUDIO_RATE = 16_000
CWRU = SignalContext("cwru-6205-de", 1797 / 60)
TABULAR = ("mahalanobis", "isolation-forest", "one-class-svm", "lof")


def _save(folder: Path, detector, inputs: ModelInputs) -> Path:
    detector.save(folder)
    SPEC.save(folder)
    inputs.save(folder)
    return folder


def _exported(folder: Path) -> tuple[ModelScorer, OnnxScorer]:
    export_onnx(folder, folder / "onnx")
    return ModelScorer.from_directory(folder, "m", "3"), OnnxScorer.from_directory(folder / "onnx", "m", "3")


@pytest.fixture(scope="module")
def bearing_rows() -> pd.DataFrame:
    clips = [bearing_vibration(1.0, BEARING_RATE, seed=seed) for seed in range(30)]
    recordings = [RawRecording(clip, BEARING_RATE, CWRU) for clip in clips]
    return pd.DataFrame([f.values for f in featurize_batch(recordings, SPEC, logmel=False)])


@pytest.fixture(scope="module")
def audio_logmels() -> list[np.ndarray]:
    clips = [machine_sound(2.0, AUDIO_RATE, machine=0, seed=seed) for seed in range(6)]
    return [f.logmel for f in featurize_batch([RawRecording(c, AUDIO_RATE) for c in clips], SPEC, columns=())]


@pytest.mark.parametrize("name", TABULAR)
def test_tabular_detectors_score_the_same_in_onnx_runtime(name: str, tmp_path: Path, bearing_rows) -> None:
    detector = get_detector(name).fit(bearing_rows)
    folder = _save(tmp_path / name, detector, ModelInputs("tabular", tuple(detector.kept_columns_), CWRU))
    native, onnx_scorer = _exported(folder)
    assert any(c.startswith("vib_env_") for c in onnx_scorer.inputs.columns)
    assert onnx_scorer.threshold == native.threshold and onnx_scorer.detector_name == name
    clips = [bearing_vibration(1.0, BEARING_RATE, seed=100 + k) for k in range(3)]
    clips += [bearing_vibration(1.0, BEARING_RATE, defect=d, seed=7) for d in ("inner_race", "outer_race", "ball")]
    scores = []
    for clip in clips:
        expected, got = native.score(clip, BEARING_RATE), onnx_scorer.score(clip, BEARING_RATE)
        assert got.score == pytest.approx(expected.score, rel=1e-9), name
        assert got.is_anomaly == expected.is_anomaly
        scores.append(got.score)
    assert len(set(scores)) > 1  # the clips are told apart: the graph reads its inputs


def test_onnx_scoring_refuses_what_the_native_scorer_refuses(tmp_path: Path, bearing_rows) -> None:
    detector = get_detector("mahalanobis").fit(bearing_rows)
    folder = _save(tmp_path / "model", detector, ModelInputs("tabular", tuple(detector.kept_columns_)))
    _, onnx_scorer = _exported(folder)
    with pytest.raises(InputError, match="bearing is needed for vib_env_bpfo") as refused:
        onnx_scorer.score(bearing_vibration(1.0, BEARING_RATE, seed=1), BEARING_RATE)
    assert refused.value.source == "bearing"
    assert onnx_scorer.score(bearing_vibration(1.0, BEARING_RATE, seed=1), BEARING_RATE, CWRU).score > 0


@pytest.mark.slow
@pytest.mark.parametrize("name", ["cnn-ae", "dense-ae"])
def test_autoencoders_score_the_same_in_onnx_runtime_for_any_clip_length(
    name: str, tmp_path: Path, audio_logmels: list[np.ndarray]
) -> None:
    detector = get_detector(name, max_epochs=2, accelerator="cpu").fit(audio_logmels)
    native, onnx_scorer = _exported(_save(tmp_path / name, detector, ModelInputs("logmel")))
    # 2 s: 63 frames, windows unaligned to the end; 0.5 s: 16 frames, shorter than a cnn-ae patch (edge-padded);
    # 32 frames exactly one patch; 5 frames one dense-ae context; 1 frame
    hop = SPEC.logmel.hop_length
    for frames in (63, 16, 32, 5, 1):
        clip = machine_sound(2.0, AUDIO_RATE, machine=1, seed=frames)[: max(frames - 1, 0) * hop + 1]
        expected, got = native.score(clip, AUDIO_RATE), onnx_scorer.score(clip, AUDIO_RATE)
        assert native.model_input(clip, AUDIO_RATE)[0].shape[0] == frames
        # float32 in two engines: torch on one thread (after a service limited the process) sums a patch's
        # errors in another order than ONNX Runtime, 1.1e-4 apart on the 1-frame clip's large error
        assert got.score == pytest.approx(expected.score, rel=5e-4), (name, frames)


def test_auto_exports_the_detector_it_selected(tmp_path: Path, bearing_rows) -> None:
    detector = get_detector("auto").fit(bearing_rows)
    folder = _save(tmp_path / "auto", detector, ModelInputs("tabular", tuple(detector.best_.kept_columns_), CWRU))
    native, onnx_scorer = _exported(folder)
    assert onnx_scorer.detector_name == "auto"
    clip = bearing_vibration(1.0, BEARING_RATE, defect="inner_race", seed=3)
    expected = native.score(clip, BEARING_RATE).score
    assert onnx_scorer.score(clip, BEARING_RATE).score == pytest.approx(expected, rel=1e-9)


def test_a_folder_without_an_onnx_model_is_refused_with_the_command_to_run(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="vibrasense models export"):
        OnnxScorer.from_directory(tmp_path, "m", "1")


NO_TORCH_NO_SKLEARN = """
import json, sys
sys.modules.update(torch=None, sklearn=None, lightning=None)  # importing any of them now fails
import soundfile
from vibrasense.inference.onnx_runtime import OnnxScorer
from vibrasense.signals.records import SignalContext
scorer = OnnxScorer.from_directory(sys.argv[1], "m", "3")
samples, rate = soundfile.read(sys.argv[2], dtype="float32")
verdict = scorer.score(samples, rate, SignalContext("cwru-6205-de", 1797 / 60))
loaded = sorted(m for m in ("torch", "sklearn", "lightning", "pandas", "mlflow") if sys.modules.get(m))
print(json.dumps({"score": verdict.score, "loaded": loaded}))
"""


def test_onnx_scoring_needs_neither_torch_nor_scikit_learn(tmp_path: Path, bearing_rows) -> None:
    import soundfile

    detector = get_detector("isolation-forest").fit(bearing_rows)
    folder = _save(tmp_path / "model", detector, ModelInputs("tabular", tuple(detector.kept_columns_), CWRU))
    native, _ = _exported(folder)
    clip = bearing_vibration(1.0, BEARING_RATE, defect="outer_race", seed=11)
    soundfile.write(tmp_path / "clip.wav", clip, BEARING_RATE, subtype="FLOAT")
    child = subprocess.run(
        [sys.executable, "-c", NO_TORCH_NO_SKLEARN, str(folder / "onnx"), str(tmp_path / "clip.wav")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 0, child.stderr
    result = json.loads(child.stdout)
    assert result["loaded"] == []
    assert result["score"] == pytest.approx(native.score(clip, BEARING_RATE, CWRU).score, rel=1e-9)
    assert (folder / "onnx" / ONNX_FILE).stat().st_size > 0
