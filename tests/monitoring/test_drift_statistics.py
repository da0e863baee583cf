"""Drift statistics and the drift rule on synthetic samples and feature tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vibrasense.config import DriftSettings
from vibrasense.errors import InputError
from vibrasense.monitoring.drift import detect_drift
from vibrasense.monitoring.sensor_faults import sensor_faults
from vibrasense.monitoring.statistics import compare, population_stability_index, robust_spread

RULE = DriftSettings()


def _table(machine: str, rng: np.random.Generator, n: int, level: float = 1.0, **shift: float) -> pd.DataFrame:
    features = {
        "vib_rms": level * rng.lognormal(0.0, 0.1, n),
        "vib_peak": level * rng.lognormal(1.0, 0.1, n),
        "spectral_centroid": 1000 + 50 * rng.standard_normal(n),
    }
    for name, offset in shift.items():
        features[name] = features[name] + offset
    return pd.DataFrame({"machine_id": machine, "recording_id": [f"{machine}-{i}" for i in range(n)], **features})


def test_identical_samples_do_not_differ() -> None:
    values = np.random.default_rng(0).standard_normal(200)
    result = compare(values, values)
    assert result.ks_statistic == 0.0 and result.ks_pvalue == 1.0
    assert result.wasserstein == 0.0 and result.shift == 0.0
    assert result.psi == pytest.approx(0.0, abs=1e-12)


def test_a_shift_of_one_sd_is_measured_as_one_sd() -> None:
    rng = np.random.default_rng(1)
    reference, current = rng.standard_normal(20_000), rng.standard_normal(20_000) + 1.0
    result = compare(reference, current)
    assert result.shift == pytest.approx(1.0, abs=0.05)
    assert result.ks_pvalue < 1e-100
    # PSI of two unit normals one SD apart, in ten reference deciles: about 1 (0.2 is the usual "significant")
    assert 0.7 < result.psi < 1.3


def test_psi_is_the_symmetric_divergence_of_the_bin_shares() -> None:
    reference = np.arange(100, dtype=float)  # deciles: ten bins of 10
    current = np.concatenate([np.full(50, 5.0), np.full(50, 95.0)])  # half in the first bin, half in the last
    p = np.full(10, 0.1)
    q = np.array([0.5] + [1e-4] * 8 + [0.5])
    q = np.maximum(q, 1e-4)
    expected = float(np.sum((q - p) * np.log(q / p)))
    assert population_stability_index(reference, current) == pytest.approx(expected, rel=0.02)


def test_robust_spread_falls_back_when_the_quartiles_agree() -> None:
    assert robust_spread(np.array([1.0, 1.0, 1.0, 1.0, 5.0])) == pytest.approx(np.std([1, 1, 1, 1, 5]))
    assert robust_spread(np.full(10, 3.0)) == 3.0


def test_a_moved_feature_is_named_and_the_unmoved_are_not() -> None:
    rng = np.random.default_rng(2)
    reference = _table("fan-1", rng, 60)
    current = _table("fan-1", rng, 40, spectral_centroid=150.0)
    report = detect_drift(reference, current, RULE)
    (machine,) = report.machines
    assert report.drifted and machine.drifted
    assert [d.name for d in machine.features if d.drifted] == ["spectral_centroid"]
    assert machine.reasons[0].startswith("spectral_centroid: median")


def test_a_small_but_significant_shift_is_not_drift() -> None:
    rng = np.random.default_rng(3)
    reference, current = _table("fan-1", rng, 5_000), _table("fan-1", rng, 5_000, spectral_centroid=10.0)
    machine = detect_drift(reference, current, RULE).machines[0]
    centroid = next(d for d in machine.features if d.name == "spectral_centroid")
    assert centroid.comparison.ks_pvalue < 1e-10  # significant ...
    assert centroid.comparison.shift < RULE.min_shift and not machine.drifted  # ... but 0.2 SD: not worth an alarm


def test_scores_are_the_headline_and_machines_are_compared_separately() -> None:
    rng = np.random.default_rng(4)
    reference = pd.concat([_table("a", rng, 50), _table("b", rng, 50)]).assign(score=rng.standard_normal(100))
    current = pd.concat([_table("a", rng, 30), _table("b", rng, 30)])
    current["score"] = np.where(current["machine_id"] == "b", 3.0, 0.0) + rng.standard_normal(60)
    by_machine = {m.machine_id: m for m in detect_drift(reference, current, RULE).machines}
    assert not by_machine["a"].drifted
    assert by_machine["b"].drifted and by_machine["b"].score is not None and by_machine["b"].score.drifted
    assert by_machine["b"].reasons[0].startswith("score: median")


def test_a_machine_without_reference_or_with_too_few_recordings_is_said_so() -> None:
    rng = np.random.default_rng(5)
    report = detect_drift(_table("a", rng, 50), pd.concat([_table("new", rng, 20), _table("a", rng, 3)]), RULE)
    by_machine = {m.machine_id: m for m in report.machines}
    assert "no training reference" in by_machine["new"].note and not by_machine["new"].drifted
    assert "fewer than drift.min_recordings (5)" in by_machine["a"].note and not report.drifted


def test_a_table_without_machine_ids_is_refused_naming_it() -> None:
    with pytest.raises(InputError, match="current: the table has no machine_id column"):
        detect_drift(_table("a", np.random.default_rng(6), 5), pd.DataFrame({"x": [1.0]}), RULE, current_name="current")


def test_sensor_faults_are_named() -> None:
    rng = np.random.default_rng(7)
    reference = _table("a", rng, 50)
    healthy = _table("a", rng, 20)
    assert sensor_faults(reference, healthy) == []

    flat = healthy.assign(vib_rms=np.where(np.arange(20) < 4, 0.0, healthy["vib_rms"]))
    assert [(f.kind, f.recordings) for f in sensor_faults(reference, flat)] == [("flat-lined", 4)]

    dead = healthy.assign(vib_rms=reference["vib_rms"].min() * 0.01)  # 40 dB below anything in training
    (fault,) = sensor_faults(reference, dead)
    assert fault.kind == "disconnected" and fault.recordings == 20 and "30 dB below" in fault.detail

    clipped = healthy.assign(vib_peak=np.where(np.arange(20) < 12, 2.5, healthy["vib_peak"].clip(upper=2.4)))
    (fault,) = sensor_faults(reference, clipped)
    assert fault.kind == "clipped" and fault.recordings == 12

    report = detect_drift(reference, clipped, RULE)
    assert report.drifted and report.machines[0].reasons[0].startswith("sensor clipped: 12 of 20 recordings")
