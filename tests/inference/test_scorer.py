"""The inference package on its own: a model folder in, verdicts on raw samples out, refusing what it cannot compute."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_info

from vibrasense.config import load_settings
from vibrasense.errors import InputError, ModelError
from vibrasense.features.featurize import RawRecording, featurize_batch
from vibrasense.features.spec import SPEC_FILE, FeatureSpec
from vibrasense.inference import ModelInputs, ModelScorer
from vibrasense.models import get_detector
from vibrasense.signals.records import SignalContext
from vibrasense.signals.synthetic import bearing_vibration

RATE = 12_000
CWRU = SignalContext("cwru-6205-de", 1797 / 60)
SPEC = FeatureSpec.from_settings(load_settings(None))


def _bearing_model(folder: Path, default: SignalContext, min_rate: float | None = None) -> tuple[ModelScorer, list]:
    clips = [bearing_vibration(1.0, RATE, seed=seed) for seed in range(40)]
    rows = pd.DataFrame([f.values for f in featurize_batch([RawRecording(c, RATE, CWRU) for c in clips], SPEC)])
    detector = get_detector("mahalanobis").fit(rows)
    detector.save(folder)
    SPEC.save(folder)
    ModelInputs("tabular", tuple(detector.kept_columns_), default, min_rate).save(folder)
    return ModelScorer.from_directory(folder, "bearing-model", "7"), clips


def test_scores_equal_the_detector_on_featurizer_rows_and_the_envelope_columns_are_used(tmp_path: Path) -> None:
    scorer, _ = _bearing_model(tmp_path / "model", SignalContext())
    assert any(c.startswith("vib_env_") for c in scorer.inputs.columns)
    faulty = bearing_vibration(1.0, RATE, defect="inner_race", seed=99)
    row = pd.DataFrame([featurize_batch([RawRecording(faulty, RATE, CWRU)], SPEC)[0].values])
    verdict = scorer.score(faulty, RATE, CWRU)
    assert verdict.score == pytest.approx(scorer.detector.score(row)[0], rel=1e-9)
    assert verdict.is_anomaly and verdict.threshold == scorer.detector.threshold_
    assert verdict.score > 3 * scorer.score(bearing_vibration(1.0, RATE, seed=500), RATE, CWRU).score


def test_without_a_context_a_bearing_model_refuses_naming_the_field(tmp_path: Path) -> None:
    scorer, clips = _bearing_model(tmp_path / "model", SignalContext())
    with pytest.raises(InputError, match="bearing is needed for vib_env_bpfo") as error:
        scorer.score(clips[0], RATE)
    assert error.value.source == "bearing"
    defaulted, _ = _bearing_model(tmp_path / "defaulted", CWRU)
    assert defaulted.score(clips[0], RATE).score == pytest.approx(defaulted.score(clips[0], RATE, CWRU).score)


def test_a_recording_sampled_slower_than_the_training_data_is_refused(tmp_path: Path) -> None:
    scorer, _ = _bearing_model(tmp_path / "model", CWRU, min_rate=RATE)
    with pytest.raises(InputError, match="8000 Hz is below the 12000 Hz") as error:
        scorer.score(bearing_vibration(1.0, 8_000, seed=1), 8_000)
    assert error.value.source == "sample_rate"


def test_folders_without_a_current_spec_are_refused_with_the_fix(tmp_path: Path) -> None:
    _bearing_model(tmp_path / "model", CWRU)
    spec_file = tmp_path / "model" / SPEC_FILE
    spec_file.write_text(json.dumps(json.loads(spec_file.read_text()) | {"version": 0}))
    with pytest.raises(ModelError, match=r"feature spec version 0.*retrain"):
        ModelScorer.from_directory(tmp_path / "model", "old", "1")
    spec_file.unlink()
    with pytest.raises(ModelError, match="no feature spec here"):
        ModelScorer.from_directory(tmp_path / "model", "older", "1")


def test_scoring_leaves_the_process_thread_pools_alone(tmp_path: Path) -> None:
    scorer, clips = _bearing_model(tmp_path / "model", CWRU)
    before = [(lib["internal_api"], lib["num_threads"]) for lib in threadpool_info()]
    for clip in clips[:3]:
        scorer.score(clip, RATE)
    assert [(lib["internal_api"], lib["num_threads"]) for lib in threadpool_info()] == before
    assert np.isfinite(scorer.score(clips[0], RATE).score)
