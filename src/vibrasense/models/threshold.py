"""The decision threshold of every detector, learned from the scores of normal recordings only.

- ``percentile``: the given percentile of the normal scores (default 95: about 5 % false alarms).
- ``gamma``: the same quantile of a gamma distribution fitted to the normal scores, as in the DCASE 2020
  Task 2 baseline; smoother than the empirical percentile when there are few normal recordings.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.stats

from vibrasense.errors import ModelError

ThresholdMethod = Literal["percentile", "gamma"]
THRESHOLD_METHODS: tuple[str, ...] = ("percentile", "gamma")


def fit_threshold(normal_scores: np.ndarray, method: str = "percentile", percentile: float = 95.0) -> float:
    """The score above which a recording is called anomalous."""
    scores = np.asarray(normal_scores, dtype=np.float64).ravel()
    scores = scores[np.isfinite(scores)]
    if scores.size == 0:
        raise ModelError("cannot set a threshold: no finite score of a normal recording; check the inputs")
    if not 0 < percentile < 100:
        raise ModelError(f"threshold_percentile={percentile} must lie strictly between 0 and 100")
    if method == "percentile":
        return float(np.percentile(scores, percentile))
    if method == "gamma":
        return _gamma_quantile(scores, percentile / 100.0)
    raise ModelError(f"unknown threshold_method {method!r}; choose one of {list(THRESHOLD_METHODS)}")


def _gamma_quantile(scores: np.ndarray, q: float) -> float:
    """Quantile of a gamma fitted to the scores shifted to be positive (gamma needs positive values)."""
    shift = 0.0
    if scores.min() <= 0:
        shift = -scores.min() + 1e-6 * (np.ptp(scores) or 1.0)
    values = scores + shift
    if np.ptp(values) == 0:
        return float(scores[0])
    shape, loc, scale = scipy.stats.gamma.fit(values, floc=0.0)
    return float(scipy.stats.gamma.ppf(q, shape, loc=loc, scale=scale) - shift)
