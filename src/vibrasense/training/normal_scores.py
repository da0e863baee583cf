"""Scores of normal recordings by a model that did not see them: what alarm levels are learned from.

A detector scores the recordings it was fitted on lower than new normal ones (Mahalanobis on its own
covariance, a forest on its own splits), so levels learned from those scores sit too low and a healthy machine
crosses them again and again: false warnings. :func:`held_out_normal_scores` gives, for each normal training
recording it can, a score from a model that never saw it:

- a detector that holds some recordings out of its fit (the autoencoders' validation recordings,
  :meth:`~vibrasense.models.base.Detector.calibration_ids`): their scores;
- a tabular detector: ``FOLDS``-fold cross-validation (scikit-learn's ``KFold`` and ``clone``), each fold
  scored by the detector refitted on the others;
- otherwise (too few recordings for folds): the training scores themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import KFold

from vibrasense.models.base import Detector

FOLDS = 5
MIN_PER_FOLD = 4
"""A tabular detector is cross-validated only with at least this many recordings in every fold."""


@dataclass(frozen=True)
class NormalScores:
    """Scores of normal training recordings and their positions in the training rows."""

    positions: np.ndarray
    scores: np.ndarray
    source: str
    """``held out``, ``cross-validated`` or ``in sample``."""


def held_out_normal_scores(detector: Detector, X: Any, seed: int = 0) -> NormalScores:
    """Out-of-sample scores of the normal training recordings ``X`` the fitted ``detector`` was trained on."""
    held_out = detector.calibration_ids(X)
    if held_out:
        positions = np.asarray(held_out, dtype=np.int64)
        return NormalScores(positions, np.asarray(detector.training_scores_, dtype=np.float64)[positions], "held out")
    n = len(X)
    leaf = getattr(detector, "best_", detector)
    if leaf.input_kind != "tabular" or n < FOLDS * MIN_PER_FOLD:
        return NormalScores(np.arange(n), np.asarray(detector.score(X), dtype=np.float64), "in sample")
    scores = np.empty(n, dtype=np.float64)
    for fit_rows, score_rows in KFold(FOLDS, shuffle=True, random_state=seed).split(np.arange(n)):
        fold = clone(leaf).fit(X.iloc[fit_rows])
        scores[score_rows] = fold.score(X.iloc[score_rows])
    return NormalScores(np.arange(n), scores, "cross-validated")
