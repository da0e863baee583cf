"""Log-mel spectrograms and the 13 statistical audio features, all from one STFT per clip, batched.

Definitions follow librosa (the reference users know) called with the same ``n_fft`` and ``hop_length``,
``center=True`` with zero padding (librosa >= 0.10), a periodic Hann window and the Slaney mel scale; the
tests compare against librosa 0.11 on real clips. The batch path computes one real FFT over every frame of
every clip, one block-sparse matrix product for the mel projection and one for the spectral moments, and
O(1)-per-frame block sums for RMS and zero-crossing rate.

- ``rms_mean``, ``rms_std``: frame RMS of the zero-padded signal, mean and std over frames
  (``librosa.feature.rms(frame_length=n_fft, hop_length=hop)``).
- ``zcr_mean``: zero-crossing rate of edge-padded frames, |x| <= 1e-10 counted as zero
  (``librosa.feature.zero_crossing_rate(frame_length=n_fft, hop_length=hop)``).
- ``spectral_centroid``, ``spectral_bandwidth`` (p=2), ``spectral_rolloff`` (85 %): from the magnitude
  spectrogram, means over frames (``librosa.feature.spectral_*(S=|STFT|)``).
- ``spectral_contrast``: octave-band contrast (fmin 200 Hz, 6 bands, quantile 0.02, dB), mean over bands
  and frames (``librosa.feature.spectral_contrast(S=|STFT|)``).
- ``mfcc_0`` … ``mfcc_5``: DCT-II (orthonormal) of the mel power in dB (``power_to_db``: ref 1, amin 1e-10,
  top_db 80), means over frames (``librosa.feature.mfcc(n_mfcc=6)`` on the same mel power).
- Log-mel (DCASE 2020 baseline): ``20 / power * log10(max(mel, eps))`` with ``mel`` the mel projection of
  ``|STFT| ** power`` and ``eps`` the float64 machine epsilon; for power 2 that is ``10·log10(mel power)``
  in dB; shape (frames, n_mels), float32.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.fft

from vibrasense.config import LogMelSettings
from vibrasense.features import stft, welch

N_MFCC = 6
CONTRAST_FMIN = 200.0
CONTRAST_BANDS = 6
CONTRAST_QUANTILE = 0.02
ROLLOFF = 0.85
ZERO_THRESHOLD = 1e-10  # librosa's zero_crossings threshold: smaller magnitudes count as zero
AMIN = 1e-10
TOP_DB = 80.0
CHUNK = 8  # clips per vectorised step: bounds the memory of the frame matrix (8 x 10 s: ~10 MB)
MEL_GROUP = 16  # mel filters per block of the block-sparse projection
ROLLOFF_GROUP = 32  # bins per coarse step of the roll-off search


def analyse_clip(
    samples: np.ndarray, sample_rate: float, settings: LogMelSettings
) -> tuple[np.ndarray, dict[str, float]]:
    """Log-mel spectrogram (frames, n_mels) and the 13 features of one clip."""
    logmels, features = analyse_batch(np.asarray(samples, dtype=np.float32)[None, :], sample_rate, settings)
    return logmels[0], {name: float(values[0]) for name, values in features.items()}


def extract_logmel(samples: np.ndarray, sample_rate: float, settings: LogMelSettings) -> np.ndarray:
    """The log-mel spectrogram of one clip, shape (frames, n_mels), float32 (no statistical features computed)."""
    return analyse_batch(np.asarray(samples, dtype=np.float32)[None, :], sample_rate, settings, features=False)[0][0]


def audio_features(samples: np.ndarray, sample_rate: float, settings: LogMelSettings) -> dict[str, float]:
    """The 13 statistical features of one clip, named as ``AUDIO_FEATURES``."""
    return analyse_clip(samples, sample_rate, settings)[1]


def analyse_batch(
    batch: np.ndarray,
    sample_rate: float,
    settings: LogMelSettings,
    *,
    logmel: bool = True,
    features: bool = True,
    band_edges: Sequence[float] | None = None,
) -> tuple[np.ndarray | None, dict[str, np.ndarray]]:
    """Log-mel spectrograms (clips, frames, n_mels) and each feature (clips,) of equal-length clips.

    This is the fast path: clips go through in chunks of ``CHUNK``, each chunk with one FFT call. Without
    ``logmel`` (a tabular model's inputs) the spectrograms are not computed and ``None`` is returned for them;
    without ``features`` (an autoencoder's) the statistical features are not, and the dict is empty. With
    ``band_edges`` (the frames must be Welch's: ``welch.shares_logmel_frames``) the dict also holds the Welch
    band energies of clips at least a frame long, named as the vibration features.
    """
    batch = np.atleast_2d(np.asarray(batch, dtype=np.float32))
    if batch.ndim != 2 or batch.shape[1] == 0:
        raise ValueError(f"analyse_batch needs a (clips, samples) array of non-empty clips, got {batch.shape}")
    pieces = [
        _analyse_chunk(batch[i : i + CHUNK], sample_rate, settings, logmel, features, band_edges)
        for i in range(0, len(batch), CHUNK)
    ]
    if len(pieces) == 1:
        return pieces[0]
    logmels = np.concatenate([p[0] for p in pieces]) if logmel else None
    return logmels, {name: np.concatenate([p[1][name] for p in pieces]) for name in pieces[0][1]}


def _analyse_chunk(
    batch: np.ndarray,
    sample_rate: float,
    settings: LogMelSettings,
    want_logmel: bool,
    want_features: bool,
    band_edges: Sequence[float] | None,
) -> tuple[np.ndarray | None, dict[str, np.ndarray]]:
    n_fft, hop = settings.n_fft, settings.hop_length
    padded = stft.zero_pad(batch, n_fft // 2)
    power, low = stft.stft_power(padded, n_fft, hop, welch.LOW_BINS if band_edges else 0)  # (clips, frames, bins)
    bands = _welch_bands(padded, power, low, batch.shape[1], sample_rate, n_fft, band_edges) if band_edges else {}
    magnitude = np.sqrt(power) if want_features or settings.power != 2.0 else None
    mel = _mel_bank(float(sample_rate), n_fft, settings.n_mels, settings.fmin, settings.fmax)
    mel_power = mel.project(power)
    logmel = None
    if want_logmel:
        mel_for_logmel = mel_power if settings.power == 2.0 else mel.project(magnitude**settings.power)
        logmel = ((20.0 / settings.power) * np.log10(np.maximum(mel_for_logmel, sys.float_info.epsilon))).astype(
            np.float32
        )
    if not want_features:
        return logmel, bands

    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    rms = _frame_rms(padded, n_fft, hop, magnitude.shape[1])
    features = {
        "rms_mean": rms.mean(axis=1),
        "rms_std": rms.std(axis=1),
        "zcr_mean": _zero_crossing_rate(padded, batch.shape[1], n_fft, hop, magnitude.shape[1]).mean(axis=1),
        **_spectral_shape(magnitude, freqs),
        "spectral_contrast": _spectral_contrast(magnitude, freqs, sample_rate),
        **_mfcc_means(mel_power),
    }
    return logmel, {k: np.asarray(v, dtype=np.float64) for k, v in features.items()} | bands


def _welch_bands(
    padded: np.ndarray,
    power: np.ndarray,
    low: np.ndarray,
    n: int,
    sample_rate: float,
    n_fft: int,
    edges: Sequence[float],
) -> dict[str, np.ndarray]:
    """Welch band energies from the centred frames that lie wholly inside the clips (none if shorter than one)."""
    if n < n_fft:
        return {}
    pad = n_fft // 2
    inner = slice(1, 1 + welch.segment_count(n, n_fft))  # frame t starts t·hop - pad into the clip: t = 1 is whole
    energies = welch.from_segments(padded[:, pad : pad + n], power[:, inner], low[:, inner], sample_rate, edges, n_fft)
    return dict(zip(welch.band_names(tuple(edges)), energies.T, strict=True))


def _frame_rms(padded: np.ndarray, n_fft: int, hop: int, n_frames: int) -> np.ndarray:
    return np.sqrt(np.maximum(stft.frame_sums(np.square(padded), n_fft, hop, n_frames) / n_fft, 0.0))


def _zero_crossing_rate(padded: np.ndarray, n: int, n_fft: int, hop: int, n_frames: int) -> np.ndarray:
    """librosa's ZCR; its edge padding never crosses zero, so the zero-padded clip serves once the two
    pad boundaries are cleared."""
    pad = n_fft // 2
    negative = np.signbit(padded) & (np.abs(padded) > ZERO_THRESHOLD)
    crossing = np.zeros(padded.shape, dtype=np.uint8)
    np.not_equal(negative[:, 1:], negative[:, :-1], out=crossing[:, 1:].view(bool))
    crossing[:, pad] = 0
    crossing[:, pad + n :] = 0
    # A frame counts crossings between its own consecutive samples: not at its first sample.
    starts = crossing[:, np.arange(n_frames) * hop]
    return (stft.frame_sums(crossing, n_fft, hop, n_frames) - starts) / n_fft


def _spectral_shape(magnitude: np.ndarray, freqs: np.ndarray) -> dict[str, np.ndarray]:
    """Centroid, bandwidth and roll-off from the moments sum S·f^k (one float64 product with 3 columns)."""
    moments = magnitude @ np.stack([np.ones_like(freqs), freqs, freqs**2], axis=1)
    total = moments[..., 0]
    safe = np.where(total > 0, total, 1.0)
    centroid = moments[..., 1] / safe
    spread = np.maximum(moments[..., 2] / safe - centroid**2, 0.0)
    rolloff = freqs[_rolloff_bins(magnitude, total)]
    return {
        "spectral_centroid": centroid.mean(axis=1),
        "spectral_bandwidth": np.sqrt(spread).mean(axis=1),
        "spectral_rolloff": rolloff.mean(axis=1),
    }


def _rolloff_bins(magnitude: np.ndarray, total: np.ndarray) -> np.ndarray:
    """First bin whose cumulative magnitude reaches ROLLOFF of the frame total (0 for silent frames).

    Coarse cumulative sums over groups of bins (one small matrix product) find the group, then one group
    per frame is summed finely: the same bin as a full cumulative sum, at a fraction of its cost.
    """
    bins = magnitude.shape[-1]
    step = ROLLOFF_GROUP
    threshold = (ROLLOFF * total)[..., None]
    coarse = np.cumsum(magnitude @ _group_indicator(bins, step), axis=-1)
    group = np.count_nonzero(coarse < threshold, axis=-1)
    before = np.concatenate([np.zeros_like(coarse[..., :1]), coarse], axis=-1)
    before = np.take_along_axis(before, group[..., None], axis=-1)
    indices = np.minimum(group[..., None] * step + np.arange(step), bins - 1)
    fine = before + np.cumsum(np.take_along_axis(magnitude, indices, axis=-1), axis=-1)
    return np.minimum(group * step + np.count_nonzero(fine < threshold, axis=-1), bins - 1)


@lru_cache(maxsize=8)
def _group_indicator(bins: int, step: int) -> np.ndarray:
    """(bins, groups) matrix of ones summing consecutive runs of ``step`` bins (the last run may be short)."""
    groups = -(-bins // step)
    indicator = np.zeros((bins, groups), dtype=np.float32)
    indicator[np.arange(bins), np.arange(bins) // step] = 1.0
    return indicator


def _contrast_bands(freqs: np.ndarray, sample_rate: float) -> list[tuple[int, int, int]]:
    """(start, stop, count) of each octave sub-band as librosa slices it, bands reduced below Nyquist."""
    bands = CONTRAST_BANDS
    while bands > 1 and CONTRAST_FMIN * 2.0 ** (bands - 1) >= sample_rate / 2:
        bands -= 1
    edges = np.zeros(bands + 2)
    edges[1:] = CONTRAST_FMIN * 2.0 ** np.arange(bands + 1)
    slices = []
    for k, (low, high) in enumerate(itertools.pairwise(edges)):
        indices = np.flatnonzero((freqs >= low) & (freqs <= high))
        start = indices[0] - 1 if k > 0 else indices[0]
        stop = len(freqs) if k == bands else indices[-1] + 1
        count = max(int(np.rint(CONTRAST_QUANTILE * (stop - start))), 1)
        slices.append((int(start), int(stop if k == bands else stop - 1), count))
    return slices


def _spectral_contrast(magnitude: np.ndarray, freqs: np.ndarray, sample_rate: float) -> np.ndarray:
    peaks, valleys = [], []
    for start, stop, count in _contrast_bands(freqs, sample_rate):
        ordered = np.sort(magnitude[..., start:stop], axis=-1)  # SIMD sort: faster than np.partition here
        valleys.append(ordered[..., :count].mean(axis=-1))
        peaks.append(ordered[..., -count:].mean(axis=-1))
    contrast = _power_to_db(np.stack(peaks, axis=1)) - _power_to_db(np.stack(valleys, axis=1))
    return contrast.mean(axis=(1, 2))


def _power_to_db(power: np.ndarray) -> np.ndarray:
    """``librosa.power_to_db(ref=1, amin=1e-10, top_db=80)`` applied to each clip (axis 0) separately."""
    db = 10.0 * np.log10(np.maximum(power, AMIN))
    floor = db.reshape(len(db), -1).max(axis=1) - TOP_DB
    return np.maximum(db, floor.reshape((-1,) + (1,) * (db.ndim - 1)))


def _mfcc_means(mel_power: np.ndarray) -> dict[str, np.ndarray]:
    # The DCT is linear: the mean over frames of the MFCCs is the DCT of the mean log-mel frame.
    mean_db = _power_to_db(mel_power).mean(axis=1, dtype=np.float64)
    coefficients = scipy.fft.dct(mean_db, type=2, norm="ortho", axis=-1)[:, :N_MFCC]
    return {f"mfcc_{i}": coefficients[:, i] for i in range(N_MFCC)}


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / (200.0 / 3)
    log_part = 15.0 + np.log(np.maximum(hz, 1e-12) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, log_part, linear)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    linear = (200.0 / 3) * mel
    log_part = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0))
    return np.where(mel >= 15.0, log_part, linear)


def mel_filterbank(
    sample_rate: float, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None
) -> np.ndarray:
    """Slaney-normalised triangular filters on the Slaney mel scale, (n_mels, 1 + n_fft // 2), float32.

    Equal to ``librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax)`` (``htk=False, norm='slaney'``).
    """
    return _mel_bank(float(sample_rate), n_fft, n_mels, fmin, fmax).weights


@dataclass(frozen=True)
class _MelBank:
    """The filterbank and its block-sparse layout: groups of filters with the bin range they cover."""

    weights: np.ndarray
    blocks: tuple[tuple[int, int, int, int, np.ndarray], ...]  # (first, last filter, lo, hi bin, weights.T)

    def project(self, spectrum: np.ndarray) -> np.ndarray:
        """``spectrum @ weights.T`` over the last axis, touching only the bins each filter group covers."""
        flat = spectrum.reshape(-1, spectrum.shape[-1])
        out = np.zeros((len(flat), len(self.weights)), dtype=np.float32)
        for first, last, lo, hi, block in self.blocks:
            np.matmul(flat[:, lo:hi], block, out=out[:, first:last])
        return out.reshape(*spectrum.shape[:-1], len(self.weights))


@lru_cache(maxsize=16)
def _mel_bank(sample_rate: float, n_fft: int, n_mels: int, fmin: float, fmax: float | None) -> _MelBank:
    top = sample_rate / 2 if fmax is None else fmax
    fft_freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    mel_freqs = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(top), n_mels + 2))
    widths = np.diff(mel_freqs)
    ramps = mel_freqs[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_freqs[2:] - mel_freqs[:-2]))[:, None]
    weights = weights.astype(np.float32)
    weights.setflags(write=False)
    blocks = []
    for first in range(0, n_mels, MEL_GROUP):
        last = min(first + MEL_GROUP, n_mels)
        covered = np.flatnonzero(weights[first:last].any(axis=0))
        if covered.size:  # a filter narrower than one bin has no weights (librosa warns of empty filters)
            lo, hi = int(covered[0]), int(covered[-1]) + 1
            blocks.append((first, last, lo, hi, np.ascontiguousarray(weights[first:last, lo:hi].T)))
    return _MelBank(weights, tuple(blocks))
