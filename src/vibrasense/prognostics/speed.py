"""The shaft speed of a recording that does not state it, from the shaft's own harmonics in its spectrum.

Unbalance and misalignment put lines at the shaft rate and its first harmonics in nearly every machine's
vibration. Within a band around the usual speed, the candidate whose first ``SHAFT_HARMONICS`` multiples stand
highest above the local floor (mean log ratio) is the speed; where they do not stand out (``SHAFT_SUPPORT``),
nothing is claimed and the diagnosis searches by the defect lines instead.
"""

from __future__ import annotations

import numpy as np
import scipy.signal

SHAFT_HARMONICS = 8
SHAFT_SUPPORT = 1.5  # mean natural-log ratio of the harmonics over the floor: ~4.5x; CWRU records give 2.9-4.5
SPEED_RESOLUTION = 0.0005  # candidates 0.05 % apart
FLOOR_BINS = 40  # the floor is the median of this many bins either side of a line


def shaft_speed_from_harmonics(
    samples: np.ndarray, sample_rate: float, nominal_hz: float, span: float
) -> tuple[float, float] | None:
    """(speed in Hz, support) of the best-supported candidate in ``nominal_hz`` ± ``span``; None if unsupported."""
    x = np.asarray(samples, dtype=np.float64)
    nperseg = min(len(x), int(sample_rate * 8))  # 0.125 Hz bins: 0.4 % of a 30 Hz shaft at the first line
    freqs, power = scipy.signal.welch(x - x.mean(), sample_rate, nperseg=nperseg)
    amplitudes, step = np.sqrt(power), freqs[1] - freqs[0]
    lowest, highest = (1 - span) * nominal_hz / step, (1 + span) * nominal_hz * SHAFT_HARMONICS / step
    if lowest < FLOOR_BINS + 2 or highest + FLOOR_BINS + 2 >= len(freqs):
        return None
    candidates = nominal_hz * (1 + np.arange(-span, span + SPEED_RESOLUTION / 2, SPEED_RESOLUTION))
    support = np.zeros(len(candidates))
    for k in range(1, SHAFT_HARMONICS + 1):
        index = np.rint(k * candidates / step).astype(int)
        peak = np.max([amplitudes[index + d] for d in (-1, 0, 1)], axis=0)
        around = np.stack([amplitudes[i - FLOOR_BINS : i + FLOOR_BINS] for i in index])
        support += np.log(peak / np.maximum(np.median(around, axis=1), 1e-300))
    support /= SHAFT_HARMONICS
    best = int(np.argmax(support))
    return (float(candidates[best]), float(support[best])) if support[best] >= SHAFT_SUPPORT else None
