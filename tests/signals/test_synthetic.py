"""The synthetic plant: deterministic, in real formats, and anomalies that differ from normal."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vibrasense.config import LogMelSettings
from vibrasense.features.names import AUDIO_FEATURES
from vibrasense.features.spectral import analyse_batch
from vibrasense.signals.layouts import discover
from vibrasense.signals.readers import read_signal
from vibrasense.signals.synthetic import (
    ANOMALIES,
    machine_sound,
    run_to_failure_severity,
    write_audio_plant,
    write_run_to_failure,
)


def test_same_seed_same_sound_and_machines_differ() -> None:
    np.testing.assert_array_equal(machine_sound(1.0, seed=4), machine_sound(1.0, seed=4))
    assert not np.allclose(machine_sound(1.0, machine=0), machine_sound(1.0, machine=1))
    for anomaly in ("bearing", "imbalance", "rubbing", "clogging"):
        assert np.abs(machine_sound(1.0, anomaly=anomaly) - machine_sound(1.0)).mean() > 1e-3


def _features(clips: list[np.ndarray]) -> np.ndarray:
    _, features = analyse_batch(np.stack(clips), 16_000, LogMelSettings())
    return np.column_stack([features[name] for name in AUDIO_FEATURES])


def _auc(normal: np.ndarray, anomalous: np.ndarray) -> float:
    """Probability that an anomalous score exceeds a normal one (ties count half)."""
    greater = (anomalous[:, None] > normal[None, :]).mean()
    return float(greater + 0.5 * (anomalous[:, None] == normal[None, :]).mean())


def test_anomalies_are_detectable_but_not_trivially() -> None:
    """Mean |z| of the 13 features against 16 normal clips: every anomaly kind scores above normal on
    average, none is separated by a wide margin at severity 1, and severity makes it easier."""
    train = _features([machine_sound(2.0, clip=k) for k in range(16)])
    mean, std = train.mean(axis=0), train.std(axis=0)

    def scores(clips: list[np.ndarray]) -> np.ndarray:
        return np.abs((_features(clips) - mean) / std).mean(axis=1)

    normal = scores([machine_sound(2.0, clip=100 + k) for k in range(8)])
    for anomaly in ANOMALIES:
        mild = scores([machine_sound(2.0, anomaly=anomaly, clip=200 + k) for k in range(8)])
        strong = scores([machine_sound(2.0, anomaly=anomaly, clip=200 + k, severity=4.0) for k in range(8)])
        assert _auc(normal, mild) >= 0.7, anomaly
        assert mild.mean() < 4 * normal.mean(), anomaly  # not a different machine altogether
        assert strong.mean() > mild.mean() and _auc(normal, strong) >= _auc(normal, mild), anomaly


def test_audio_plant_is_a_dcase_layout_with_increasing_times(tmp_path: Path) -> None:
    folder = write_audio_plant(tmp_path, n_machines=2, n_normal_train=3, n_test_normal=1, n_test_anomaly=2, seconds=0.5)
    refs = discover(folder)
    assert len(refs) == 12
    assert {r.machine_id for r in refs} == {"pump_id_00", "pump_id_01"}
    assert sum(r.label == "anomaly" for r in refs) == 4
    times = [r.event_timestamp for r in refs if r.machine_id == "pump_id_00"]
    assert times == sorted(times) and len(set(times)) == len(times)


def test_run_to_failure_grows_after_onset(tmp_path: Path) -> None:
    severity = run_to_failure_severity(100)
    assert (severity[:60] == 0).all() and severity[-1] > 10 * severity[70]
    assert np.all(np.diff(severity[70::5]) > 0)  # degradation only grows (over the 5 % snapshot noise)
    assert severity[-1] > 2.5 * severity[-6]  # the sudden run-away of the last 5 % of life
    refs = discover(write_run_to_failure(tmp_path, n_snapshots=40))
    assert len(refs) == 40 and refs[0].format == "femto"
    rms = [float(np.sqrt(np.mean(read_signal(r).samples ** 2))) for r in refs]
    assert np.mean(rms[-3:]) > 1.5 * np.mean(rms[:10])
