"""Mahalanobis distance to the normal data under a robust or shrunk covariance estimate."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.covariance import LedoitWolf, MinCovDet

from vibrasense.errors import ModelError
from vibrasense.models.explain import mahalanobis_contributions
from vibrasense.models.tabular import TabularDetector

ESTIMATORS = ("ledoit-wolf", "min-cov-det")


class MahalanobisDetector(TabularDetector):
    """``mahalanobis``: squared distance under Ledoit-Wolf shrinkage (default) or Minimum Covariance Determinant.

    Ledoit-Wolf stays well conditioned with fewer recordings than features; MCD resists outliers hidden in
    the "normal" training data but needs clearly more recordings than features.
    """

    name = "mahalanobis"
    attribution = "mahalanobis-decomposition"

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
        # (x - mu)^T P (x - mu) with the estimator's precision, as its ``mahalanobis`` computes it, without the
        # pairwise-distance machinery and validation that dominate the cost of a single row
        centred = Xt - estimator.location_
        return ((centred @ estimator.get_precision()) * centred).sum(axis=1)

    def feature_contributions(self, X: Any) -> np.ndarray:
        """The exact split of each squared distance over the kept columns: ``rᵢ (P r)ᵢ``, summing to the score."""
        self._check_fitted()
        estimator = self.pipeline_[-1]
        return mahalanobis_contributions(self.transform(X) - estimator.location_, estimator.get_precision())
