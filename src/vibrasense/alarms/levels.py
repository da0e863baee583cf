"""Alarm levels learned from normal data at training, kept in the model folder, completed by configuration.

At training (:func:`learn_levels`), from the scores of normal recordings by a model that did not see them (see
:mod:`vibrasense.models.calibration`) and their overall RMS:

- ``warning`` = the model's threshold, raised to the ``WARNING_QUANTILE`` of the normal scores where that is
  higher (with the default 2-of-3 trigger, measured on Mahalanobis-like scores: a healthy machine then warns once
  in 1,700-6,700 snapshots, where the threshold alone, a 95th percentile, warned once in 100-300);
- ``alarm`` = the ``ALARM_QUANTILE`` of normal scores, at least one reset-to-warning span above the warning;
- ``reset`` = the ``RESET_QUANTILE`` of normal scores when below the warning, else half a gap below it (the gap:
  warning − median, at least the scores' standard deviation);
- ``running_rms`` = ``RUNNING_FRACTION`` of the lowest normal overall RMS (a quieter machine is off);
- ``rate_limit`` = the gap over one ``rate_window``, per snapshot (a climb from the median to the warning level
  within one window), and at least the ``RATE_QUANTILE`` of the trend slopes of healthy windows: Theil–Sen slopes
  of ``rate_window`` normal scores drawn at random (``RATE_DRAWS``, seeded), so that the scatter of a healthy
  machine's scores is not taken for a trend.

They are learned once over all normal recordings (the global default) and once per machine id of the
training data; :func:`save_learned_levels` writes them as ``alarm_levels.json`` in the model folder.
:func:`resolve_rules` applies, field by field: the machine's configuration, else the defaults'
(``alarms:``), else the machine's learned level, else the global learned level, else a fallback derived
from the model's threshold (a model folder from before levels were learned, or a scorer with no folder).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from vibrasense.alarms.monitor import Delays, Levels, robust_slopes
from vibrasense.config import AlarmRules
from vibrasense.errors import ConfigError, ModelError

LEVELS_FILE = "alarm_levels.json"
WARNING_QUANTILE = 0.99
ALARM_QUANTILE = 0.995
RESET_QUANTILE = 0.9
RUNNING_FRACTION = 0.1
FALLBACK_SPAN = 0.25
"""Without learned levels: alarm = warning + this × |warning|, reset = warning − this × |warning|."""
DEFAULT_RATE_WINDOW = 10
RATE_QUANTILE = 0.9999
RATE_DRAWS = 50_000


@dataclass(frozen=True)
class AlarmLevels:
    """Score levels of one machine (or all), the machine-off RMS and the rate-of-change limit."""

    warning: float
    alarm: float
    reset: float
    running_rms: float | None = None
    rate_limit: float | None = None
    recordings: int = 0


@dataclass(frozen=True)
class LearnedLevels:
    """What training learned: a global default and, where the training data has machine ids, per machine."""

    default: AlarmLevels
    machines: dict[str, AlarmLevels] = field(default_factory=dict)

    def for_machine(self, machine_id: str) -> AlarmLevels:
        """The machine's levels, else the global default."""
        return self.machines.get(machine_id, self.default)


