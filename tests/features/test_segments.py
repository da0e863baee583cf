"""Recordings cut into windows at ingest: one row per window, in the feature spec, and trainable on one file."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from vibrasense.config import load_settings
from vibrasense.errors import ModelError
from vibrasense.features.pipeline import extract_features, read_features, read_spec
from vibrasense.features.spec import FeatureSpec
from vibrasense.models.base import get_detector
from vibrasense.training.data import load_training_data

FAULTS = Path("12k_Drive_End_Bearing_Fault_Data")
CLASSES = {
    "inner_race": FAULTS / "IR" / "007",
    "outer_race": FAULTS / "OR" / "007" / "@6",
    "ball": FAULTS / "B" / "007",
}
SEGMENT = {"segment": {"length_s": 1.0, "hop_s": 0.25}}


def test_a_spec_without_segments_hashes_as_before_the_field_existed() -> None:
    spec = FeatureSpec.from_settings(load_settings(None))
    data = spec.model_dump(mode="json")
    assert data.pop("segment") is None
    before = hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]
    assert spec.hash == before
    cut = FeatureSpec.from_settings(load_settings(None, features=SEGMENT))
    assert cut.hash != spec.hash and (cut.segment.length_s, cut.segment.hop_s) == (1.0, 0.25)
    assert spec.differences(cut) == ["features.segment: None vs {'length_s': 1.0, 'hop_s': 0.25}"]
    assert FeatureSpec.from_settings(load_settings(None, features={"segment": {"length_s": 2}})).segment.hop_s == 2


def _cwru(shared: Path, root: Path) -> Path:
    """The normal baseline and one 0.007" fault file of each class, linked in the CWRU tree."""
    for folder in [Path("Normal"), *CLASSES.values()]:
        (source,) = sorted((shared / "cwru" / folder).glob("*.mat"))
        (root / folder).mkdir(parents=True)
        (root / folder / source.name).symlink_to(source)
    return root


@pytest.mark.realdata
def test_training_on_one_normal_recording_says_why_and_names_segmenting(shared_data: Path, tmp_path: Path) -> None:
    settings = load_settings(None, workdir=tmp_path, features={"workers": 1})
    extract_features(_cwru(shared_data, tmp_path / "cwru"), tmp_path / "features", settings, progress=False)
    with pytest.raises(ModelError, match=r"1 normal training row\(s\) \(cwru_97_Normal_0\).*--segment 1s --hop 0.1s"):
        load_training_data(settings, tmp_path / "features")


@pytest.mark.realdata
def test_cwru_windows_of_the_one_normal_file_train_a_detector_that_tells_every_fault_class(
    shared_data: Path, tmp_path: Path
) -> None:
    settings = load_settings(None, workdir=tmp_path, features={"workers": 1, **SEGMENT})
    recordings, out = _cwru(shared_data, tmp_path / "cwru"), tmp_path / "features"
    run = extract_features(recordings, out, settings, progress=False)
    table = read_features(out)
    normal = table[table["label"] == "normal"].sort_values("event_timestamp")
    assert len(normal) == 17  # 5.08 s at 48 kHz: windows of 1 s every 0.25 s
    assert normal["recording_id"].iloc[:3].tolist() == [
        "cwru_97_Normal_0@0",
        "cwru_97_Normal_0@250",
        "cwru_97_Normal_0@500",
    ]
    offsets = (normal["event_timestamp"] - normal["event_timestamp"].iloc[0]).dt.total_seconds()
    assert offsets.tolist() == pytest.approx(np.arange(17) * 0.25)
    assert (table["duration"] == 1.0).all() and run.processed == len(table) and len(table) > 100
    assert read_spec(out).segment.hop_s == 0.25
    again = extract_features(recordings, out, settings, progress=False)
    assert (again.processed, again.unchanged) == (0, 4)  # the files did not change: nothing is cut again
    pd.testing.assert_frame_equal(read_features(out), table)

    data = load_training_data(settings, out)
    held = data.test[data.test["label"] == "normal"]
    ends = data.train["event_timestamp"] + pd.to_timedelta(data.train["duration"], unit="s")
    assert len(held) == 5 and ends.max() <= held["event_timestamp"].min()  # no sample both trained and tested on
    assert "the last 30% of its windows (in time) are test" in data.split_rule
    detector = get_detector("mahalanobis").fit(data.inputs("tabular", data.train))
    normal_scores = detector.score(data.inputs("tabular", held))
    for fault in CLASSES:
        rows = data.test[data.test["source"].str.contains(str(CLASSES[fault]), regex=False)]
        scores = detector.score(data.inputs("tabular", rows))
        labels = np.r_[np.zeros(len(normal_scores)), np.ones(len(scores))]
        assert roc_auc_score(labels, np.r_[normal_scores, scores]) >= 0.99, fault
