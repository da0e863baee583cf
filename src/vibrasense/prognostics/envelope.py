"""The envelope spectrum a bearing diagnosis reads: prewhitening, the band to demodulate, the floor and the lines.

The signal is cepstrally prewhitened (spectrum divided by its magnitude), which removes the shaft and gear
harmonics that would otherwise dominate; its ends are tapered before and trimmed after, since the FFT treats the
record as circular and the jump from its last sample to its first would whiten into the largest impulse of the
record. ``envelope_views`` then envelopes it in two bands: the whole band (less the anti-alias edges, which
whitening lifts to the level of the rest), and the band of largest spectral kurtosis (``kurtogram_band``, a light
kurtogram over a few STFT resolutions). Smith & Randall (2015) found this pair the most reliable on the CWRU data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft
import scipy.signal

ENVELOPE_RESOLUTION_HZ = 0.25  # Welch segments of the squared envelope are 1 / this long (at most a quarter)
EDGE_SHARE = 0.02  # share of the record tapered at each end before whitening and trimmed after
BAND_EDGES = (0.02, 0.45)  # shares of the sample rate: below and above lie DC and anti-alias roll-off


@dataclass(frozen=True)
class Peak:
    """One spectral line looked for: where it was expected, where it was found, how far above the floor.

    ``kind`` says its role: ``fundamental``, ``harmonic``, ``sideband`` or ``modulation`` (a cage-rate line).
    """

    label: str
    expected_hz: float
    found_hz: float
    snr: float
    kind: str = "fundamental"


@dataclass(frozen=True)
class EnvelopeView:
    """The squared-envelope spectrum of one band of the whitened record, with its local floor."""

    band_hz: tuple[float, float]
    freqs: np.ndarray
    amplitudes: np.ndarray
    floor: np.ndarray

    def line(self, label: str, hz: float, kind: str = "fundamental") -> Peak:
        """The strongest bin within slip tolerance (1 % or 1.5 bins) of ``hz``, as a multiple of the floor."""
        freqs = self.freqs
        tolerance = max(1.5 * (freqs[1] - freqs[0]), 0.01 * hz)
        near = np.flatnonzero(np.abs(freqs - hz) <= tolerance)
        if hz <= 0 or near.size == 0:
            return Peak(label, round(hz, 2), round(hz, 2), 0.0, kind)
        ratio = self.amplitudes[near] / self.floor[near]
        index = int(np.argmax(ratio))
        return Peak(label, round(hz, 2), round(float(freqs[near[index]]), 2), round(float(ratio[index]), 2), kind)


def envelope_views(x: np.ndarray, sample_rate: float) -> list[EnvelopeView]:
    """The whole-band and the kurtogram-band envelope spectra of ``x`` after prewhitening."""
    whitened = prewhiten(x, trim=True)
    bands = [(BAND_EDGES[0] * sample_rate, BAND_EDGES[1] * sample_rate), kurtogram_band(whitened, sample_rate)]
    views = []
    for band in dict.fromkeys(bands):
        freqs, amplitudes = squared_envelope_spectrum(whitened, sample_rate, band)
        rounded = (round(band[0], 1), round(band[1], 1))
        views.append(EnvelopeView(rounded, freqs, amplitudes, local_floor(freqs, amplitudes)))
    return views


def prewhiten(x: np.ndarray, trim: bool = False) -> np.ndarray:
    """Cepstral prewhitening: keep only the phase of the spectrum, which flattens every discrete line.

    The ends are tapered (``EDGE_SHARE`` of the record each) so that the circular jump from the last sample to
    the first does not whiten into a large spurious impulse; ``trim`` drops the tapered ends from the result.
    """
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    edge = int(EDGE_SHARE * n)
    taper = scipy.signal.windows.tukey(n, 2 * edge / n) if edge else np.ones(n)
    spectrum = scipy.fft.rfft((x - x.mean()) * taper)
    magnitude = np.abs(spectrum)
    whitened = scipy.fft.irfft(spectrum / np.maximum(magnitude, 1e-12 * magnitude.max()), n=n)
    return whitened[edge : n - edge] if trim and edge else whitened


def kurtogram_band(x: np.ndarray, sample_rate: float) -> tuple[float, float]:
    """The frequency band of largest spectral kurtosis over a few STFT resolutions (a light kurtogram).

    Spectral kurtosis SK(f) = <|X(t,f)|⁴> / <|X(t,f)|²>² − 2 is zero for stationary noise and large where
    transients (defect impacts) live; the band is centred on the best bin, two bins wide.
    """
    best_band, best_kurtosis = (0.0, sample_rate / 2), -np.inf
    for nperseg in (16, 32, 64, 128, 256):
        if nperseg * 8 > len(x):
            continue
        freqs, _, stft = scipy.signal.stft(x, sample_rate, nperseg=nperseg, noverlap=3 * nperseg // 4)
        power = np.abs(stft) ** 2
        kurtosis = (power**2).mean(axis=1) / np.maximum(power.mean(axis=1) ** 2, 1e-300) - 2
        # the edges hold anti-alias roll-off, which prewhitening lifts into spurious kurtosis
        kurtosis[(freqs < BAND_EDGES[0] * sample_rate) | (freqs > BAND_EDGES[1] * sample_rate)] = -np.inf
        index = int(np.argmax(kurtosis))
        if kurtosis[index] > best_kurtosis:
            width = sample_rate / nperseg
            low = max(freqs[index] - width, 0.0)
            best_band, best_kurtosis = (low, min(low + 2 * width, sample_rate / 2)), kurtosis[index]
    return float(best_band[0]), float(best_band[1])


def squared_envelope_spectrum(
    x: np.ndarray, sample_rate: float, band: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """(frequencies, amplitude) of the squared envelope of ``x`` band-passed to ``band``, Welch-averaged."""
    spectrum = scipy.fft.fft(x)
    freqs = np.abs(scipy.fft.fftfreq(len(x), 1.0 / sample_rate))
    keep = (freqs >= band[0]) & (freqs <= band[1]) & (scipy.fft.fftfreq(len(x)) >= 0)
    analytic = np.zeros_like(spectrum)
    analytic[keep] = 2 * spectrum[keep]
    envelope = np.abs(scipy.fft.ifft(analytic)) ** 2
    nperseg = min(len(x) // 4, int(sample_rate / ENVELOPE_RESOLUTION_HZ))  # at least ~7 averages
    out_freqs, power = scipy.signal.welch(
        envelope - envelope.mean(), sample_rate, nperseg=nperseg, noverlap=nperseg // 2, detrend=False
    )
    return out_freqs, np.sqrt(power)


def local_floor(freqs: np.ndarray, amplitudes: np.ndarray, width_hz: float = 20.0) -> np.ndarray:
    """Running median of the spectrum over ``width_hz`` (up to 1.5 kHz): the level a line must rise above."""
    step = freqs[1] - freqs[0]
    half = max(int(width_hz / step / 2), 2)
    limit = min(len(amplitudes), int(1_500 / step) + half)
    padded = np.pad(amplitudes[:limit], half, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1)
    floor = np.full(len(amplitudes), np.inf)
    floor[:limit] = np.median(windows, axis=1)[:limit]
    return np.maximum(floor, 1e-300)