def learn_levels(
    scores: np.ndarray,
    threshold: float,
    overall_rms: np.ndarray | None = None,
    rate_window: int = DEFAULT_RATE_WINDOW,
) -> AlarmLevels:
    """Levels from the scores (and overall RMS) of normal recordings, out of sample, and the model's threshold."""
    values = np.asarray(scores, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise ModelError("cannot learn alarm levels: no finite score of a normal recording")
    warning = max(float(threshold), float(np.quantile(values, WARNING_QUANTILE)))
    median = float(np.median(values))
    gap = max(warning - median, float(np.std(values)), 1e-9)
    quantile = float(np.quantile(values, RESET_QUANTILE))
    reset = quantile if quantile < warning else warning - gap / 2
    alarm = max(float(np.quantile(values, ALARM_QUANTILE)), warning + (warning - reset))
    rate_limit = max(gap / rate_window, healthy_slope(values, rate_window))
    running = None
    if overall_rms is not None:
        rms = np.asarray(overall_rms, dtype=np.float64)
        rms = rms[np.isfinite(rms) & (rms > 0)]
        running = float(RUNNING_FRACTION * rms.min()) if rms.size else None
    return AlarmLevels(warning, alarm, reset, running, rate_limit, int(values.size))


def healthy_slope(scores: np.ndarray, rate_window: int, seed: int = 0) -> float:
    """The ``RATE_QUANTILE`` of the trend slope over ``rate_window`` normal scores drawn at random: how steep the
    trend of a healthy machine gets by chance."""
    windows = np.random.default_rng(seed).choice(scores, size=(RATE_DRAWS, rate_window), replace=True)
    return float(np.quantile(robust_slopes(windows), RATE_QUANTILE))


def save_learned_levels(folder: Path | str, learned: LearnedLevels) -> Path:
    """Write ``alarm_levels.json`` into a model folder."""
    path = Path(folder) / LEVELS_FILE
    content = {"default": asdict(learned.default), "machines": {k: asdict(v) for k, v in learned.machines.items()}}
    path.write_text(json.dumps(content, indent=2, sort_keys=True))
    return path


def load_learned_levels(folder: Path | str | None) -> LearnedLevels | None:
    """The levels a model folder holds, or ``None`` for a folder without them (trained before they existed)."""
    if folder is None:
        return None
    path = Path(folder) / LEVELS_FILE
    if not path.is_file():
        return None
    try:
        content = json.loads(path.read_text())
        return LearnedLevels(
            AlarmLevels(**content["default"]),
            {machine: AlarmLevels(**levels) for machine, levels in content.get("machines", {}).items()},
        )
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ModelError(
            f"{path}: unreadable alarm levels ({error}); retrain the model with `vibrasense train`"
        ) from None


@dataclass(frozen=True)
class ResolvedRules:
    """Everything the engine needs for one machine, every level decided."""

    levels: Levels | None
    """Score levels; ``None`` when no level and no threshold is known (a summary-only sensor: no score)."""
    delays: Delays
    running_rms: float
    rate_window: int
    rate_limit: float | None
    machine_class: str | None
    acceleration_unit: str
    sound_sensors: frozenset[str]
    source: Mapping[str, str]
    """Where each level came from: ``configured``, ``learned``, ``learned (global)`` or ``fallback``."""


def resolve_rules(
    rules: AlarmRules, learned: LearnedLevels | None, machine_id: str, threshold: float | None
) -> ResolvedRules:
    """The machine's rules: configuration over its learned levels over the global ones over the fallback."""
    mine = learned.machines.get(machine_id) if learned else None
    common = learned.default if learned else None
    source: dict[str, str] = {}

    def pick(name: str, configured: float | None, fallback: float | None) -> float | None:
        if configured is not None:
            source[name] = "configured"
            return configured
        for found, origin in ((mine, "learned"), (common, "learned (global)")):
            value = getattr(found, name) if found is not None else None
            if value is not None:
                source[name] = origin
                return value
        source[name] = "fallback"
        return fallback

    base = threshold if threshold is not None and math.isfinite(threshold) else None
    warning = pick("warning", rules.warning_level, base)
    levels = None
    where = f"alarms (machine {machine_id!r})"
    running = pick("running_rms", rules.running_rms, 0.0)
    rate_window = rules.rate_window or DEFAULT_RATE_WINDOW
    rate_limit = pick("rate_limit", rules.rate_limit, None)
    try:
        if warning is not None:
            span = FALLBACK_SPAN * max(abs(warning), 1e-9)
            alarm = pick("alarm", rules.alarm_level, warning + span)
            reset = pick("reset", rules.reset_level, warning - span)
            levels = Levels(
                warning=float(warning),
                alarm=float(alarm if alarm is not None else warning + span),
                reset=float(reset if reset is not None else warning - span),
            )
        delays = Delays(rules.trigger_count or 2, rules.trigger_window or 3, rules.reset_count or 3)
    except ConfigError as error:
        raise ConfigError(f"{where}: {error} (sources: {source})") from None
    return ResolvedRules(
        levels=levels,
        delays=delays,
        running_rms=float(running) if running is not None else 0.0,
        rate_window=rate_window,
        rate_limit=rate_limit,
        machine_class=rules.machine_class,
        acceleration_unit=rules.acceleration_unit or "g",
        sound_sensors=frozenset(rules.sound_sensors or ()),
        source=source,
    )
