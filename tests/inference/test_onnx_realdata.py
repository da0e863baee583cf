"""ONNX and native scores agree on real recordings (MIMII fan, CWRU bearings, DCASE), through the registry too.

The registered champion is exported with ``vibrasense models export`` and loaded by the service with
``serving.runtime: onnx``; every score equals the native one to 1e-4 relative (float64 graphs: far closer).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.io
import soundfile as sf
from fastapi.testclient import TestClient

from vibrasense.config import load_settings
from vibrasense.features.featurize import RawRecording, featurize_batch
from vibrasense.features.spec import FeatureSpec
from vibrasense.inference import ModelInputs, ModelScorer
from vibrasense.inference.onnx_export import export_onnx
from vibrasense.inference.onnx_runtime import ONNX_FILE, OnnxScorer
from vibrasense.models import get_detector
from vibrasense.signals.records import SignalContext

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

SPEC = FeatureSpec.from_settings(load_settings(None))
CWRU = SignalContext("cwru-6205-de", 1797 / 60)


def _wav(path: Path) -> np.ndarray:
    return sf.read(path, dtype="float32")[0]


def _agree(native: ModelScorer, exported: OnnxScorer, clips: list[tuple[np.ndarray, float]], context=None) -> None:
    for samples, rate in clips:
        expected, got = native.score(samples, rate, context), exported.score(samples, rate, context)
        assert got.score == pytest.approx(expected.score, rel=1e-4)
        assert got.threshold == expected.threshold
        assert got.domain_distance == expected.domain_distance and got.unknown_domain == expected.unknown_domain
        if expected.score != pytest.approx(expected.threshold, rel=1e-4):  # LOF scores can tie with the threshold
            assert got.is_anomaly == expected.is_anomaly


def _export(tmp_path: Path, name: str, detector, inputs: ModelInputs) -> tuple[ModelScorer, OnnxScorer]:
    folder = tmp_path / name
    detector.save(folder)
    SPEC.save(folder)
    inputs.save(folder)
    export_onnx(folder, folder / "onnx")
    return ModelScorer.from_directory(folder, name, "1"), OnnxScorer.from_directory(folder / "onnx", name, "1")


def test_mimii_fan_clips_score_the_same_with_every_detector(tmp_path: Path, shared_data: Path) -> None:
    fan = shared_data / "mimii" / "fan" / "id_00"
    normal = [_wav(p) for p in sorted((fan / "normal").glob("*.wav"))]
    abnormal = [_wav(p) for p in sorted((fan / "abnormal").glob("*.wav"))[:4]]
    train = featurize_batch([RawRecording(c, 16_000) for c in normal[:14]], SPEC)
    rows = pd.DataFrame([f.values for f in train])
    clips = [(c, 16_000.0) for c in normal[14:17] + abnormal]
    for name in ("mahalanobis", "isolation-forest", "one-class-svm", "lof"):
        detector = get_detector(name).fit(rows)
        _agree(*_export(tmp_path, name, detector, ModelInputs("tabular", tuple(detector.kept_columns_))), clips)
    dense = get_detector("dense-ae", max_epochs=1, accelerator="cpu").fit([f.logmel for f in train])
    _agree(*_export(tmp_path, "dense-ae", dense, ModelInputs("logmel")), clips[:2] + clips[-2:])


def test_cwru_bearing_segments_score_the_same_with_their_envelope_features(tmp_path: Path, shared_data: Path) -> None:
    source = shared_data / "cwru"
    (normal_file,) = (source / "Normal").glob("*.mat")
    variables = scipy.io.loadmat(normal_file)
    (key,) = [k for k in variables if k.endswith("_DE_time")]
    baseline = variables[key].ravel().astype(np.float32)[::4]  # 48 kHz -> 12 kHz, as the README suggests
    segments = np.array_split(baseline, 20)
    train = featurize_batch([RawRecording(s, 12_000, CWRU) for s in segments[:16]], SPEC, logmel=False)
    rows = pd.DataFrame([f.values for f in train])
    clips = [(s, 12_000.0) for s in segments[16:]]
    for fault in ("IR", "OR", "B"):
        path = sorted((source / "12k_Drive_End_Bearing_Fault_Data" / fault).rglob("*.mat"))[0]
        data = scipy.io.loadmat(path)
        (de,) = [k for k in data if k.endswith("_DE_time")]
        clips.append((data[de].ravel().astype(np.float32)[:12_000], 12_000.0))
    for name in ("mahalanobis", "isolation-forest", "one-class-svm", "lof"):
        detector = get_detector(name).fit(rows)
        inputs = ModelInputs("tabular", tuple(detector.kept_columns_), CWRU)
        native, exported = _export(tmp_path, name, detector, inputs)
        assert any(c.startswith("vib_env_") for c in exported.inputs.columns)
        _agree(native, exported, clips)


def test_the_registered_champion_exports_and_the_service_scores_it_with_onnx_runtime(
    tmp_path: Path, dcase_subset: Path
) -> None:
    from vibrasense.features.pipeline import extract_features
    from vibrasense.registry import load_scorer
    from vibrasense.serving.app import create_app
    from vibrasense.serving.model import load_registered_scorer
    from vibrasense.training import train_and_register

    anomaly = dcase_subset
    workdir = tmp_path / "work"
    settings = load_settings(None, workdir=workdir, training={"model": "mahalanobis"})
    run = extract_features([tmp_path / "recordings"], workdir / "features", settings)
    train_and_register(settings, run.out_dir)
    native = load_scorer(settings, "champion")
    normal = sorted((anomaly.parents[1] / "train").glob("*.wav"))[-1]  # a training clip the model did not see
    clips = [(_wav(anomaly), 16_000.0), (_wav(normal), 16_000.0)]

    out = tmp_path / "edge"
    command = [sys.executable, "-m", "vibrasense", "--workdir", str(workdir), "models", "export"]
    exported = subprocess.run([*command, "--alias", "champion", "--out", str(out)], capture_output=True, text=True)
    assert exported.returncode == 0, exported.stdout + exported.stderr
    assert "v1 exported to onnx" in exported.stdout
    expected = ["domain_reference.npz", "feature_spec.json", "model.onnx", "model_inputs.json"]
    assert sorted(p.name for p in out.iterdir()) == expected
    edge = OnnxScorer.from_directory(out, native.name, native.version)
    assert edge.domain is not None and native.domain is not None
    _agree(native, edge, clips)

    missing = subprocess.run([*command, "--version", "7", "--out", str(tmp_path / "x")], capture_output=True, text=True)
    assert missing.returncode == 5 and "no version '7'" in missing.stderr and "Traceback" not in missing.stderr

    onnx_settings = load_settings(None, workdir=workdir, serving={"runtime": "onnx"})
    served = load_registered_scorer(onnx_settings)
    assert isinstance(served, OnnxScorer) and (served.directory / ONNX_FILE).is_file() is False
    assert (Path(served.directory).parent / "onnx" / ONNX_FILE).is_file()  # exported once into the model cache
    _agree(native, served, clips)
    with TestClient(create_app(onnx_settings, served)) as client:
        response = client.post(
            "/v1/score/file",
            files={"file": (anomaly.name, anomaly.read_bytes(), "audio/wav")},
            data={"machine_id": "unknown-00"},
        )
    assert response.status_code == 200, response.text
    assert response.json()["score"] == pytest.approx(native.score(*clips[0]).score, rel=1e-4)
