"""The features stage end to end: every good file in, every bad file reported, incremental, parallel."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from typer.testing import CliRunner

from vibrasense.cli import app
from vibrasense.config import Settings, load_settings
from vibrasense.features.logmel_store import LogMelStore
from vibrasense.features.names import feature_names
from vibrasense.features.pipeline import extract_features
from vibrasense.signals.records import RECORD_COLUMNS

RATE = 16_000


def _write_dcase(root: Path, n_train: int = 6, n_test: int = 4, seconds: float = 1.0) -> Path:
    """A DCASE 2020 layout of tones in noise; anomalies carry an extra high tone."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * RATE)) / RATE
    machine = root / "pump"
    for split, count in (("train", n_train), ("test", n_test)):
        (machine / split).mkdir(parents=True)
        for k in range(count):
            label = "anomaly" if split == "test" and k % 2 else "normal"
            x = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(t.size)
            if label == "anomaly":
                x += 0.2 * np.sin(2 * np.pi * 3100 * t)
            path = machine / split / f"{label}_id_00_{k:08d}.wav"
            sf.write(path, x.astype(np.float32), RATE, subtype="PCM_16")
            os.utime(path, (1_700_000_000 + k * 60, 1_700_000_000 + k * 60))
    return machine


def _settings(tmp_path: Path, **features: object) -> Settings:
    return load_settings(workdir=tmp_path / "work", features={"workers": 1, "batch_size": 3, **features})


