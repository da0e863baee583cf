"""The level monitor with synthetic score sequences: trigger delay, escalation, hysteresis, reset delay."""

from __future__ import annotations

import pytest

from vibrasense.alarms import LevelMonitor, slope
from vibrasense.alarms.monitor import Delays, Levels
from vibrasense.errors import ConfigError

LEVELS = Levels(warning=1.0, alarm=2.0, reset=0.8)


def run(values: list[float], delays: Delays = Delays(2, 3, 3)) -> list[str]:
    monitor = LevelMonitor(LEVELS, delays)
    return [monitor.update(value) for value in values]


def test_one_high_score_is_no_warning_two_of_three_are() -> None:
    assert run([0.5, 1.5, 0.5, 0.5]) == ["ok"] * 4
    assert run([0.5, 1.5, 0.9, 1.2]) == ["ok", "ok", "ok", "warning"]  # 2 of the last 3 above 1.0
    assert run([1.5, 0.5, 0.5, 1.5]) == ["ok"] * 4  # the first high one left the window


def test_warning_escalates_to_alarm_and_an_alarm_at_once_skips_warning() -> None:
    assert run([1.5, 1.5, 2.5, 2.5]) == ["ok", "warning", "warning", "alarm"]
    assert run([0.1, 3.0, 3.0]) == ["ok", "ok", "alarm"]


def test_hysteresis_between_reset_and_warning_keeps_the_state() -> None:
    states = run([1.5, 1.5] + [0.9] * 10)  # below the warning, above the reset level
    assert states[1:] == ["warning"] * 11


def test_reset_needs_m_consecutive_values_below_the_reset_level() -> None:
    states = run([3, 3, 0.5, 0.5, 0.9, 0.5, 0.5, 0.5, 0.5])
    assert states == ["ok", "alarm", "alarm", "alarm", "alarm", "alarm", "alarm", "ok", "ok"]


def test_an_alarm_never_steps_down_to_warning_only_to_ok_via_reset() -> None:
    states = run([3, 3, 1.5, 1.5, 1.5, 0.5, 0.5, 0.5])
    assert states == ["ok", "alarm", "alarm", "alarm", "alarm", "alarm", "alarm", "ok"]


def test_after_a_reset_old_high_scores_do_not_retrigger() -> None:
    states = run([3, 3, 0.1, 1.5, 0.1], Delays(2, 5, 1))  # m=1 < n=5: the window is cleared at the reset
    assert states == ["ok", "alarm", "ok", "ok", "ok"]


def test_a_monitor_can_start_from_an_open_alarm() -> None:
    monitor = LevelMonitor(LEVELS, Delays(2, 3, 2), state="alarm")
    assert [monitor.update(v) for v in (0.5, 0.5)] == ["alarm", "ok"]


def test_inconsistent_levels_and_delays_are_refused_naming_them() -> None:
    with pytest.raises(ConfigError, match="reset_level < warning_level <= alarm_level"):
        Levels(warning=1.0, alarm=2.0, reset=1.0)
    with pytest.raises(ConfigError, match="reset_level < warning_level <= alarm_level"):
        Levels(warning=2.0, alarm=1.0, reset=0.5)
    with pytest.raises(ConfigError, match="trigger_count"):
        Delays(4, 3, 1)


def test_slope_is_the_least_squares_rise_per_step() -> None:
    assert slope([1.0, 1.5, 2.0, 2.5]) == pytest.approx(0.5)
    assert slope([3.0, 1.0, 3.0, 1.0, 3.0]) == pytest.approx(0.0)
    assert slope([4.0]) == 0.0
