"""FFT band energies by Welch's method: the mean power of half-overlapping Hann frames, each less its own mean.

The estimate is ``scipy.signal.welch(x, fs, "hann", nperseg=frame, noverlap=frame // 2, detrend="constant")``
summed over each band's bins times the bin width, so bands covering every frequency sum to the variance.
It is computed from STFT frames: its own, or the log-mel's when they are the same frames (the audio rate is
the recording's, ``n_fft`` is the frame and the hop half of it). The centred STFT's frames that lie wholly
inside the clip are then Welch's segments, and a segment's mean reaches only its first two bins (a periodic
Hann window's spectrum is zero beyond them), which are corrected from their complex values. A signal shorter
than a frame is one segment of its own length; a single sample has no energy in any band.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence

import numpy as np
import scipy.fft

from vibrasense.config import LogMelSettings, VibrationSettings
from vibrasense.features import stft
from vibrasense.features.names import band_feature_name

LOW_BINS = 2  # the bins a segment's mean reaches through a periodic Hann window


def shares_logmel_frames(vibration: VibrationSettings, logmel: LogMelSettings) -> bool:
    """Whether the band energies can come from the log-mel's STFT (same frame, half-frame hop)."""
    return (
        vibration.band_estimator == "welch"
        and vibration.band_frame == logmel.n_fft
        and 2 * logmel.hop_length == logmel.n_fft
    )


def band_energies(samples: np.ndarray, sample_rate: float, edges: Sequence[float], frame: int) -> dict[str, float]:
    """Mean-square energy of ``samples`` in each band [low, high) between ``edges`` (Hz), from its own frames."""
    x = np.asarray(samples, dtype=np.float32)[None, :]
    n = x.shape[1]
    if n < 2:  # one sample holds no variance (and a one-sample Hann window is zero)
        return dict.fromkeys(band_names(tuple(edges)), 0.0)
    frame = min(frame, n)
    power, low = stft.stft_power(x, frame, max(frame // 2, 1), LOW_BINS)
    energies = from_segments(x, power, low, sample_rate, edges, frame)[0]
    return dict(zip(band_names(tuple(edges)), (float(e) for e in energies), strict=True))


def segment_count(n: int, frame: int) -> int:
    """How many Welch segments of ``frame`` samples, every half frame, lie wholly inside ``n`` samples."""
    return (n - frame) // max(frame // 2, 1) + 1


def from_segments(
    clips: np.ndarray, power: np.ndarray, low: np.ndarray, sample_rate: float, edges: Sequence[float], frame: int
) -> np.ndarray:
    """Band energies (clips, bands) from the Welch segments of ``clips`` (clips, samples), cut every half frame
    from their first sample: the segments' |STFT|² (clips, segments, bins) and the complex values of their first
    bins (clips, segments, LOW_BINS)."""
    means = stft.frame_sums(clips, frame, max(frame // 2, 1), power.shape[1]) / frame
    window = stft.hann(frame).astype(np.float64)
    kept = low.shape[-1]
    response = scipy.fft.rfft(window)[:kept]  # the window's own spectrum: what a constant puts in those bins
    spectrum = np.mean(power, axis=1, dtype=np.float64)
    detrended = low - means[..., None] * response
    spectrum[:, :kept] = np.mean(np.square(detrended.real) + np.square(detrended.imag), axis=1)
    spectrum *= _one_sided_weights(frame)
    cumulative = np.zeros((len(spectrum), spectrum.shape[1] + 1))
    np.cumsum(spectrum, axis=1, out=cumulative[:, 1:])
    positions = np.asarray(_band_bins(frame, float(sample_rate), tuple(edges)))
    return (cumulative[:, positions[1:]] - cumulative[:, positions[:-1]]) / (frame * float(np.dot(window, window)))


@functools.lru_cache(maxsize=32)
def band_names(edges: tuple[float, ...]) -> tuple[str, ...]:
    """The band columns between ``edges``."""
    return tuple(band_feature_name(low, high) for low, high in itertools.pairwise(edges))


@functools.lru_cache(maxsize=32)
def _band_bins(frame: int, sample_rate: float, edges: tuple[float, ...]) -> tuple[int, ...]:
    """The first frame bin at or above each edge (a band above the Nyquist frequency holds none: energy 0)."""
    freqs = np.fft.rfftfreq(frame, 1.0 / sample_rate)
    return tuple(int(p) for p in np.searchsorted(freqs, edges, side="left"))


@functools.lru_cache(maxsize=8)
def _one_sided_weights(frame: int) -> np.ndarray:
    """2 for every one-sided bin that stands for two (all but DC and, for an even frame, Nyquist), else 1."""
    weights = np.full(frame // 2 + 1, 2.0)
    weights[0] = 1.0
    if frame % 2 == 0:
        weights[-1] = 1.0
    return weights
