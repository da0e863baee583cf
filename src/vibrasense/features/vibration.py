"""Vibration features: level and shape statistics, FFT band energies, envelope lines at defect frequencies.

The envelope spectrum is the classical bearing diagnostic: a defect's impacts excite a structural resonance
at the rate the rolling elements pass the defect, so the amplitude envelope of the resonance band carries
lines at BPFO, BPFI, 2·BSF or FTF. The band is chosen where the band-passed signal is most impulsive
(largest kurtosis of its envelope, a light-weight kurtogram) unless given.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np
import scipy.fft

from vibrasense.config import VibrationSettings
from vibrasense.features import welch
from vibrasense.features.names import ENVELOPE_FEATURES
from vibrasense.signals.bearings import BearingGeometry, defect_frequencies

ENVELOPE_MAX_HZ = 1_000.0  # envelope spectra are read up to here; defect lines of interest lie well below


def vibration_features(
    samples: np.ndarray,
    sample_rate: float,
    settings: VibrationSettings,
    bearing: BearingGeometry | None = None,
    shaft_hz: float | None = None,
    bands: dict[str, float] | None = None,
) -> dict[str, float]:
    """Every vibration feature of one signal; the envelope features are NaN when no bearing is known.

    ``bands`` are the band energies when already computed from the log-mel's frames (see :mod:`welch`).
    """
    x = np.array(samples, dtype=np.float64)  # a copy, centred in place
    x -= x.mean()
    squared = x * x
    variance = float(squared.mean())
    rms = float(np.sqrt(variance))
    peak = max(float(x.max()), -float(x.min()))
    # central moments in one pass over x: scipy.stats' biased skewness and (Fisher) kurtosis, without its copies
    skewness = float(np.dot(squared, x)) / len(x) / variance**1.5 if variance > 0 else 0.0
    kurtosis = float(np.dot(squared, squared)) / len(x) / variance**2 - 3.0 if variance > 0 else 0.0
    features = {
        "vib_rms": rms,
        "vib_peak": peak,
        "vib_crest_factor": peak / rms if rms > 0 else 0.0,
        "vib_kurtosis": kurtosis,
        "vib_skewness": skewness,
    }
    if bands is None:  # Welch's from the samples as given, as from the log-mel's frames; the periodogram centred
        bands = (
            welch.band_energies(samples, sample_rate, settings.band_edges_hz, settings.band_frame)
            if settings.band_estimator == "welch"
            else periodogram_band_energies(x, sample_rate, settings.band_edges_hz)
        )
    features.update(bands)
    features.update(envelope_features(x, sample_rate, bearing, shaft_hz))
    return features


def periodogram_band_energies(x: np.ndarray, sample_rate: float, edges: list[float]) -> dict[str, float]:
    """Mean-square energy in each FFT band [low, high); bands covering all frequencies sum to the variance.

    Each band's periodogram bins are summed and then scaled (one pass over the spectrum, not three). A band
    above the Nyquist frequency holds no bins, so its energy is 0.0 (never NaN).
    """
    n = len(x)
    spectrum = scipy.fft.rfft(x)
    power = np.square(spectrum.real)
    power += np.square(spectrum.imag)
    names, positions = _band_layout(n, float(sample_rate), tuple(edges))
    single = (0, n // 2) if n % 2 == 0 else (0,)  # one-sided spectrum: every other bin counts twice
    energies = {}
    for name, (start, stop) in zip(names, itertools.pairwise(positions), strict=True):
        total = 2.0 * float(power[start:stop].sum())
        total -= sum(float(power[k]) for k in single if start <= k < stop)
        energies[name] = total / n**2
    return energies


@functools.lru_cache(maxsize=64)
def _band_layout(n: int, sample_rate: float, edges: tuple[float, ...]) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """The band columns and the first FFT bin at or above each edge, for ``n`` samples at ``sample_rate``."""
    freqs = np.fft.rfftfreq(n, 1.0 / sample_rate)
    positions = np.searchsorted(freqs, edges, side="left")
    names = welch.band_names(edges)
    return names, tuple(int(p) for p in positions)


def envelope_spectrum(
    samples: np.ndarray, sample_rate: float, band: tuple[float, float] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(frequencies, amplitudes) of the envelope of ``samples`` band-passed to ``band`` (Hz).

    Without a band, the most impulsive one of a set of candidate bands is taken (``impulsive_band``).
    """
    x = np.asarray(samples, dtype=np.float64)
    spectrum = scipy.fft.rfft(x - x.mean())
    freqs = np.fft.rfftfreq(len(x), 1.0 / sample_rate)
    low, high = band or impulsive_band(spectrum, freqs, len(x))
    envelope = _envelope(spectrum, freqs, low, high, len(x))
    amplitudes = np.abs(scipy.fft.rfft(envelope - envelope.mean())) * 2 / len(x)
    return np.fft.rfftfreq(len(x), 1.0 / sample_rate), amplitudes


