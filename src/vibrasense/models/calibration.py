"""Scores of normal recordings by a model that did not see them: what thresholds and alarm levels are set from.

A detector scores the recordings it was fitted on lower than new normal ones (Mahalanobis on its own
covariance, a one-class SVM on its own support vectors), so a threshold set from those scores sits too low:
on MIMII fan id_00 (14 normal clips), Mahalanobis at the in-sample 95th percentile called 3 of 6 new normal
clips anomalous, the one-class SVM 4 of 6. Every fitted detector therefore keeps ``calibration_``, for each
normal training recording it can, a score from a model that never saw it:

- a detector that holds some recordings out of its fit (the autoencoders' validation recordings,
  :meth:`~vibrasense.models.base.Detector.calibration_ids`): their scores;
- a tabular detector: cross-validation (scikit-learn's ``KFold``, ``FOLDS`` folds; leave-one-out with fewer than
  ``FOLDS * MIN_PER_FOLD`` recordings), each fold scored by the detector refitted on the others;
- otherwise (fewer than ``MIN_LEAVE_ONE_OUT`` recordings): the training scores themselves.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
from sklearn.model_selection import KFold, LeaveOneOut

FOLDS = 5
MIN_PER_FOLD = 4
"""K-fold with at least this many recordings in every fold; below, leave-one-out."""
MIN_LEAVE_ONE_OUT = 5
"""Fewer normal recordings than this are not cross-validated: their own scores set the threshold."""
CalibrationSource = Literal["held out", "cross-validated", "in sample"]


@dataclass(frozen=True)
class NormalScores:
    """Scores of normal training recordings and their positions in the training rows."""

    positions: np.ndarray
    scores: np.ndarray
    source: CalibrationSource


def calibration_splits(n: int, seed: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]] | None:
    """(fit rows, scored rows) of the cross-validation of ``n`` normal recordings; ``None`` when too few."""
    if n < MIN_LEAVE_ONE_OUT:
        return None
    rows = np.arange(n)
    if n < FOLDS * MIN_PER_FOLD:
        return LeaveOneOut().split(rows)
    return KFold(FOLDS, shuffle=True, random_state=seed).split(rows)
