"""The feature spec travels with the features: new settings re-extract and say why, training refuses a mismatch."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from vibrasense.config import Settings, load_settings
from vibrasense.errors import ModelError
from vibrasense.features.featurize import featurize
from vibrasense.features.logmel_store import LogMelStore
from vibrasense.features.pipeline import extract_features, read_spec
from vibrasense.features.spec import FeatureSpec
from vibrasense.signals.records import RECORD_COLUMNS
from vibrasense.training.data import load_training_data

RATE = 16_000


def _write_mimii(root: Path, channels: int = 4, normal: int = 5, abnormal: int = 2) -> Path:
    """MIMII layout; channel k of clip i is a tone of 200·(k+1)·(i+1) Hz, so each channel is recognisable."""
    t = np.arange(RATE) / RATE
    for label, count in (("normal", normal), ("abnormal", abnormal)):
        folder = root / "fan" / "id_00" / label
        folder.mkdir(parents=True)
        for i in range(count):
            tones = [0.1 * np.sin(2 * np.pi * 200 * (k + 1) * (1 + i % 3) * t) for k in range(channels)]
            sf.write(folder / f"{i:08d}.wav", np.stack(tones, axis=1).astype(np.float32), RATE)
    return root


def _settings(tmp_path: Path, features: dict | None = None, **overrides: object) -> Settings:
    features = {"workers": 1, "batch_size": 4, **(features or {})}
    return load_settings(None, workdir=tmp_path / "work", features=features, **overrides)


def test_spec_is_written_beside_the_features_and_its_hash_changes_with_any_setting(tmp_path: Path) -> None:
    data = _write_mimii(tmp_path / "data")
    settings = _settings(tmp_path)
    run = extract_features(data, tmp_path / "out", settings, progress=False)
    spec = read_spec(run.out_dir)
    assert spec == FeatureSpec.from_settings(settings)
    other = FeatureSpec.from_settings(_settings(tmp_path, features={"logmel": {"n_mels": 64}}))
    assert other.hash != spec.hash
    assert other.differences(spec) == ["features.logmel.n_mels: 64 vs 128"]
    assert FeatureSpec.from_settings(_settings(tmp_path, signals={"min_duration_s": 0.5})).hash == spec.hash
    table = pd.read_parquet(run.features_path)
    assert list(table.columns) == [*RECORD_COLUMNS, *spec.columns]


def test_new_settings_re_extract_every_file_and_say_why(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data = _write_mimii(tmp_path / "data")
    first = extract_features(data, tmp_path / "out", _settings(tmp_path), progress=False)
    assert (first.processed, first.unchanged) == (7, 0)
    assert extract_features(data, tmp_path / "out", _settings(tmp_path), progress=False).processed == 0

    narrower = _settings(tmp_path, features={"logmel": {"n_mels": 64}, "vibration": {"band_edges_hz": [0, 1000, 4000]}})
    with caplog.at_level(logging.WARNING, logger="vibrasense.features.pipeline"):
        again = extract_features(data, tmp_path / "out", narrower, progress=False)
    assert (again.processed, again.unchanged) == (7, 0)
    assert "feature spec changed" in caplog.text and "features.logmel.n_mels: 128 vs 64" in caplog.text
    table = pd.read_parquet(again.features_path)
    assert "vib_band_1000_4000hz" in table.columns and "vib_band_500_1000hz" not in table.columns
    assert table["vib_band_1000_4000hz"].notna().all()
    assert LogMelStore(again.logmel_dir).n_mels == 64

    (tmp_path / "data" / "fan" / "id_00" / "normal" / "00000009.wav").write_bytes(
        (tmp_path / "data" / "fan" / "id_00" / "normal" / "00000000.wav").read_bytes()
    )
    added = extract_features(data, tmp_path / "out", narrower, progress=False)
    assert (added.processed, added.unchanged) == (1, 7)


def test_the_configured_channel_is_the_one_extracted(tmp_path: Path) -> None:
    data = _write_mimii(tmp_path / "data")
    settings = _settings(tmp_path, signals={"channel": 2})
    run = extract_features(data, tmp_path / "out", settings, progress=False)
    row = pd.read_parquet(run.features_path).set_index("recording_id").loc["fan_id_00_normal_00000000"]
    samples, rate = sf.read(tmp_path / "data" / "fan" / "id_00" / "normal" / "00000000.wav", dtype="float32")
    spec = FeatureSpec.from_settings(settings)
    expected = featurize(samples[:, 2], rate, spec).values
    assert row["spectral_centroid"] == pytest.approx(expected["spectral_centroid"], rel=1e-6)
    channel_0 = featurize(samples[:, 0], rate, spec).values
    assert row["spectral_centroid"] != pytest.approx(channel_0["spectral_centroid"], rel=1e-2)


def test_training_refuses_features_of_another_spec_naming_the_field(tmp_path: Path) -> None:
    data = _write_mimii(tmp_path / "data")
    extract_features(data, tmp_path / "out", _settings(tmp_path, features={"logmel": {"n_mels": 64}}), progress=False)
    with pytest.raises(ModelError, match=r"features\.logmel\.n_mels: 64 vs 128 \(features vs configuration\)"):
        load_training_data(_settings(tmp_path), tmp_path / "out")