def impulsive_band(spectrum: np.ndarray, freqs: np.ndarray, n: int) -> tuple[float, float]:
    """The candidate band whose envelope has the largest kurtosis (1/3-octave-wide bands above 500 Hz)."""
    nyquist = freqs[-1]
    best, best_kurtosis = (0.0, nyquist), -np.inf
    for width in (nyquist / 4, nyquist / 8):
        for low in np.arange(max(500.0, width / 2), nyquist - width + 1e-9, width / 2):
            kurtosis = _kurtosis(_envelope(spectrum, freqs, low, low + width, n))
            if kurtosis > best_kurtosis:
                best, best_kurtosis = (float(low), float(low + width)), kurtosis
    return best


def _kurtosis(x: np.ndarray) -> float:
    """Fisher kurtosis, biased, as ``scipy.stats.kurtosis`` gives it, without its per-call overhead (about 1 ms,
    which made band selection most of a snapshot's cost); -inf for a constant signal, which scipy calls NaN."""
    mean = x.mean()
    deviation = x - mean
    squared = deviation * deviation
    m2 = squared.mean()
    if m2 <= (np.finfo(np.float64).resolution * abs(mean)) ** 2:
        return -np.inf
    return float(np.dot(squared, squared) / len(x) / m2**2 - 3.0)


def _envelope(spectrum: np.ndarray, freqs: np.ndarray, low: float, high: float, n: int) -> np.ndarray:
    """|analytic signal| of the band [low, high), computed in the frequency domain."""
    analytic = np.zeros(n, dtype=np.complex128)
    keep = (freqs >= low) & (freqs < high)
    analytic[: len(spectrum)][keep] = 2 * spectrum[keep]
    return np.abs(scipy.fft.ifft(analytic))


def envelope_features(
    x: np.ndarray, sample_rate: float, bearing: BearingGeometry | None, shaft_hz: float | None
) -> dict[str, float]:
    """Envelope amplitude at BPFO, BPFI, 2·BSF and FTF relative to the median envelope level (scale-free)."""
    if bearing is None or not shaft_hz:
        return dict.fromkeys(ENVELOPE_FEATURES, float("nan"))
    freqs, amplitudes = envelope_spectrum(x, sample_rate)
    defects = defect_frequencies(bearing, shaft_hz)
    targets = {
        "bpfo": defects["bpfo"],
        "bpfi": defects["bpfi"],
        "bsf": 2 * defects["bsf"],
        "ftf": defects["ftf"],
    }
    within = (freqs > 0) & (freqs <= ENVELOPE_MAX_HZ)
    floor = float(np.median(amplitudes[within])) if within.any() else 0.0
    resolution = freqs[1] - freqs[0]
    features = {}
    for name, frequency in targets.items():
        tolerance = max(2 * resolution, 0.02 * frequency)
        near = np.abs(freqs - frequency) <= tolerance
        level = float(amplitudes[near].max()) if near.any() else 0.0
        features[f"vib_env_{name}"] = level / floor if floor > 0 else 0.0
    return features
