"""Sample-rate conversion with a proper anti-aliasing resampler (soxr HQ), never by dropping samples."""

from __future__ import annotations

import numpy as np
import soxr


def resample(samples: np.ndarray, from_rate: float, to_rate: float) -> np.ndarray:
    """``samples`` at ``from_rate`` Hz as float32 at ``to_rate`` Hz; the same array when the rates agree."""
    samples = np.asarray(samples, dtype=np.float32)
    if from_rate == to_rate:
        return samples
    return soxr.resample(samples, from_rate, to_rate, quality="HQ").astype(np.float32, copy=False)
