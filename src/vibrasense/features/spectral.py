"""Log-mel spectrograms and the 13 statistical audio features, all from one STFT per clip, batched.

Definitions follow librosa (the reference users know) called with the same ``n_fft`` and ``hop_length``,
``center=True``, a periodic Hann window and the Slaney mel scale; the tests compare against librosa on real
clips. The vectorised batch path computes one real FFT over every frame of every clip, one matrix product
for the mel projection, and O(1)-per-frame running sums for RMS and zero-crossing rate.

- ``rms_mean``, ``rms_std``: frame RMS of the zero-padded signal (``librosa.feature.rms``), mean and std.
- ``zcr_mean``: zero-crossing rate of edge-padded frames (``librosa.feature.zero_crossing_rate``).
- ``spectral_centroid``, ``spectral_bandwidth`` (p=2), ``spectral_rolloff`` (85 %): from the magnitude
  spectrogram, means over frames.
- ``spectral_contrast``: octave-band contrast (fmin 200 Hz, 6 bands, quantile 0.02, dB), mean over bands
  and frames.
- ``mfcc_0`` … ``mfcc_5``: DCT-II (orthonormal) of the mel power in dB (ref 1, amin 1e-10, top 80 dB),
  means over frames.
- Log-mel (DCASE 2020 baseline): ``10 / power * 2 * log10(max(mel, eps))`` = ``10·log10(mel power)`` for
  power 2, with ``eps`` the float64 machine epsilon; shape (frames, n_mels).
"""

from __future__ import annotations

import itertools
import sys
from functools import lru_cache

import numpy as np
import scipy.fft
import scipy.signal

from vibrasense.config import LogMelSettings
from vibrasense.features.names import AUDIO_FEATURES

N_MFCC = 6
CONTRAST_FMIN = 200.0
CONTRAST_BANDS = 6
CONTRAST_QUANTILE = 0.02
ROLLOFF = 0.85
AMIN = 1e-10
TOP_DB = 80.0
CHUNK = 16  # clips per vectorised step: bounds the memory of the frame matrix


def analyse_clip(
    samples: np.ndarray, sample_rate: float, settings: LogMelSettings
) -> tuple[np.ndarray, dict[str, float]]:
    """Log-mel spectrogram (frames, n_mels) and the 13 features of one clip."""
    logmels, features = analyse_batch(np.asarray(samples, dtype=np.float32)[None, :], sample_rate, settings)
    return logmels[0], {name: float(values[0]) for name, values in features.items()}


def extract_logmel(samples: np.ndarray, sample_rate: float, settings: LogMelSettings) -> np.ndarray:
    """The log-mel spectrogram of one clip, shape (frames, n_mels), float32."""
    return analyse_clip(samples, sample_rate, settings)[0]


