"""Mahalanobis distance to the normal data under a robust or shrunk covariance estimate."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.covariance import LedoitWolf, MinCovDet

from vibrasense.errors import ModelError
from vibrasense.models.tabular import TabularDetector

ESTIMATORS = ("ledoit-wolf", "min-cov-det")


class MahalanobisDetector(TabularDetector):
    """``mahalanobis``: squared distance under Ledoit-Wolf shrinkage (default) or Minimum Covariance Determinant.

    Ledoit-Wolf stays well conditioned with fewer recordings than features; MCD resists outliers hidden in
    the "normal" training data but needs clearly more recordings than features.
    """

    name = "mahalanobis"

    def __init__(
        self,
        covariance: str = "ledoit-wolf",
        random_state: int = 42,
        threshold_method: str = "percentile",
        threshold_percentile: float = 95.0,
    ) -> None:
        super().__init__(threshold_method, threshold_percentile)
        self.covariance = covariance
        self.random_state = random_state

    def _make_estimator(self, n_samples: int) -> Any:
        if self.covariance == "ledoit-wolf":
            return LedoitWolf()
        if self.covariance == "min-cov-det":
            return MinCovDet(random_state=self.random_state)
        raise ModelError(f"mahalanobis: covariance={self.covariance!r} is unknown; choose one of {list(ESTIMATORS)}")

    def _raw_scores(self, estimator: Any, Xt: np.ndarray) -> np.ndarray:
        return estimator.mahalanobis(Xt)
