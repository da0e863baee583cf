"""The alarm rule: k of n, latched until a reset, and the run-in and baseline that come before it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vibrasense.errors import InputError
from vibrasense.prognostics.alarm import k_of_n_alarm, latched_alarm, switches
from vibrasense.prognostics.health import HealthSettings, health_index
from vibrasense.prognostics.report import format_duration, prognosis_table


def _run(values: list[float] | np.ndarray) -> pd.DataFrame:
    times = pd.date_range("2024-01-01", periods=len(values), freq="10s", tz="UTC")
    return pd.DataFrame({"machine_id": "m", "event_timestamp": times, "vib_rms": values})


def _flickering(seed: int = 0) -> np.ndarray:
    """A healthy stretch, then a level that doubles and keeps dipping back to healthy every few snapshots."""
    rng = np.random.default_rng(seed)
    healthy = 1 + 0.02 * rng.standard_normal(100)
    worn = np.tile([3.0, 3.0, 3.0, 3.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0], 6) * (1 + 0.02 * rng.standard_normal(60))
    return np.concatenate([healthy, worn])


def test_latched_alarm_stays_on_until_a_reset_and_rearms_after_it() -> None:
    above = np.array([0, 1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0], dtype=bool)
    assert k_of_n_alarm(above, 3, 5).astype(int).tolist() == [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 1]
    assert latched_alarm(above, 3, 5).astype(int).tolist() == [0, 0, 0] + [1] * 11
    # reset at 6: off from there; the count starts again at 6, so the second burst raises it again at 11
    assert latched_alarm(above, 3, 5, resets=[6]).astype(int).tolist() == [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 1]
    assert switches(latched_alarm(above, 3, 5)) == 1 and switches(k_of_n_alarm(above, 3, 5)) == 3


def test_a_flickering_level_raises_one_latched_alarm_that_a_reset_clears() -> None:
    run = _run(_flickering())
    result = health_index(run)
    usable = result.table[~result.table["sensor_fault"]]
    raw = k_of_n_alarm(usable["above"].to_numpy(), 3, 5)
    assert switches(raw) > 8  # the unlatched rule follows every dip
    assert switches(usable["alarm"]) == 1 and usable["alarm"].iloc[-1]
    # the level doubles at 100; its running median (5) is above from 102, and 3 of 5 are above at 104
    assert result.first_alarm == run["event_timestamp"].iloc[104]
    reset = run["event_timestamp"].iloc[105]  # acknowledged: off from 106, raised by the next burst (112-115)
    again = health_index(run, resets=[reset])
    flags = again.table["alarm"].to_numpy()
    assert flags[104:106].all() and not flags[106:114].any() and flags[114:].all()
    assert again.first_alarm == result.first_alarm  # the first alarm happened; a reset does not undo it


def test_run_in_is_ignored_and_the_baseline_is_a_fixed_count_from_the_start() -> None:
    settings = HealthSettings()
    values = _flickering()
    values[:3] = 20.0  # a start-up transient in the run-in
    result = health_index(_run(values))
    phases = result.table["phase"]
    assert (phases.iloc[: settings.run_in] == "run-in").all() and result.table["health_index"].iloc[:5].isna().all()
    assert (phases.iloc[settings.run_in : settings.min_snapshots] == "baseline").all()
    assert (phases.iloc[settings.min_snapshots :] == "monitoring").all()
    assert not result.table["alarm"].iloc[: settings.min_snapshots].any()
    assert result.first_alarm == health_index(_run(_flickering())).first_alarm  # the transient changed nothing
    with pytest.raises(InputError, match="need 65 before anything is monitored"):
        health_index(_run(values[:64]))


def test_a_level_that_falls_is_no_wear_and_the_alarm_waits_for_a_doubling() -> None:
    rng = np.random.default_rng(3)
    healthy = 1 + 0.01 * rng.standard_normal(100)
    quieter = health_index(_run(np.concatenate([healthy, 0.5 * healthy])))
    assert quieter.first_alert is None and quieter.first_alarm is None  # halved: no wear
    louder = health_index(_run(np.concatenate([healthy, 1.5 * healthy, 2.5 * healthy])))
    times = louder.table["event_timestamp"]
    # +50 % is far outside a 1 % baseline: an alert (the onset); the alarm waits until the level has doubled
    assert times.iloc[100] <= louder.onset <= louder.first_alert < times.iloc[110]
    assert times.iloc[200] <= louder.first_alarm < times.iloc[210]
    assert louder.threshold > louder.alert_threshold


def test_prognosis_up_to_a_snapshot_is_the_same_whatever_follows() -> None:
    run = _run(_flickering(seed=4))
    full, _ = prognosis_table(run)
    for cut in (65, 90, 101, 103, 140):
        part, _ = prognosis_table(run.iloc[:cut])
        pd.testing.assert_frame_equal(part, full.iloc[:cut])


def test_durations_read_at_a_glance() -> None:
    assert format_duration(94 / 3600) == "1 min 34 s"
    assert format_duration(45 / 3600) == "45 s"
    assert format_duration(1.25) == "1 h 15 min"
    assert format_duration(74.46) == "74.5 h"
    assert format_duration(float("nan")) == "-"