def test_every_recording_becomes_one_row_and_one_spectrogram(tmp_path: Path) -> None:
    machine = _write_dcase(tmp_path / "data")
    settings = _settings(tmp_path)
    run = extract_features(machine, tmp_path / "out", settings, progress=False)

    table = pd.read_parquet(run.features_path)
    assert (run.discovered, run.processed, run.unchanged, run.skipped) == (10, 10, 0, [])
    assert list(table.columns) == [*RECORD_COLUMNS, *feature_names(settings.features.vibration)]
    assert table["recording_id"].is_unique
    assert sorted(table["label"].value_counts().items()) == [("anomaly", 2), ("normal", 8)]
    assert str(table["event_timestamp"].dtype) == "datetime64[ns, UTC]"
    assert table[list(feature_names(settings.features.vibration))[:13]].notna().all().all()

    store = LogMelStore(run.logmel_dir)
    assert sorted(store.recording_ids) == sorted(table["recording_id"])
    spectrogram = store[table["recording_id"].iloc[0]]
    assert spectrogram.shape == (1 + RATE // 512, 128)
    assert spectrogram.dtype == np.float32
    assert isinstance(spectrogram, np.memmap)
    report = json.loads(run.report_path.read_text())
    assert (report["processed"], report["skipped"]) == (10, [])


def test_a_corrupt_file_is_reported_and_the_rest_processed(tmp_path: Path) -> None:
    machine = _write_dcase(tmp_path / "data")
    (machine / "train" / "normal_id_00_00000099.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk")
    (machine / "train" / "normal_id_00_00000098.wav").write_bytes(b"")
    nan_clip = np.full(RATE, np.nan, dtype=np.float32)
    sf.write(machine / "train" / "normal_id_00_00000097.wav", nan_clip, RATE, subtype="FLOAT")

    run = extract_features(machine, tmp_path / "out", _settings(tmp_path), progress=False)

    assert run.processed == 10
    skipped = {Path(item.source).name: item.reason for item in run.skipped}
    assert set(skipped) == {
        "normal_id_00_00000099.wav",
        "normal_id_00_00000098.wav",
        "normal_id_00_00000097.wav",
    }
    assert "nan" in skipped["normal_id_00_00000097.wav"].lower()
    report = json.loads(run.report_path.read_text())
    assert {Path(item["source"]).name for item in report["skipped"]} == set(skipped)
    assert len(pd.read_parquet(run.features_path)) == 10


def test_rerun_processes_only_new_or_changed_files(tmp_path: Path) -> None:
    machine = _write_dcase(tmp_path / "data")
    settings = _settings(tmp_path)
    first = extract_features(machine, tmp_path / "out", settings, progress=False)
    before = pd.read_parquet(first.features_path).set_index("recording_id")

    again = extract_features(machine, tmp_path / "out", settings, progress=False)
    assert (again.processed, again.unchanged) == (0, 10)

    changed = machine / "train" / "normal_id_00_00000001.wav"
    sf.write(changed, 0.9 * np.ones(RATE, dtype=np.float32), RATE)
    os.utime(changed, (1_800_000_000, 1_800_000_000))
    sf.write(machine / "train" / "normal_id_00_00000042.wav", np.zeros(RATE, dtype=np.float32) + 0.1, RATE)
    third = extract_features(machine, tmp_path / "out", settings, progress=False)
    after = pd.read_parquet(third.features_path).set_index("recording_id")

    assert (third.processed, third.unchanged) == (2, 9)
    assert len(after) == 11 and after.index.is_unique
    changed_id = "pump_train_normal_id_00_00000001"
    assert after.loc[changed_id, "rms_mean"] != pytest.approx(before.loc[changed_id, "rms_mean"])
    assert len(LogMelStore(third.logmel_dir)) == 11


def test_local_processes_give_the_same_output_as_one_process(tmp_path: Path) -> None:
    machine = _write_dcase(tmp_path / "data")
    single = extract_features(machine, tmp_path / "one", _settings(tmp_path, workers=1), progress=False)
    parallel = extract_features(machine, tmp_path / "two", _settings(tmp_path, workers=2), progress=False)
    pd.testing.assert_frame_equal(pd.read_parquet(single.features_path), pd.read_parquet(parallel.features_path))


@pytest.mark.slow
def test_a_dask_local_cluster_gives_identical_output(tmp_path: Path) -> None:
    from dask.distributed import LocalCluster

    machine = _write_dcase(tmp_path / "data")
    local = extract_features(machine, tmp_path / "local", _settings(tmp_path), progress=False)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        dask_settings = _settings(tmp_path, dask_scheduler=cluster.scheduler_address)
        distributed = extract_features(machine, tmp_path / "dask", dask_settings, progress=False)
    pd.testing.assert_frame_equal(pd.read_parquet(local.features_path), pd.read_parquet(distributed.features_path))
    a, b = LogMelStore(local.logmel_dir), LogMelStore(distributed.logmel_dir)
    for recording_id in a:
        np.testing.assert_array_equal(a[recording_id], b[recording_id])


@pytest.mark.slow
def test_a_run_killed_half_way_resumes_without_duplicate_or_loss(tmp_path: Path) -> None:
    machine = _write_dcase(tmp_path / "data", n_train=150, n_test=0)
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "vibrasense",
        "--workdir",
        str(tmp_path / "work"),
        "features",
        str(machine),
        "--out",
        str(out),
        "--workers",
        "1",
        "--batch-size",
        "1",
        "--no-progress",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(list((out / "parts").glob("part-*.parquet"))) < 5 and time.monotonic() < deadline:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (out / "features.parquet").exists(), "the run finished before it could be killed"
    done_before = len(list((out / "parts").glob("part-*.parquet")))

    resumed = extract_features(machine, out, _settings(tmp_path), progress=False)
    assert resumed.unchanged == done_before
    assert resumed.processed == 150 - done_before
    clean = extract_features(machine, tmp_path / "clean", _settings(tmp_path), progress=False)
    pd.testing.assert_frame_equal(pd.read_parquet(resumed.features_path), pd.read_parquet(clean.features_path))
    assert len(LogMelStore(resumed.logmel_dir)) == 150


def test_cli_writes_the_contract_and_rejects_a_wrong_path(tmp_path: Path) -> None:
    machine = _write_dcase(tmp_path / "data")
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "--workdir",
            str(tmp_path / "w"),
            "features",
            str(machine),
            "--out",
            str(tmp_path / "cli"),
            "--workers",
            "1",
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "10 recordings processed" in result.output
    assert (tmp_path / "cli" / "features.parquet").is_file()

    missing = subprocess.run(
        [
            sys.executable,
            "-m",
            "vibrasense",
            "features",
            str(tmp_path / "nope"),
            "--out",
            str(tmp_path / "x"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode == 3
    assert "does not exist" in missing.stdout + missing.stderr
    assert "Traceback" not in missing.stderr
