"""A model served from the registry sees exactly the inputs it was trained on, for every detector and data kind.

For each detector x {DCASE audio, CWRU bearing, a FEMTO snapshot run, 8-channel MIMII with channel 3
configured}: extract features, train and register, start the service on the registry champion, send the
raw recording over HTTP, and compare the served score with ``detector.score`` of that recording's row in
``features.parquet`` (or its stored log-mel spectrogram). Real recordings from ``../shared/data``.
"""

from __future__ import annotations

import io
import logging
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.io
import soundfile as sf
from fastapi.testclient import TestClient

from vibrasense.config import Settings, load_settings
from vibrasense.features.logmel_store import LogMelStore
from vibrasense.features.pipeline import extract_features, read_features
from vibrasense.models import list_detectors
from vibrasense.registry import load_registered_detector
from vibrasense.serving.app import create_app
from vibrasense.signals.readers import read_path
from vibrasense.training import train_and_register

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

MIMII_CHANNEL = 3
FEMTO_SNAPSHOTS = 60


@dataclass
class Dataset:
    """A recordings folder, the settings its features follow, and how one recording is sent over HTTP."""

    name: str
    recordings: Path
    overrides: dict
    send: Callable[[TestClient, pd.Series], dict]
    chosen: Callable[[pd.DataFrame], pd.DataFrame]


def _json(client: TestClient, row: pd.Series) -> dict:
    signal = read_path(row["source"], "DE" if row["source"].endswith(".mat") else 0)
    body = {"sample_rate": signal.sample_rate, "samples": signal.samples.tolist(), "machine_id": row["machine_id"]}
    return _ok(client.post("/v1/score", json=body))


def _upload(client: TestClient, row: pd.Series) -> dict:
    data = Path(row["source"]).read_bytes()
    files = {"file": (Path(row["source"]).name, data, "audio/wav")}
    return _ok(client.post("/v1/score/file", files=files, data={"machine_id": row["machine_id"]}))


def _ok(response) -> dict:
    assert response.status_code == 200, response.text
    return response.json()


def _by_label(table: pd.DataFrame) -> pd.DataFrame:
    """One anomaly and one normal test recording where there are, else the first and last recordings."""
    picks = [table[table["label"] == label].head(1) for label in ("anomaly", "normal")]
    chosen = pd.concat(picks)
    return chosen if len(chosen) == 2 else table.iloc[[0, -1]]


def _dcase(shared: Path, root: Path) -> Path:
    source = shared / "dcase2020" / "unknown_machine"
    target = root / "dcase" / "unknown_machine"
    for split, names in (
        ("train", sorted((source / "train").glob("*.wav"))[:12]),
        ("test", (source / "test").glob("*")),
    ):
        (target / split).mkdir(parents=True)
        for name in names:
            (target / split / name.name).symlink_to(name)
    return root / "dcase"


def _cwru(shared: Path, root: Path) -> Path:
    """The 48 kHz normal baseline cut into eight .mat files, beside one fault file of each class."""
    source = shared / "cwru"
    (normal_file,) = (source / "Normal").glob("*.mat")
    variables = scipy.io.loadmat(normal_file)
    (key,) = [k for k in variables if k.endswith("_DE_time")]
    samples = variables[key].ravel()
    target = root / "cwru"
    (target / "Normal").mkdir(parents=True)
    for index, segment in enumerate(np.array_split(samples, 8)):
        scipy.io.savemat(target / "Normal" / f"97_part{index}_0.mat", {key: segment[:, None]})
    for fault in ("IR", "OR", "B"):
        first = sorted((source / "12k_Drive_End_Bearing_Fault_Data" / fault).rglob("*.mat"))[0]
        link = target / first.relative_to(source)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(first)
    return target


def _femto(shared: Path, root: Path) -> Path:
    target = root / "femto" / "Bearing1_1"
    target.mkdir(parents=True)
    with zipfile.ZipFile(shared / "femto" / "Bearing1_1.zip") as archive:
        members = sorted(n for n in archive.namelist() if Path(n).name.startswith("acc_"))[:FEMTO_SNAPSHOTS]
        for member in members:
            (target / Path(member).name).write_bytes(archive.read(member))
    return target


def _mimii_8ch(shared: Path, root: Path) -> Path:
    """8-channel clips whose channels are different real fan clips, so the wrong channel gives another score."""
    clips = {
        label: [
            sf.read(p, dtype="float32")[0] for p in sorted((shared / "mimii" / "fan" / "id_00" / label).glob("*.wav"))
        ]
        for label in ("normal", "abnormal")
    }
    for label, count in (("normal", 8), ("abnormal", 3)):
        folder = root / "mimii8" / "fan" / "id_00" / label
        folder.mkdir(parents=True)
        pool = clips[label]
        for index in range(count):
            channels = np.stack([pool[(index + k) % len(pool)] for k in range(8)], axis=1)
            buffer = io.BytesIO()
            sf.write(buffer, channels, 16_000, format="WAV", subtype="PCM_16")
            (folder / f"{index:08d}.wav").write_bytes(buffer.getvalue())
    return root / "mimii8"


DATASETS: dict[str, tuple[Callable[[Path, Path], Path], dict, Callable, Callable]] = {
    "dcase": (_dcase, {}, _upload, _by_label),
    "cwru": (_cwru, {}, _json, _by_label),
    "femto": (_femto, {}, _json, _by_label),
    "mimii-8ch": (_mimii_8ch, {"signals": {"channel": MIMII_CHANNEL}}, _upload, _by_label),
}


@pytest.fixture(scope="module", params=sorted(DATASETS))
def dataset(request: pytest.FixtureRequest, shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    build, overrides, send, chosen = DATASETS[request.param]
    root = tmp_path_factory.mktemp(request.param)
    recordings = build(shared_data, root)
    settings = _settings(root, overrides, "features")
    run = extract_features([recordings], root / "features", settings, progress=False)
    assert not run.skipped, run.skipped
    return Dataset(request.param, recordings, overrides, send, chosen), root, run.out_dir


def _settings(root: Path, overrides: dict, model: str) -> Settings:
    return load_settings(
        None,
        workdir=root,
        features={"workers": 1},
        training={"model": model, "max_epochs": 2, "accelerator": "cpu"} if model != "features" else {},
        tracking={"registered_model": f"parity-{model}"},
        **overrides,
    )


@pytest.mark.parametrize("detector_name", list_detectors())
def test_parity_served_score_equals_offline_score(dataset: tuple, detector_name: str) -> None:
    data, root, features_dir = dataset
    settings = _settings(root, data.overrides, detector_name)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    result = train_and_register(settings, features_dir)
    _, detector = load_registered_detector(settings, result.model_version)
    table = read_features(features_dir)
    logmel = LogMelStore(features_dir / "logmel")
    with TestClient(create_app(settings)) as client:
        for index, row in data.chosen(table).iterrows():
            served = data.send(client, row)
            if detector.input_kind == "logmel":
                offline = detector.score([logmel[row["recording_id"]]])[0]
            else:
                offline = detector.score(table.loc[[index]])[0]
            assert served["model"]["version"] == result.model_version
            assert served["score"] == pytest.approx(offline, rel=1e-6, abs=1e-9), (data.name, row["recording_id"])
            assert served["threshold"] == pytest.approx(detector.threshold_)
