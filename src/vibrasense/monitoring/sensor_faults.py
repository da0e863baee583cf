"""Sensor faults read off the features: a channel flat-lined, clipped, or disconnected counts as drift too.

- *flat-lined*: no variation at all (RMS after the mean is removed is zero): a stuck converter or a
  channel held at a constant.
- *disconnected*: a level far below anything seen in training (``DEAD_LEVEL_DB`` under the reference's
  lowest RMS): only the noise floor of an open input is left.
- *clipped*: many recordings share the same peak (within ``CLIP_TOLERANCE``) while the reference's peaks
  vary: the signal is cut at the converter's or the amplifier's limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

LEVEL_COLUMN = "vib_rms"
PEAK_COLUMN = "vib_peak"
DEAD_LEVEL_DB = 30.0
CLIP_TOLERANCE = 0.005
CLIPPED_SHARE = 0.3
MIN_CLIPPED = 3

FaultKind = Literal["flat-lined", "disconnected", "clipped"]


@dataclass(frozen=True)
class SensorFault:
    """A fault seen on a machine's channel in the current recordings."""

    kind: FaultKind
    recordings: int
    detail: str


def sensor_faults(reference: pd.DataFrame, current: pd.DataFrame) -> list[SensorFault]:
    """The faults of ``current`` recordings (one machine), judged against its ``reference`` recordings."""
    if LEVEL_COLUMN not in current or current.empty:
        return []
    level = current[LEVEL_COLUMN].to_numpy(dtype=np.float64)
    reference_level = reference[LEVEL_COLUMN].to_numpy(dtype=np.float64)
    reference_level = reference_level[np.isfinite(reference_level) & (reference_level > 0)]
    faults: list[SensorFault] = []
    flat = int(np.sum(level == 0))
    if flat:
        faults.append(SensorFault("flat-lined", flat, f"{flat} of {len(level)} recordings hold a constant value"))
    if reference_level.size:
        floor = reference_level.min() * 10 ** (-DEAD_LEVEL_DB / 20)
        dead = int(np.sum((level > 0) & (level < floor)))
        if dead:
            faults.append(
                SensorFault(
                    "disconnected",
                    dead,
                    f"{dead} of {len(level)} recordings are more than {DEAD_LEVEL_DB:g} dB below the lowest training "
                    f"level ({LEVEL_COLUMN} < {floor:.3g}, training minimum {reference_level.min():.3g})",
                )
            )
    clipped = _clipped(current, reference)
    if clipped is not None:
        faults.append(clipped)
    return faults


def _clipped(current: pd.DataFrame, reference: pd.DataFrame) -> SensorFault | None:
    if PEAK_COLUMN not in current:
        return None
    peaks = _positive(current[PEAK_COLUMN])
    if peaks.size < MIN_CLIPPED:
        return None
    at_limit = _at_limit(peaks)
    reference_peaks = _positive(reference[PEAK_COLUMN])
    reference_share = _at_limit(reference_peaks) / reference_peaks.size if reference_peaks.size else 0.0
    if at_limit < max(MIN_CLIPPED, CLIPPED_SHARE * peaks.size) or reference_share >= CLIPPED_SHARE:
        return None
    return SensorFault(
        "clipped",
        at_limit,
        f"{at_limit} of {peaks.size} recordings peak at the same level ({peaks.max():.4g}, within "
        f"{CLIP_TOLERANCE:.1%}); in training {reference_share:.0%} did",
    )


def _positive(values: pd.Series) -> np.ndarray:
    peaks = values.to_numpy(dtype=np.float64)
    return peaks[np.isfinite(peaks) & (peaks > 0)]


def _at_limit(peaks: np.ndarray) -> int:
    """How many of the (finite, positive) peaks lie within ``CLIP_TOLERANCE`` of the largest."""
    return int(np.sum(peaks >= peaks.max() * (1 - CLIP_TOLERANCE))) if peaks.size else 0
