"""Local outlier factor (Breunig et al., 2000) in novelty mode: density relative to the normal neighbours."""

from __future__ import annotations

from typing import Any

from sklearn.neighbors import LocalOutlierFactor

from vibrasense.models.tabular import TabularDetector


class LOFDetector(TabularDetector):
    """``lof`` with ``novelty=True`` on scaled feature columns; fewer neighbours when the data set is small."""

    name = "lof"

    def __init__(
        self, n_neighbors: int = 20, threshold_method: str = "percentile", threshold_percentile: float = 95.0
    ) -> None:
        super().__init__(threshold_method, threshold_percentile)
        self.n_neighbors = n_neighbors

    def _make_estimator(self) -> Any:
        return _AdaptiveLOF(n_neighbors=self.n_neighbors, novelty=True)


class _AdaptiveLOF(LocalOutlierFactor):
    """LOF whose neighbourhood shrinks to n_samples - 1 when fewer recordings than neighbours are given."""

    def fit(self, X: Any, y: Any = None) -> _AdaptiveLOF:
        self.n_neighbors = max(1, min(self.n_neighbors, len(X) - 1))
        return super().fit(X, y)
