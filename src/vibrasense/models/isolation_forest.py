"""Isolation forest (Liu et al., 2008): anomalies are isolated by fewer random splits."""

from __future__ import annotations

from sklearn.ensemble import IsolationForest

from vibrasense.models.tabular import TabularDetector


class IsolationForestDetector(TabularDetector):
    """``isolation-forest`` on scaled feature columns."""

    name = "isolation-forest"

    def __init__(
        self,
        n_estimators: int = 200,
        max_samples: str | int | float = "auto",
        random_state: int = 42,
        threshold_method: str = "percentile",
        threshold_percentile: float = 95.0,
    ) -> None:
        super().__init__(threshold_method, threshold_percentile)
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.random_state = random_state

    def _make_estimator(self, n_samples: int) -> IsolationForest:
        return IsolationForest(
            n_estimators=self.n_estimators,
            max_samples=self.max_samples,
            random_state=self.random_state,
            n_jobs=1,
        )
