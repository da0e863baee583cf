"""Cutting a log-mel spectrogram (frames, n_mels) into the fixed-size windows an autoencoder sees."""

from __future__ import annotations

import numpy as np


def window_offsets(n_frames: int, window: int, hop: int) -> np.ndarray:
    """Start frames of windows every ``hop`` frames, plus one aligned to the end so no frame is left out.

    A recording shorter than a window yields the single offset 0 (the window is padded, see
    :func:`take_window`).
    """
    if n_frames <= window:
        return np.zeros(1, dtype=np.int64)
    offsets = np.arange(0, n_frames - window + 1, hop, dtype=np.int64)
    if offsets[-1] != n_frames - window:
        offsets = np.append(offsets, n_frames - window)
    return offsets


def take_window(spectrogram: np.ndarray, offset: int, window: int) -> np.ndarray:
    """Frames ``offset .. offset + window`` as float32, edge-padded when the recording is shorter."""
    frames = np.asarray(spectrogram[offset : offset + window], dtype=np.float32)
    if frames.shape[0] < window:
        if frames.shape[0] == 0:
            raise ValueError("empty spectrogram")
        frames = np.pad(frames, ((0, window - frames.shape[0]), (0, 0)), mode="edge")
    return frames
