"""Readers: every format, every bit depth, channel choice, archives, and a clear error for every bad input."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import soundfile as sf

from vibrasense.errors import InputError
from vibrasense.signals.layouts import discover
from vibrasense.signals.readers import read_path, read_signal
from vibrasense.signals.resample import resample

RATE = 16_000


def _tone(n: int = RATE, frequency: float = 440.0, rate: float = RATE) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * frequency * np.arange(n) / rate)).astype(np.float32)


@pytest.mark.parametrize(("subtype", "tolerance"), [("PCM_16", 1e-4), ("PCM_24", 1e-6), ("PCM_32", 1e-8), ("FLOAT", 0)])
def test_wav_bit_depths_read_as_float32(tmp_path: Path, subtype: str, tolerance: float) -> None:
    path = tmp_path / "clip.wav"
    sf.write(path, _tone(), RATE, subtype=subtype)
    signal = read_path(path)
    assert signal.samples.dtype == np.float32
    assert (signal.sample_rate, signal.channels, len(signal.samples)) == (RATE, 1, RATE)
    np.testing.assert_allclose(signal.samples, _tone(), atol=tolerance)


def test_multichannel_wav_selects_the_channel_and_rejects_a_missing_one(tmp_path: Path) -> None:
    stereo = np.stack([_tone(frequency=f) for f in (100, 200, 300)], axis=1)
    sf.write(tmp_path / "three.wav", stereo, RATE, subtype="FLOAT")
    signal = read_path(tmp_path / "three.wav", channel=2)
    np.testing.assert_array_equal(signal.samples, stereo[:, 2])
    assert signal.channels == 3
    with pytest.raises(InputError, match=r"channel 3 does not exist; the file has 3 channel\(s\)"):
        read_path(tmp_path / "three.wav", channel=3)


def test_ims_snapshot_four_and_eight_channels(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for channels in (4, 8):
        table = rng.standard_normal((2048, channels))
        path = tmp_path / f"{channels}" / "2004.02.12.10.32.39"
        path.parent.mkdir()
        np.savetxt(path, table, delimiter="\t", fmt="%.3f")
        signal = read_path(path, channel=channels - 1)
        assert (signal.sample_rate, signal.channels) == (20_000, channels)
        np.testing.assert_allclose(signal.samples, table[:, -1], atol=1e-3)


@pytest.mark.parametrize("separator", [",", ";"])
def test_femto_csv_comma_or_semicolon(tmp_path: Path, separator: str) -> None:
    rows = np.column_stack(
        [
            np.full(2560, 9),
            np.full(2560, 39),
            np.full(2560, 39),
            np.arange(2560) * 39.0,
            np.linspace(-1, 1, 2560),
            np.linspace(1, -1, 2560),
        ]
    )
    path = tmp_path / "acc_00001.csv"
    np.savetxt(path, rows, delimiter=separator, fmt="%.4f")
    horizontal = read_path(path)
    vertical = read_path(path, channel="vertical")
    assert horizontal.sample_rate == 25_600
    np.testing.assert_allclose(horizontal.samples, rows[:, 4], atol=1e-4)
    np.testing.assert_allclose(vertical.samples, rows[:, 5], atol=1e-4)


def test_cwru_mat_channels_and_rate(tmp_path: Path) -> None:
    de, fe = np.arange(1000.0), -np.arange(1000.0)
    path = tmp_path / "12k_Drive_End_Bearing_Fault_Data" / "105_0.mat"
    path.parent.mkdir()
    scipy.io.savemat(path, {"X105_DE_time": de[:, None], "X105_FE_time": fe[:, None], "X105RPM": 1797})
    assert read_path(path).sample_rate == 12_000
    np.testing.assert_array_equal(read_path(path, channel="FE").samples, fe.astype(np.float32))
    with pytest.raises(InputError, match=r"channel 'BA' does not exist; channels are \['DE', 'FE'\]"):
        read_path(path, channel="BA")


@pytest.mark.parametrize(
    ("relative", "variable", "rate"),
    [
        ("abnormal_tests/normal/IR/007/105_0.mat", "X105", 12_000),  # record 105: 12k drive end
        ("normal/inner.mat", "X105", 12_000),  # no number in the name: the variable's says it
        ("48k_tests/normal/x.mat", "X109", 48_000),  # record 109: 48k drive end
        ("Normal/97_Normal_0.mat", "X097", 48_000),  # the normal baseline
        ("normal_runs/12k_Drive_End_Bearing_Fault_Data/IR/028/mine.mat", "X056", 12_000),  # the folder says it
        ("abnormal/48k_Drive_End_Bearing_Fault_Data/B/mine.mat", "X048", 48_000),
        ("Normal_Baseline/mine.mat", "X001", 48_000),  # a file right in the data set's normal folder
    ],
)
def test_cwru_rate_comes_from_the_record_or_the_data_set_folder_never_a_word_in_the_path(
    tmp_path: Path, relative: str, variable: str, rate: int
) -> None:
    path = tmp_path / relative
    path.parent.mkdir(parents=True)
    scipy.io.savemat(path, {f"{variable}_DE_time": np.arange(2000.0)[:, None]})
    assert read_path(path).sample_rate == rate
    (ref,) = discover(path.parent)
    assert read_signal(ref).sample_rate == rate


def test_a_cwru_file_nothing_documents_asks_for_its_rate(tmp_path: Path) -> None:
    path = tmp_path / "abnormal_tests" / "mine.mat"
    path.parent.mkdir()
    scipy.io.savemat(path, {"X001_DE_time": np.arange(2000.0)[:, None], "X001RPM": 1750})
    with pytest.raises(InputError, match=r"record number .* or its folder"):
        read_path(path)
    assert read_path(path, sample_rate=12_000).sample_rate == 12_000


def test_npy_and_csv_need_a_sample_rate(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", _tone())
    np.savetxt(tmp_path / "x.csv", _tone(), fmt="%.6f")
    with pytest.raises(InputError, match="sample rate"):
        read_path(tmp_path / "x.npy")
    assert read_path(tmp_path / "x.npy", sample_rate=8000).sample_rate == 8000
    np.testing.assert_allclose(read_path(tmp_path / "x.csv", sample_rate=RATE).samples, _tone(), atol=1e-6)


def test_members_of_zip_and_tar_archives_read_without_unpacking(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    sf.write(buffer, _tone(), RATE, format="WAV", subtype="PCM_16")
    with zipfile.ZipFile(tmp_path / "a.zip", "w") as zipped:
        zipped.writestr("set/clip.wav", buffer.getvalue())
    with tarfile.open(tmp_path / "a.tar.gz", "w:gz") as tarred:
        info = tarfile.TarInfo("set/clip.wav")
        info.size = len(buffer.getvalue())
        tarred.addfile(info, io.BytesIO(buffer.getvalue()))
    for archive in ("a.zip", "a.tar.gz"):
        signal = read_path(f"{tmp_path / archive}::set/clip.wav")
        np.testing.assert_allclose(signal.samples, _tone(), atol=1e-4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tar.gz", "a.zip"]
    with pytest.raises(InputError, match=r"no member 'set/other\.wav'"):
        read_path(f"{tmp_path / 'a.zip'}::set/other.wav")


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.wav", b"", "empty"),
        ("corrupt.wav", b"RIFF....WAVEfmt garbage", "not a readable audio file"),
        ("acc_00001.csv", b"1,2,3\n4,5,6\n", "6 columns"),
        ("broken.mat", b"MATLAB 5.0 MAT-file, truncated", "unreadable .mat"),
        ("2004.02.12.10.32.39", b"1\t2\n3\t4\n", "4 or 8 channels"),
        ("notes.xyz", b"hello", "unsupported file type"),
    ],
)
def test_bad_files_raise_input_errors_naming_the_file(tmp_path: Path, name: str, content: bytes, reason: str) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(InputError, match=reason) as raised:
        read_path(tmp_path / name, sample_rate=RATE)
    assert raised.value.source.endswith(name)


def test_nan_and_truncated_wavs_are_rejected(tmp_path: Path) -> None:
    samples = _tone()
    samples[100] = np.nan
    sf.write(tmp_path / "nan.wav", samples, RATE, subtype="FLOAT")
    with pytest.raises(InputError, match="1 samples are NaN or inf"):
        read_path(tmp_path / "nan.wav")
    sf.write(tmp_path / "ok.wav", _tone(), RATE, subtype="PCM_16")
    (tmp_path / "truncated.wav").write_bytes((tmp_path / "ok.wav").read_bytes()[:30])
    with pytest.raises(InputError):
        read_path(tmp_path / "truncated.wav")


def test_resampling_keeps_the_tone_and_the_duration() -> None:
    tone = _tone(n=48_000, frequency=1000.0, rate=48_000)
    down = resample(tone, 48_000, RATE)
    assert len(down) == RATE
    spectrum = np.abs(np.fft.rfft(down))
    assert np.argmax(spectrum) == 1000  # 1 Hz bins over one second
    assert resample(tone, 48_000, 48_000) is tone


def test_resampling_filters_what_would_alias() -> None:
    above_new_nyquist = _tone(n=48_000, frequency=10_000.0, rate=48_000)
    steady = resample(above_new_nyquist, 48_000, RATE)[1000:-1000]  # past the start-up transient
    assert np.abs(steady).max() < 0.01
