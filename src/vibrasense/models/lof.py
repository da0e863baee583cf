"""Local outlier factor (Breunig et al., 2000) in novelty mode: density relative to the normal neighbours."""

from __future__ import annotations

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

    def _make_estimator(self, n_samples: int) -> LocalOutlierFactor:
        return LocalOutlierFactor(n_neighbors=max(1, min(self.n_neighbors, n_samples - 1)), novelty=True)
