"""Clips and settings for the alarm tests: healthy, mildly and strongly anomalous, and a machine that is off.

With :func:`alarm_settings` the test scorer's levels are: warning at its threshold (about 1.39), alarm at
10, reset at 0.75 × the threshold (about 1.04). Healthy training clips (seeds 0-7) score below 0.93 (under
the reset level), :func:`mild_clip` about 1.6-1.9 (a warning), :func:`faulty_clip` about 52 (an alarm), and
:func:`quiet_clip` has an overall RMS of 0.001, under the running threshold 0.01 (not running).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from synthetic_machines import RATE, healthy_clip

from vibrasense.config import Settings, load_settings

ALARM_LEVEL = 10.0
RUNNING_RMS = 0.01


def alarm_settings(workdir: Path, **serving: Any) -> Settings:
    """Settings with an API key, the alarm level at 10, the machine-off gate at RMS 0.01, and motor-1 class II."""
    return load_settings(
        None,
        workdir=workdir,
        serving={"api_key": "test-key", **serving},
        alarms={
            "alarm_level": ALARM_LEVEL,
            "running_rms": RUNNING_RMS,
            "machines": {"motor-1": {"machine_class": "II"}},
        },
    )


def mild_clip(seed: int) -> np.ndarray:
    """A healthy clip with a faint 3.2 kHz whine: above the threshold, below the alarm level."""
    t = np.arange(RATE) / RATE
    return (healthy_clip(seed) + 0.01 * np.sin(2 * np.pi * 3200 * t)).astype(np.float32)


def quiet_clip(seed: int) -> np.ndarray:
    """A machine that is off: sensor noise only."""
    return (0.001 * np.random.default_rng(seed).standard_normal(RATE)).astype(np.float32)


def sine_g(amplitude_g: float, hz: float = 50.0) -> list[float]:
    """An accelerometer reading in g: one second of a sine."""
    t = np.arange(RATE) / RATE
    return (amplitude_g * np.sin(2 * np.pi * hz * t)).tolist()
