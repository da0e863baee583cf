"""Layouts are recognised automatically; each recording becomes one record with the right metadata."""

from __future__ import annotations

import os
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from vibrasense.errors import InputError, LayoutError
from vibrasense.signals.layouts import discover
from vibrasense.signals.readers import read_signal


def _wav(path: Path, seconds: float = 0.1) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.zeros(int(16_000 * seconds), np.float32) + 0.01, 16_000)


def test_normal_and_test_folders(tmp_path: Path) -> None:
    for name in (
        "normal/normal_001.wav",
        "normal/normal_002.wav",
        "test/normal_003.wav",
        "test/anomaly_004.wav",
    ):
        _wav(tmp_path / "valve" / name)
    refs = discover(tmp_path / "valve")
    assert [(r.split, r.label) for r in sorted(refs, key=lambda r: r.recording_id)] == [
        ("train", "normal"),
        ("train", "normal"),
        ("test", "anomaly"),
        ("test", "normal"),
    ]
    assert {r.machine_id for r in refs} == {"valve"}


def test_dcase2020_and_2021_layouts_from_the_parent_folder(tmp_path: Path) -> None:
    _wav(tmp_path / "dev" / "fan" / "train" / "normal_id_00_00000000.wav")
    _wav(tmp_path / "dev" / "fan" / "test" / "normal_id_00_00000000.wav")
    _wav(tmp_path / "dev" / "fan" / "test" / "anomaly_id_02_00000001.wav")
    _wav(tmp_path / "dev" / "gearbox" / "train" / "section_01_source_train_normal_0001_vel_6.wav")
    _wav(tmp_path / "dev" / "gearbox" / "test" / "section_01_target_test_anomaly_0002_vel_8.wav")
    refs = {r.recording_id: r for r in discover(tmp_path / "dev")}
    assert set(refs) == {
        "fan_train_normal_id_00_00000000",
        "fan_test_normal_id_00_00000000",
        "fan_test_anomaly_id_02_00000001",
        "gearbox_section_01_source_train_normal_0001_vel_6",
        "gearbox_section_01_target_test_anomaly_0002_vel_8",
    }
    assert refs["fan_test_anomaly_id_02_00000001"].machine_id == "fan_id_02"
    assert refs["fan_test_anomaly_id_02_00000001"].label == "anomaly"
    gearbox = refs["gearbox_section_01_target_test_anomaly_0002_vel_8"]
    assert (gearbox.machine_id, gearbox.split, gearbox.attributes["domain"]) == (
        "gearbox_section_01",
        "test",
        "target",
    )


def test_mimii_with_snr_folder_and_abnormal_label(tmp_path: Path) -> None:
    _wav(tmp_path / "6dB" / "pump" / "id_04" / "normal" / "00000000.wav")
    _wav(tmp_path / "6dB" / "pump" / "id_04" / "abnormal" / "00000000.wav")
    refs = discover(tmp_path)
    assert {(r.machine_id, r.label) for r in refs} == {("pump_id_04", "normal"), ("pump_id_04", "anomaly")}
    assert all(r.attributes["snr"] == "6dB" for r in refs)


def test_ims_folder_gives_one_record_per_file_and_channel(tmp_path: Path) -> None:
    folder = tmp_path / "2nd_test"
    folder.mkdir()
    for stamp in ("2004.02.12.10.32.39", "2004.02.12.10.42.39"):
        np.savetxt(folder / stamp, np.zeros((64, 4)), delimiter="\t")
    refs = discover(folder)
    assert len(refs) == 8
    assert {r.machine_id for r in refs} == {f"2nd_test_ch{k}" for k in range(1, 5)}
    assert refs[0].event_timestamp == datetime(2004, 2, 12, 10, 32, 39, tzinfo=UTC)


def test_femto_zip_without_unpacking(tmp_path: Path) -> None:
    archive = tmp_path / "Bearing9_9.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for index in (1, 2, 3):
            rows = "\n".join(f"9,0,{index},{k}.0,{0.1 * index},0.0" for k in range(100))
            zipped.writestr(f"Learning_set/Bearing9_9/acc_{index:05d}.csv", rows)
    refs = discover(archive)
    assert [r.recording_id for r in refs] == [
        "Bearing9_9_acc_00001",
        "Bearing9_9_acc_00002",
        "Bearing9_9_acc_00003",
    ]
    assert refs[2].event_timestamp - refs[0].event_timestamp == (refs[1].event_timestamp - refs[0].event_timestamp) * 2
    assert read_signal(refs[2]).samples[0] == pytest.approx(0.3)


def test_fingerprint_changes_when_a_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "m" / "normal" / "normal_1.wav"
    _wav(path)
    before = discover(tmp_path / "m")[0].fingerprint
    _wav(path, seconds=0.2)
    os.utime(path, (2_000_000_000, 2_000_000_000))
    assert discover(tmp_path / "m")[0].fingerprint != before


def test_wrong_path_and_unknown_layout_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        discover(tmp_path / "missing")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("nothing to see")
    with pytest.raises(LayoutError, match="no recordings in a known layout"):
        discover(tmp_path / "notes")


def test_a_single_file_is_one_recording(tmp_path: Path) -> None:
    _wav(tmp_path / "pump.wav")
    (ref,) = discover(tmp_path / "pump.wav")
    assert (ref.recording_id, ref.kind, ref.label) == (f"{tmp_path.name}/pump.wav", "audio", "unknown")
