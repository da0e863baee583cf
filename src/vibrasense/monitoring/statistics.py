"""Two samples of one quantity compared: PSI, Kolmogorov–Smirnov and Wasserstein, from scipy.

PSI (population stability index) is the symmetric Kullback–Leibler divergence of the two samples' shares
in bins cut at the reference's quantiles: ``scipy.stats.entropy(p, q) + entropy(q, p)``, which is
Σ (p − q)·ln(p / q). The Wasserstein distance is also given in units of the reference's spread (its
interquartile range over 1.349, a robust standard deviation), so one limit fits every feature.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.stats

MAX_BINS = 10
MIN_PER_BIN = 5
EMPTY_BIN_SHARE = 1e-4
"""Share given to an empty bin, so PSI stays finite when a sample leaves a bin empty."""


@dataclass(frozen=True)
class Comparison:
    """How far a current sample lies from its reference."""

    n_reference: int
    n_current: int
    reference_median: float
    current_median: float
    psi: float
    ks_statistic: float
    ks_pvalue: float
    wasserstein: float
    shift: float
    """Wasserstein distance over the reference's robust spread."""


def compare(reference: np.ndarray, current: np.ndarray) -> Comparison:
    """Compare the finite values of two samples (each needs at least two)."""
    ref = _finite(reference)
    cur = _finite(current)
    ks = scipy.stats.ks_2samp(ref, cur)
    wasserstein = float(scipy.stats.wasserstein_distance(ref, cur))
    return Comparison(
        n_reference=len(ref),
        n_current=len(cur),
        reference_median=float(np.median(ref)),
        current_median=float(np.median(cur)),
        psi=population_stability_index(ref, cur),
        ks_statistic=float(ks.statistic),
        ks_pvalue=float(ks.pvalue),
        wasserstein=wasserstein,
        shift=wasserstein / robust_spread(ref),
    )


def population_stability_index(reference: np.ndarray, current: np.ndarray) -> float:
    """PSI over bins cut at the reference's quantiles (fewer bins for a small reference)."""
    bins = int(np.clip(len(reference) // MIN_PER_BIN, 2, MAX_BINS))
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))
    expected = _shares(np.searchsorted(edges, reference, side="right"), len(edges) + 1)
    actual = _shares(np.searchsorted(edges, current, side="right"), len(edges) + 1)
    return float(scipy.stats.entropy(actual, expected) + scipy.stats.entropy(expected, actual))


def robust_spread(values: np.ndarray) -> float:
    """The IQR over 1.349 (the standard deviation of a normal sample), else the standard deviation, else a scale."""
    q1, q3 = np.quantile(values, [0.25, 0.75])
    for spread in ((q3 - q1) / 1.349, float(np.std(values))):
        if spread > 0:
            return float(spread)
    return max(abs(float(np.median(values))), 1e-12)


def _shares(bin_index: np.ndarray, bins: int) -> np.ndarray:
    counts = np.bincount(bin_index, minlength=bins).astype(np.float64)
    return np.maximum(counts / counts.sum(), EMPTY_BIN_SHARE)


def _finite(values: np.ndarray) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    return array[np.isfinite(array)]
