"""What drove a score, in numbers: the normal range of each feature and per-feature attributions.

Two attributions of a tabular score to its feature columns, both cheap (one pass over one row):

- ``mahalanobis-decomposition`` (exact, for ``mahalanobis``): with ``r`` the imputed, standardised row minus the
  fitted location and ``P`` the fitted precision matrix, the squared distance is ``r·P·r = Σᵢ rᵢ (P r)ᵢ``; feature
  ``i`` contributes ``rᵢ (P r)ᵢ``. The contributions sum to the score; one can be negative when correlated
  features deviate against their usual correlation.
- ``robust-z`` (for every other tabular detector): how far each feature lies outside its normal spread,
  ``zᵢ = (xᵢ - medianᵢ) / scaleᵢ`` with the median and the robust scale (IQR / 1.349, the standard deviation
  of a normal variable) of the normal training rows; feature ``i`` contributes ``zᵢ²``. It says which features
  are unusual, not how the model weighs them; it costs no model call.

The normal range shown with a feature is the 5th to 95th percentile of its normal training values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

AttributionMethod = Literal["mahalanobis-decomposition", "robust-z"]
NORMAL_PERCENTILES = (5.0, 95.0)
IQR_TO_SIGMA = 1.349  # interquartile range of a standard normal variable


@dataclass(frozen=True)
class NormalRanges:
    """Per feature column, over the normal training rows: median, robust scale and the 5th-95th percentile."""

    median: np.ndarray
    scale: np.ndarray
    low: np.ndarray
    high: np.ndarray

    @classmethod
    def fit(cls, values: np.ndarray) -> NormalRanges:
        """The ranges of the columns of ``values`` (rows × columns, NaN where missing; no column all NaN)."""
        q25, median, q75, low, high = np.nanpercentile(values, [25.0, 50.0, 75.0, *NORMAL_PERCENTILES], axis=0)
        scale = (q75 - q25) / IQR_TO_SIGMA
        # a column whose middle half is one value still spreads (else it was dropped): use its standard deviation
        scale = np.where(scale > 0, scale, np.nanstd(values, axis=0))
        return cls(median, np.where(scale > 0, scale, 1.0), low, high)

    def robust_z(self, values: np.ndarray) -> np.ndarray:
        """``(values - median) / scale`` per column; a missing value (NaN) is at its median (z = 0)."""
        return np.nan_to_num((values - self.median) / self.scale, nan=0.0)

    def to_dict(self) -> dict[str, list[float]]:
        """The ranges as plain lists (what the detector saves)."""
        return {name: getattr(self, name).tolist() for name in ("median", "scale", "low", "high")}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NormalRanges:
        """Ranges written by :meth:`to_dict`."""
        return cls(*(np.asarray(data[name], dtype=np.float64) for name in ("median", "scale", "low", "high")))


def robust_z_contributions(ranges: NormalRanges, values: np.ndarray) -> np.ndarray:
    """``zᵢ²`` of each feature of each row (rows × kept columns) against the normal ranges."""
    return ranges.robust_z(values) ** 2


def mahalanobis_contributions(residuals: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """``rᵢ (P r)ᵢ`` of each feature of each residual row ``r``: they sum to the squared distance ``r·P·r``."""
    return residuals * (residuals @ precision)
