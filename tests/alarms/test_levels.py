"""Alarm levels learned from normal scores, saved in a model folder, and resolved against the configuration."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from vibrasense.alarms import (
    AlarmEngine,
    AlarmLevels,
    LearnedLevels,
    Snapshot,
    learn_levels,
    load_learned_levels,
    resolve_rules,
    save_learned_levels,
)
from vibrasense.alarms.levels import healthy_slope
from vibrasense.config import AlarmRules, load_settings
from vibrasense.errors import ConfigError, ModelError


def normal_scores(n: int = 1000, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(1.0, 0.1, n)


def test_levels_from_normal_scores_are_quantiles_around_the_threshold() -> None:
    scores = normal_scores()
    threshold = float(np.quantile(scores, 0.95))
    rms = np.random.default_rng(1).uniform(0.2, 0.5, scores.size)
    levels = learn_levels(scores, threshold, rms, rate_window=10)
    assert levels.warning == pytest.approx(np.quantile(scores, 0.99))  # above the 95 % threshold: raised to it
    assert levels.reset == pytest.approx(np.quantile(scores, 0.9))
    assert levels.alarm == pytest.approx(max(np.quantile(scores, 0.995), 2 * levels.warning - levels.reset))
    assert levels.reset < levels.warning < levels.alarm
    assert levels.running_rms == pytest.approx(0.1 * rms.min())
    gap = levels.warning - np.median(scores)
    # the scatter of healthy scores (sd 0.1) makes 10-snapshot slopes steeper than the climb gap / 10 by chance
    assert levels.rate_limit > gap / 10 and levels.rate_limit == pytest.approx(healthy_slope(scores, 10))
    assert levels.recordings == 1000


def test_a_threshold_above_the_normal_scores_stays_the_warning_level() -> None:
    scores = normal_scores()
    threshold = float(scores.max() + 0.5)  # a gamma threshold far out
    levels = learn_levels(scores, threshold, rate_window=10)
    assert levels.warning == threshold
    assert levels.rate_limit == pytest.approx((threshold - np.median(scores)) / 10)  # the climb is steeper here


def raised(levels: AlarmLevels, scores: np.ndarray) -> dict[str, int]:
    """Alarms raised per condition when ``scores`` stream through the engine, one snapshot a minute."""
    engine = AlarmEngine()
    rules = resolve_rules(AlarmRules(), LearnedLevels(levels), "pump-1", levels.warning)
    counts = {"score": 0, "rate": 0}
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for k, score in enumerate(scores):
        snapshot = Snapshot("pump-1", "mic", start + timedelta(minutes=k), True, float(score), None)
        for event in engine.observe(snapshot, rules).events:
            counts[event.condition] += event.kind == "raised"
    return counts


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_healthy_machine_hardly_ever_warns_and_a_failing_one_does(seed: int) -> None:
    rng = np.random.default_rng(seed)
    chi2 = lambda n: rng.chisquare(26, n) / 26  # noqa: E731 (Mahalanobis-like scores of 26 features)
    training = chi2(200)
    levels = learn_levels(training, float(np.quantile(training, 0.95)), rate_window=10)
    healthy = raised(levels, chi2(20_000))
    # measured: 3-12 score warnings and 0-2 rate warnings in 20,000 snapshots (with the 95 % threshold as the
    # warning level and a least-squares slope against gap / 10: 65-189 and 4-14)
    assert healthy["score"] <= 20 and healthy["rate"] <= 4, healthy
    failing = raised(levels, np.concatenate([chi2(50), np.median(training) + 0.3 * np.arange(30) + chi2(30) - 1]))
    assert failing["score"] >= 1 and failing["rate"] >= 1, failing


def test_levels_stay_ordered_when_the_threshold_is_below_the_reset_quantile() -> None:
    scores = normal_scores()
    levels = learn_levels(scores, float(np.quantile(scores, 0.5)))  # a gamma threshold may sit anywhere
    assert levels.reset < levels.warning < levels.alarm and levels.running_rms is None
    with pytest.raises(ModelError, match="no finite score"):
        learn_levels(np.array([np.nan]), 1.0)


def test_learned_levels_round_trip_through_the_model_folder(tmp_path: Path) -> None:
    learned = LearnedLevels(learn_levels(normal_scores(), 1.2), {"fan-1": learn_levels(normal_scores(seed=3), 1.2)})
    save_learned_levels(tmp_path, learned)
    assert load_learned_levels(tmp_path) == learned
    assert load_learned_levels(tmp_path / "absent") is None and load_learned_levels(None) is None
    (tmp_path / "alarm_levels.json").write_text("{not json")
    with pytest.raises(ModelError, match=r"alarm_levels\.json: unreadable"):
        load_learned_levels(tmp_path)


def test_configuration_overrides_what_was_learned_machine_by_machine() -> None:
    learned = LearnedLevels(learn_levels(normal_scores(), 1.2), {"fan-1": learn_levels(normal_scores(seed=3), 1.3)})
    settings = load_settings(
        None,
        alarms={"alarm_level": 9.0, "machines": {"fan-1": {"warning_level": 1.5, "machine_class": "III"}}},
    )
    fan = resolve_rules(settings.alarms.rules("fan-1"), learned, "fan-1", threshold=1.2)
    assert (fan.levels.warning, fan.levels.alarm) == (1.5, 9.0)
    assert fan.levels.reset == learned.machines["fan-1"].reset and fan.machine_class == "III"
    assert fan.source["warning"] == "configured" and fan.source["reset"] == "learned"
    other = resolve_rules(settings.alarms.rules("pump-9"), learned, "pump-9", threshold=1.2)
    assert other.levels.warning == learned.default.warning and other.source["warning"] == "learned (global)"
    assert other.machine_class is None and other.delays.trigger_count == 2


def test_without_learned_levels_the_threshold_gives_the_fallback() -> None:
    rules = resolve_rules(AlarmRules(), None, "m", threshold=2.0)
    assert (rules.levels.warning, rules.levels.alarm, rules.levels.reset) == (2.0, 2.5, 1.5)
    assert rules.running_rms == 0.0 and rules.source["alarm"] == "fallback"
    assert resolve_rules(AlarmRules(), None, "m", threshold=None).levels is None


def test_inconsistent_configured_levels_are_refused_naming_the_machine() -> None:
    with pytest.raises(ConfigError, match=r"machine 'fan-1'.*reset_level < warning_level"):
        resolve_rules(AlarmRules(warning_level=1.0, reset_level=2.0), None, "fan-1", threshold=1.0)
    with pytest.raises(ConfigError, match="trigger_count"):
        resolve_rules(AlarmRules(trigger_count=5, trigger_window=3), None, "fan-1", threshold=1.0)
