"""The synthetic plant: deterministic, in real formats, and anomalies that differ from normal."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vibrasense.signals.layouts import discover
from vibrasense.signals.readers import read_signal
from vibrasense.signals.synthetic import (
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


def test_audio_plant_is_a_dcase_layout_with_increasing_times(tmp_path: Path) -> None:
    folder = write_audio_plant(
        tmp_path, n_machines=2, n_normal_train=3, n_test_normal=1, n_test_anomaly=2, seconds=0.5
    )
    refs = discover(folder)
    assert len(refs) == 12
    assert {r.machine_id for r in refs} == {"pump_id_00", "pump_id_01"}
    assert sum(r.label == "anomaly" for r in refs) == 4
    times = [r.event_timestamp for r in refs if r.machine_id == "pump_id_00"]
    assert times == sorted(times) and len(set(times)) == len(times)


def test_run_to_failure_grows_after_onset(tmp_path: Path) -> None:
    severity = run_to_failure_severity(100)
    assert (severity[:60] == 0).all() and severity[-1] > 10 * severity[70]
    refs = discover(write_run_to_failure(tmp_path, n_snapshots=40))
    assert len(refs) == 40 and refs[0].format == "femto"
    rms = [float(np.sqrt(np.mean(read_signal(r).samples ** 2))) for r in refs]
    assert np.mean(rms[-3:]) > 1.5 * np.mean(rms[:10])
