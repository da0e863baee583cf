"""ISO 10816-1 severity against analytic sines: a sine of acceleration amplitude A at f Hz has velocity RMS
A / (2πf·√2)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vibrasense.errors import InputError
from vibrasense.features.severity import STANDARD_GRAVITY, severity_zone, velocity_rms_mm_s, zone_boundaries

RATE = 10_000


def sine(amplitude: float, hz: float, seconds: float = 1.0, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return amplitude * np.sin(2 * np.pi * hz * t)


def analytic_mm_s(amplitude_m_s2: float, hz: float) -> float:
    return amplitude_m_s2 / (2 * math.pi * hz * math.sqrt(2)) * 1000


def test_a_50_hz_sine_of_1_g_has_22_07_mm_s() -> None:
    assert velocity_rms_mm_s(sine(1.0, 50), RATE, "g") == pytest.approx(22.0727, abs=1e-3)
    assert analytic_mm_s(STANDARD_GRAVITY, 50) == pytest.approx(22.0727, abs=1e-3)


@pytest.mark.parametrize(("amplitude", "hz"), [(0.5, 20.0), (2.0, 120.0), (10.0, 500.0), (3.0, 999.0)])
def test_sines_in_m_s2_match_the_analytic_velocity(amplitude: float, hz: float) -> None:
    assert velocity_rms_mm_s(sine(amplitude, hz), RATE, "m/s2") == pytest.approx(analytic_mm_s(amplitude, hz), 1e-6)


def test_tones_outside_10_to_1000_hz_and_an_offset_do_not_count() -> None:
    inside = velocity_rms_mm_s(sine(1.0, 50), RATE)
    mixed = sine(1.0, 50) + sine(5.0, 3000) + sine(1.0, 5) + 0.3  # 3 kHz, 5 Hz and a DC offset (gravity)
    assert velocity_rms_mm_s(mixed, RATE) == pytest.approx(inside, rel=1e-9)


def test_two_tones_add_in_quadrature() -> None:
    both = velocity_rms_mm_s(sine(1.0, 50) + sine(1.0, 100), RATE, "m/s2")
    assert both == pytest.approx(math.hypot(analytic_mm_s(1.0, 50), analytic_mm_s(1.0, 100)), 1e-9)


def test_zones_by_machine_class() -> None:
    assert [severity_zone(v, "I") for v in (0.5, 0.71, 1.0, 3.0, 5.0)] == ["A", "A", "B", "C", "D"]
    assert [severity_zone(v, "IV") for v in (2.0, 5.0, 10.0, 20.0)] == ["A", "B", "C", "D"]
    assert zone_boundaries("II") == (1.12, 2.8, 7.1) and zone_boundaries("III") == (1.8, 4.5, 11.2)
    with pytest.raises(InputError, match="not an ISO 10816-1 class"):
        zone_boundaries("V")


def test_bad_signals_are_refused_naming_the_field() -> None:
    with pytest.raises(InputError) as error:
        velocity_rms_mm_s(np.array([1.0, np.nan, 2.0]), RATE)
    assert error.value.source == "samples"
    with pytest.raises(InputError) as error:
        velocity_rms_mm_s(sine(1.0, 5, rate=15), 15)
    assert error.value.source == "sample_rate"
