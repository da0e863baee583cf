"""ISO 10816-1 vibration severity: velocity RMS in 10–1000 Hz from an acceleration signal, and its zone.

The acceleration (in ``g`` = 9.80665 m/s², or in m/s²) is integrated in the frequency domain: each FFT bin of
the band is divided by j·2πf, and the velocity RMS follows from Parseval over the band's bins (rectangular
window: exact for a whole number of periods; leakage of other tones spreads over neighbouring bins, which the
band sum mostly keeps). The zones of a machine class:

====== ============ ============ ============
class  A | B (mm/s) B | C (mm/s) C | D (mm/s)
====== ============ ============ ============
I      0.71         1.8          4.5
II     1.12         2.8          7.1
III    1.8          4.5          11.2
IV     2.8          7.1          18.0
====== ============ ============ ============

A: newly commissioned; B: unrestricted long-term operation; C: restricted operation; D: damage likely.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.fft

from vibrasense.errors import InputError

STANDARD_GRAVITY = 9.80665
"""m/s² in one g."""
BAND_HZ = (10.0, 1000.0)
ZONE_BOUNDARIES_MM_S: dict[str, tuple[float, float, float]] = {
    "I": (0.71, 1.8, 4.5),
    "II": (1.12, 2.8, 7.1),
    "III": (1.8, 4.5, 11.2),
    "IV": (2.8, 7.1, 18.0),
}
Zone = Literal["A", "B", "C", "D"]
AccelerationUnit = Literal["g", "m/s2"]


def zone_boundaries(machine_class: str) -> tuple[float, float, float]:
    """The A|B, B|C and C|D boundaries (mm/s) of an ISO 10816-1 machine class."""
    try:
        return ZONE_BOUNDARIES_MM_S[machine_class]
    except KeyError:
        raise InputError(
            "machine_class", f"{machine_class!r} is not an ISO 10816-1 class: use I, II, III or IV"
        ) from None


def velocity_rms_mm_s(
    acceleration: np.ndarray,
    sample_rate: float,
    unit: AccelerationUnit = "g",
    band_hz: tuple[float, float] = BAND_HZ,
) -> float:
    """Velocity RMS (mm/s) in ``band_hz`` of an acceleration signal sampled at ``sample_rate`` Hz."""
    x = np.asarray(acceleration, dtype=np.float64)
    if x.ndim != 1 or x.size < 2 or not np.isfinite(x).all():
        raise InputError("samples", "need a 1-D acceleration signal of at least two finite samples")
    if sample_rate <= 2 * band_hz[0]:
        raise InputError("sample_rate", f"{sample_rate:g} Hz cannot carry the {band_hz[0]:g} Hz band start")
    scale = STANDARD_GRAVITY if unit == "g" else 1.0
    n = x.size
    spectrum = scipy.fft.rfft((x - x.mean()) * scale)
    freqs = scipy.fft.rfftfreq(n, 1.0 / sample_rate)
    inside = (freqs >= band_hz[0]) & (freqs <= band_hz[1])
    velocity = np.abs(spectrum[inside]) / (2 * np.pi * freqs[inside])  # |A / (j 2π f)|
    weights = np.full(velocity.size, 2.0)  # one-sided spectrum: each bin stands for itself and its mirror
    if n % 2 == 0 and inside[-1]:
        weights[-1] = 1.0  # the Nyquist bin has no mirror
    mean_square = float(np.sum(weights * velocity**2)) / n**2
    return float(np.sqrt(mean_square) * 1000.0)


def severity_zone(velocity_mm_s: float, machine_class: str) -> Zone:
    """The ISO 10816-1 zone of a velocity RMS for a machine class (a value on a boundary is the lower zone)."""
    ab, bc, cd = zone_boundaries(machine_class)
    if velocity_mm_s <= ab:
        return "A"
    if velocity_mm_s <= bc:
        return "B"
    return "C" if velocity_mm_s <= cd else "D"
