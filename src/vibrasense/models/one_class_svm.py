"""One-class SVM (Schölkopf et al., 2001): a boundary around the normal data in an RBF feature space."""

from __future__ import annotations

import numpy as np
from sklearn.svm import OneClassSVM

from vibrasense.models.tabular import TabularDetector


class OneClassSVMDetector(TabularDetector):
    """``one-class-svm`` on scaled feature columns; the score is minus the signed distance to the boundary."""

    name = "one-class-svm"

    def __init__(
        self,
        nu: float = 0.05,
        gamma: str | float = "scale",
        threshold_method: str = "percentile",
        threshold_percentile: float = 95.0,
    ) -> None:
        super().__init__(threshold_method, threshold_percentile)
        self.nu = nu
        self.gamma = gamma

    def _make_estimator(self, n_samples: int) -> OneClassSVM:
        return OneClassSVM(kernel="rbf", nu=self.nu, gamma=self.gamma)

    def _raw_scores(self, estimator: OneClassSVM, Xt: np.ndarray) -> np.ndarray:
        return -estimator.decision_function(Xt)
