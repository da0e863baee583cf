"""One level monitor: a value stream against a warning and an alarm level, with trigger delay and hysteresis."""

from __future__ import annotations

import functools
import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from vibrasense.alarms.states import ActiveState
from vibrasense.errors import ConfigError


@dataclass(frozen=True)
class Levels:
    """``reset < warning <= alarm``; a value strictly above a level counts as above it."""

    warning: float
    alarm: float
    reset: float

    def __post_init__(self) -> None:
        if any(math.isnan(v) for v in (self.warning, self.alarm, self.reset)):
            raise ConfigError(f"alarm levels must be numbers, got {self}")
        if not self.reset < self.warning <= self.alarm:
            raise ConfigError(
                f"alarm levels need reset_level < warning_level <= alarm_level, got reset {self.reset:g}, "
                f"warning {self.warning:g}, alarm {self.alarm:g}"
            )


@dataclass(frozen=True)
class Delays:
    """Trigger: ``trigger_count`` of the last ``trigger_window`` above a level; reset: ``reset_count`` in a row."""

    trigger_count: int
    trigger_window: int
    reset_count: int

    def __post_init__(self) -> None:
        if not 1 <= self.trigger_count <= self.trigger_window:
            raise ConfigError(
                f"alarms.trigger_count ({self.trigger_count}) must be between 1 and alarms.trigger_window "
                f"({self.trigger_window})"
            )
        if self.reset_count < 1:
            raise ConfigError(f"alarms.reset_count must be at least 1, got {self.reset_count}")


class LevelMonitor:
    """ok → warning → alarm by trigger delay; back to ok only after the reset delay below the reset level.

    - *warning*: ``k`` of the last ``n`` values above the warning level (from ok);
    - *alarm*: ``k`` of the last ``n`` values above the alarm level (from ok or warning: escalation);
    - *ok*: ``m`` consecutive values below the reset level, from warning or alarm; an alarm never steps down
      to warning, and a value between the reset and the warning level keeps the state (hysteresis).
    """

    def __init__(self, levels: Levels, delays: Delays, state: ActiveState = "ok") -> None:
        self.levels = levels
        self.delays = delays
        self.state: ActiveState = state
        self._recent: deque[float] = deque(maxlen=delays.trigger_window)
        self._below = 0

    def update(self, value: float) -> ActiveState:
        """The state after one more value."""
        levels, delays = self.levels, self.delays
        self._below = self._below + 1 if value < levels.reset else 0
        if self.state != "ok" and self._below >= delays.reset_count:
            self.state = "ok"
            self._recent.clear()
            return self.state
        self._recent.append(value)
        if sum(v > levels.alarm for v in self._recent) >= delays.trigger_count:
            self.state = "alarm"
        elif self.state == "ok" and sum(v > levels.warning for v in self._recent) >= delays.trigger_count:
            self.state = "warning"
        return self.state


def slope(values: list[float] | deque[float]) -> float:
    """Theil–Sen slope of ``values`` per step (0 for fewer than two): see :func:`robust_slopes`."""
    if len(values) < 2:
        return 0.0
    return float(robust_slopes(np.asarray(values, dtype=np.float64)[None, :])[0])


def robust_slopes(rows: np.ndarray) -> np.ndarray:
    """Theil–Sen slope of each row of ``rows`` (windows × steps), per step: the median of the slopes between every
    pair of points, as ``scipy.stats.theilslopes`` estimates it. Unlike a least-squares fit, one outlying snapshot
    (up to 29 % of them) does not make a trend."""
    first, second, steps = _pairs(rows.shape[1])
    return np.median((rows[:, second] - rows[:, first]) / steps, axis=1)


@functools.lru_cache(maxsize=16)
def _pairs(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The indices of every pair of ``n`` points, earlier one first, and the steps between them."""
    first, second = np.triu_indices(n, k=1)
    return first, second, (second - first).astype(np.float64)
