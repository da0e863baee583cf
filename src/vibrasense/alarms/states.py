"""The states of a sensor and of a machine, and the rule that combines a machine's sensors."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

State = Literal["not_running", "ok", "warning", "alarm"]
STATES: tuple[State, ...] = ("not_running", "ok", "warning", "alarm")
"""From least to most severe."""
ActiveState = Literal["ok", "warning", "alarm"]


def worst(states: Iterable[State]) -> State:
    """The most severe of ``states`` (``not_running`` for none)."""
    return max(states, key=STATES.index, default="not_running")


def machine_state(sensor_states: Iterable[State]) -> State:
    """A machine's state from its sensors': the worst running sensor's; ``not_running`` only when all are."""
    running = [state for state in sensor_states if state != "not_running"]
    return worst(running) if running else "not_running"
