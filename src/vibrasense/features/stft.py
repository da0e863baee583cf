"""Short-time Fourier frames shared by the audio features and the Welch band energies.

One STFT serves the log-mel spectrogram, the 13 audio features and, when the rates and framing match, the
vibration band energies (:mod:`vibrasense.features.welch`), so these primitives live apart from either.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.fft


def zero_pad(batch: np.ndarray, pad: int) -> np.ndarray:
    """Clips (clips, samples) with ``pad`` zeros each side, float32 (the ``center=True`` framing)."""
    padded = np.empty((len(batch), batch.shape[1] + 2 * pad), dtype=np.float32)
    padded[:, :pad] = 0.0
    padded[:, pad : pad + batch.shape[1]] = batch
    padded[:, pad + batch.shape[1] :] = 0.0
    return padded


def stft_power(signals: np.ndarray, n_fft: int, hop: int, low_bins: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """|STFT|² (clips, frames, bins) of float32 ``signals`` framed every ``hop`` samples from the first, float32;
    and the complex spectrum of each frame's first ``low_bins`` bins (clips, frames, low_bins)."""
    frames = np.lib.stride_tricks.sliding_window_view(signals, n_fft, axis=-1)[:, ::hop]
    windowed = np.multiply(frames, hann(n_fft))
    spectrum = scipy.fft.rfft(windowed, axis=-1, workers=1, overwrite_x=True)
    low = spectrum[..., :low_bins].copy()
    power = np.square(spectrum.real)
    power += np.square(spectrum.imag)
    return power, low


@lru_cache(maxsize=8)
def hann(n_fft: int) -> np.ndarray:
    """Periodic Hann window (``scipy.signal.get_window('hann', n_fft)``, librosa's default)."""
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)


def frame_sums(values: np.ndarray, frame: int, hop: int, n_frames: int) -> np.ndarray:
    """Sum of ``values`` over each frame [t·hop, t·hop + frame), float64.

    When the hop divides the frame (the usual n_fft = 2·hop), a frame is a few whole hop-blocks, so one
    block sum per hop replaces a cumulative sum over every sample.
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