def analyse_batch(
    batch: np.ndarray, sample_rate: float, settings: LogMelSettings
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Log-mel spectrograms (clips, frames, n_mels) and each feature (clips,) of equal-length clips."""
    batch = np.atleast_2d(np.asarray(batch, dtype=np.float32))
    pieces = [
        _analyse_chunk(batch[i : i + CHUNK], sample_rate, settings) for i in range(0, len(batch), CHUNK)
    ]
    logmels = np.concatenate([p[0] for p in pieces])
    features = {name: np.concatenate([p[1][name] for p in pieces]) for name in AUDIO_FEATURES}
    return logmels, features


def _analyse_chunk(
    batch: np.ndarray, sample_rate: float, settings: LogMelSettings
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    n_fft, hop = settings.n_fft, settings.hop_length
    magnitude = _stft_magnitude(batch, n_fft, hop)  # (clips, frames, bins)
    power = np.square(magnitude)
    mel_power = power @ _mel_basis(sample_rate, n_fft, settings.n_mels, settings.fmin, settings.fmax).T
    if settings.power != 2.0:
        mel_for_logmel = (magnitude**settings.power) @ _mel_basis(
            sample_rate, n_fft, settings.n_mels, settings.fmin, settings.fmax
        ).T
    else:
        mel_for_logmel = mel_power
    logmel = (20.0 / settings.power) * np.log10(np.maximum(mel_for_logmel, sys.float_info.epsilon))

    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate).astype(np.float32)
    rms = _frame_rms(batch, n_fft, hop)
    features = {
        "rms_mean": rms.mean(axis=1),
        "rms_std": rms.std(axis=1),
        "zcr_mean": _zero_crossing_rate(batch, n_fft, hop).mean(axis=1),
        **_spectral_shape(magnitude, freqs),
        "spectral_contrast": _spectral_contrast(magnitude, freqs, sample_rate),
        **_mfcc_means(mel_power),
    }
    return logmel.astype(np.float32), {k: np.asarray(v, dtype=np.float64) for k, v in features.items()}


def _stft_magnitude(batch: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    padded = np.pad(batch, ((0, 0), (n_fft // 2, n_fft // 2)))
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft, axis=-1)[:, ::hop]
    spectrum = scipy.fft.rfft(frames * _window(n_fft), axis=-1, workers=1)
    return np.abs(spectrum)


@lru_cache(maxsize=8)
def _window(n_fft: int) -> np.ndarray:
    return scipy.signal.get_window("hann", n_fft, fftbins=True).astype(np.float32)


def _frame_sums(values: np.ndarray, frame: int, hop: int, n_frames: int) -> np.ndarray:
    """Sum of ``values`` over each frame [t·hop, t·hop + frame).

    When the hop divides the frame (the usual n_fft = 2·hop), a frame is a few whole hop-blocks, so one
    reshape-sum per block replaces a cumulative sum over every sample.
    """
    if frame % hop == 0:
        blocks_per_frame = frame // hop
        n_blocks = n_frames + blocks_per_frame - 1
        needed = n_blocks * hop
        values = values[:, :needed]
        if values.shape[1] < needed:
            values = np.pad(values, ((0, 0), (0, needed - values.shape[1])))
        blocks = values.reshape(len(values), n_blocks, hop).sum(axis=2, dtype=np.float64)
        sums = blocks[:, :n_frames].copy()
        for offset in range(1, blocks_per_frame):
            sums += blocks[:, offset : offset + n_frames]
        return sums
    cumulative = np.zeros((len(values), values.shape[1] + 1))
    np.cumsum(values, axis=1, dtype=np.float64, out=cumulative[:, 1:])
    starts = np.arange(n_frames) * hop
    return cumulative[:, starts + frame] - cumulative[:, starts]


def _frame_rms(batch: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    n_frames = 1 + batch.shape[1] // hop
    padded = np.pad(batch, ((0, 0), (n_fft // 2, n_fft // 2)))
    energy = np.square(padded, dtype=np.float64)
    return np.sqrt(np.maximum(_frame_sums(energy, n_fft, hop, n_frames) / n_fft, 0.0))


def _zero_crossing_rate(batch: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    n_frames = 1 + batch.shape[1] // hop
    padded = np.pad(batch, ((0, 0), (n_fft // 2, n_fft // 2)), mode="edge")
    signs = np.signbit(padded) & (np.abs(padded) > 1e-10)
    crossing = np.zeros(padded.shape, dtype=np.int32)
    crossing[:, 1:] = signs[:, 1:] != signs[:, :-1]
    # A frame counts crossings between its own consecutive samples: not at its first sample.
    sums = _frame_sums(crossing, n_fft, hop, n_frames) - crossing[:, np.arange(n_frames) * hop]
    return sums / n_fft


def _spectral_shape(magnitude: np.ndarray, freqs: np.ndarray) -> dict[str, np.ndarray]:
    total = magnitude.sum(axis=-1, keepdims=True)
    weights = np.divide(magnitude, total, out=np.zeros_like(magnitude), where=total > 0)
    centroid = weights @ freqs
    spread = np.einsum("ctf,ctf->ct", weights, np.square(freqs[None, None, :] - centroid[..., None]))
    cumulative = np.cumsum(magnitude, axis=-1)
    reached = cumulative >= ROLLOFF * cumulative[..., -1:]
    rolloff = freqs[np.argmax(reached, axis=-1)]
    return {
        "spectral_centroid": centroid.mean(axis=1),
        "spectral_bandwidth": np.sqrt(spread).mean(axis=1),
        "spectral_rolloff": rolloff.mean(axis=1),
    }


def _spectral_contrast(magnitude: np.ndarray, freqs: np.ndarray, sample_rate: float) -> np.ndarray:
    bands = CONTRAST_BANDS
    while bands > 1 and CONTRAST_FMIN * 2.0 ** (bands - 1) >= sample_rate / 2:
        bands -= 1
    edges = np.zeros(bands + 2)
    edges[1:] = CONTRAST_FMIN * 2.0 ** np.arange(bands + 1)
    peaks, valleys = [], []
    for k, (low, high) in enumerate(itertools.pairwise(edges)):
        indices = np.flatnonzero((freqs >= low) & (freqs <= high))
        start = indices[0] - 1 if k > 0 else indices[0]
        stop = len(freqs) if k == bands else indices[-1] + 1
        in_band = stop - start
        sub_band = magnitude[..., start : stop if k == bands else stop - 1]
        count = max(int(np.rint(CONTRAST_QUANTILE * in_band)), 1)
        width = sub_band.shape[-1]
        ordered = np.partition(sub_band, (count - 1, width - count), axis=-1)
        valleys.append(ordered[..., :count].mean(axis=-1))
        peaks.append(ordered[..., width - count :].mean(axis=-1))
    contrast = _power_to_db(np.stack(peaks, axis=1)) - _power_to_db(np.stack(valleys, axis=1))
    return contrast.mean(axis=(1, 2))


def _power_to_db(power: np.ndarray) -> np.ndarray:
    """``librosa.power_to_db(ref=1, amin=1e-10, top_db=80)`` applied to each clip (axis 0) separately."""
    db = 10.0 * np.log10(np.maximum(power, AMIN))
    floor = db.reshape(len(db), -1).max(axis=1) - TOP_DB
    return np.maximum(db, floor.reshape((-1,) + (1,) * (db.ndim - 1)))


def _mfcc_means(mel_power: np.ndarray) -> dict[str, np.ndarray]:
    # The DCT is linear: the mean over frames of the MFCCs is the DCT of the mean log-mel frame.
    mean_db = _power_to_db(mel_power).mean(axis=1)
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


@lru_cache(maxsize=16)
def _mel_basis(sample_rate: float, n_fft: int, n_mels: int, fmin: float, fmax: float | None) -> np.ndarray:
    """Slaney-normalised triangular mel filters on the Slaney mel scale (as librosa), (n_mels, bins)."""
    top = sample_rate / 2 if fmax is None else fmax
    fft_freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    mel_freqs = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(top), n_mels + 2))
    widths = np.diff(mel_freqs)
    ramps = mel_freqs[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_freqs[2:] - mel_freqs[:-2]))[:, None]
    return weights.astype(np.float32)
