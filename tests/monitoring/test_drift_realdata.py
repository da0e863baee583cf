"""Drift on real recordings: each shift a plant sees is detected, the same data unshifted is not.

Shifts applied to the current half of the DCASE 2020 normal clips: a gain change of +6 dB, broadband noise
at 10 dB SNR, a new 3 kHz tone at a third of the clip's RMS; channel swaps on the multi-channel recordings
(the MIMII array's microphone 0 → 4, CWRU's drive-end → fan-end accelerometer). Unshifted: 200 random splits
of the normal clips (DCASE: 40/35; MIMII fan id_00: 10/10), which must raise drift at most 2 % of the time
(measured: 1/200 on each).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from vibrasense.config import DriftSettings, Settings
from vibrasense.features.featurize import RawRecording, featurize_batch
from vibrasense.features.spec import FeatureSpec
from vibrasense.monitoring.drift import detect_drift
from vibrasense.signals.readers import read_path

pytestmark = pytest.mark.realdata

RULE = DriftSettings()
SPEC = FeatureSpec.from_settings(Settings())
COLUMNS = [c for c in SPEC.columns if c not in SPEC.envelope_columns]  # no bearing: envelope features are NaN
SPLITS = 200
MAX_FALSE_ALARMS = 4  # 2 % of the splits


def _table(clips: list[np.ndarray], rate: float) -> pd.DataFrame:
    featurized = featurize_batch([RawRecording(c, rate) for c in clips], SPEC, columns=COLUMNS, logmel=False)
    return pd.DataFrame([f.values for f in featurized]).assign(machine_id="machine")


def _windows(samples: np.ndarray, rate: float, seconds: float) -> list[np.ndarray]:
    n = int(rate * seconds)
    return [samples[i * n : (i + 1) * n] for i in range(len(samples) // n)]


@pytest.fixture(scope="module")
def dcase(shared_data: Path) -> list[np.ndarray]:
    files = sorted((shared_data / "dcase2020" / "unknown_machine" / "train").glob("normal_*.wav"))
    assert len(files) == 75
    return [sf.read(f, dtype="float32")[0] for f in files]


@pytest.fixture(scope="module")
def dcase_table(dcase: list[np.ndarray]) -> pd.DataFrame:
    return _table(dcase, 16_000)


@pytest.fixture(scope="module")
def dcase_split(dcase: list[np.ndarray], dcase_table: pd.DataFrame) -> tuple[pd.DataFrame, list[np.ndarray]]:
    order = np.random.default_rng(11).permutation(len(dcase))
    return dcase_table.iloc[order[:40]], [dcase[i] for i in order[40:]]


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))


def _noise(x: np.ndarray, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).standard_normal(len(x)) * _rms(x) * 10 ** (-10 / 20)  # 10 dB SNR
    return (x + noise).astype(np.float32)


def _tone(x: np.ndarray, seed: int) -> np.ndarray:
    t = np.arange(len(x)) / 16_000
    return (x + _rms(x) / 3 * np.sqrt(2) * np.sin(2 * np.pi * 3_000 * t + seed)).astype(np.float32)


SHIFTS: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "gain +6 dB": lambda x, _: (x * 10 ** (6 / 20)).astype(np.float32),
    "broadband noise": _noise,
    "new tone": _tone,
}


@pytest.mark.parametrize("shift", list(SHIFTS))
def test_each_shift_of_the_dcase_clips_is_detected(
    dcase_split: tuple[pd.DataFrame, list[np.ndarray]], shift: str
) -> None:
    reference, current = dcase_split
    shifted = _table([SHIFTS[shift](x, i) for i, x in enumerate(current)], 16_000)
    (machine,) = detect_drift(reference, shifted, RULE).machines
    assert machine.drifted, f"{shift} not detected"
    drifted = {d.name for d in machine.features if d.drifted}
    expected = {"gain +6 dB": "rms_mean", "broadband noise": "spectral_centroid", "new tone": "zcr_mean"}[shift]
    assert expected in drifted, f"{shift}: drifted {sorted(drifted)}"


def test_the_unshifted_dcase_half_is_not_drift(dcase_split: tuple[pd.DataFrame, list[np.ndarray]]) -> None:
    reference, current = dcase_split
    assert not detect_drift(reference, _table(current, 16_000), RULE).drifted


@pytest.mark.parametrize(("folder", "reference_size"), [("dcase", 40), ("mimii", 10)])
def test_false_alarm_rate_on_unshifted_splits(
    shared_data: Path, dcase_table: pd.DataFrame, folder: str, reference_size: int
) -> None:
    if folder == "dcase":
        table = dcase_table
    else:
        files = sorted((shared_data / "mimii" / "fan" / "id_00" / "normal").glob("*.wav"))
        table = _table([sf.read(f, dtype="float32")[0] for f in files], 16_000)
    rng = np.random.default_rng(0)
    alarms = 0
    for _ in range(SPLITS):
        order = rng.permutation(len(table))
        alarms += detect_drift(table.iloc[order[:reference_size]], table.iloc[order[reference_size:]], RULE).drifted
    assert alarms <= MAX_FALSE_ALARMS, f"{alarms} false alarms in {SPLITS} unshifted splits of {folder}"


def test_a_microphone_swap_in_the_mimii_array_is_detected(shared_data: Path) -> None:
    path = next((shared_data / "mimii_8ch" / "fan" / "id_00" / "normal").glob("*.wav"))
    frames, rate = sf.read(path, dtype="float32")
    windows = {channel: _windows(frames[:, channel], rate, 0.5) for channel in (0, 4)}
    reference = _table(windows[0][0::2], rate)  # even windows of microphone 0
    assert not detect_drift(reference, _table(windows[0][1::2], rate), RULE).drifted  # odd windows, same microphone
    assert detect_drift(reference, _table(windows[4][1::2], rate), RULE).drifted  # odd windows, microphone 4


def test_an_accelerometer_swap_on_the_cwru_rig_is_detected(shared_data: Path) -> None:
    path = shared_data / "cwru" / "Normal" / "97_Normal_0.mat"
    drive_end, fan_end = (_windows(read_path(path, channel).samples, 48_000, 0.1) for channel in ("DE", "FE"))
    reference = _table(drive_end[0::2], 48_000)
    assert not detect_drift(reference, _table(drive_end[1::2], 48_000), RULE).drifted
    machine = detect_drift(reference, _table(fan_end[1::2], 48_000), RULE).machines[0]
    assert machine.drifted and "rms_mean" in {d.name for d in machine.features if d.drifted}


def test_a_clipped_and_a_dead_channel_are_named(dcase_split: tuple[pd.DataFrame, list[np.ndarray]]) -> None:
    reference, current = dcase_split
    limit = 0.5 * min(float(np.abs(x).max()) for x in current)
    clipped = detect_drift(reference, _table([np.clip(x, -limit, limit) for x in current], 16_000), RULE)
    assert [f.kind for f in clipped.machines[0].sensor_faults] == ["clipped"]
    dead = [np.random.default_rng(i).standard_normal(len(x)).astype(np.float32) * 1e-5 for i, x in enumerate(current)]
    report = detect_drift(reference, _table(dead, 16_000), RULE)
    assert [f.kind for f in report.machines[0].sensor_faults] == ["disconnected"]
