"""What the scikit-learn detectors share: feature columns in, a scaled Pipeline, joblib on disk.

Columns that are all NaN or constant on the training data carry no information (and break scaling); they
are dropped at fit and remembered, so scoring selects the same columns. Remaining NaNs are imputed with
the training median. Fit also learns each kept column's normal range, which explanations of a score report
(:mod:`vibrasense.models.explain`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import joblib
import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from vibrasense.errors import ModelError
from vibrasense.models.base import Detector
from vibrasense.models.calibration import calibration_splits
from vibrasense.models.explain import AttributionMethod, NormalRanges, robust_z_contributions
from vibrasense.signals.records import RECORD_COLUMNS

PIPELINE_FILE = "pipeline.joblib"


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """Numeric feature columns of a features table: everything but the record metadata and private ones."""
    return [
        c
        for c in frame.columns
        if c not in RECORD_COLUMNS and not str(c).startswith("_") and pd.api.types.is_numeric_dtype(frame[c])
    ]


class TabularDetector(Detector):
    """A scikit-learn estimator on feature columns, behind imputation and standard scaling."""

    input_kind = "tabular"
    attribution: ClassVar[AttributionMethod] = "robust-z"
    """How :meth:`feature_contributions` attributes a score to the features (see :mod:`vibrasense.models.explain`)."""

    def _make_estimator(self, n_samples: int) -> Any:
        """A new scikit-learn estimator for ``n_samples`` training rows."""
        raise NotImplementedError

    def _raw_scores(self, estimator: Any, Xt: np.ndarray) -> np.ndarray:
        """Anomaly scores (higher = more anomalous) of imputed, scaled rows."""
        return -estimator.score_samples(Xt)

    def _fit(self, X: Any, **fit_options: Any) -> None:
        values, columns = self._as_matrix(X, fitting=True)
        if len(values) < 2:
            raise ModelError(
                f"{self.name}: {len(values)} normal training row(s); a detector learns the spread of normal data "
                "and needs at least 2. Cut recordings into windows at ingest (vibrasense features --segment 1s "
                "--hop 0.1s) or add normal recordings"
            )
        finite = np.where(np.isfinite(values), values, np.nan)
        all_nan = np.isnan(finite).all(axis=0)
        with np.errstate(invalid="ignore"):
            spread = np.nanmax(np.where(all_nan, 0.0, finite), axis=0) - np.nanmin(
                np.where(all_nan, 0.0, finite), axis=0
            )
        constant = ~all_nan & (spread == 0)
        keep = ~(all_nan | constant)
        self.columns_ = columns
        self.dropped_columns_ = {
            c: ("all NaN" if all_nan[i] else "constant") for i, c in enumerate(columns) if not keep[i]
        }
        if not keep.any():
            raise ModelError(
                f"{self.name}: every feature column is empty or constant on the normal training data "
                f"({', '.join(f'{c} ({why})' for c, why in self.dropped_columns_.items()) or 'no columns'}); "
                "check the features stage output (vibrasense features): the recordings may all be alike"
            )
        self.kept_columns_ = [c for i, c in enumerate(columns) if keep[i]]
        self.keep_index_ = np.flatnonzero(keep)
        self.pipeline_ = Pipeline(
            [
                ("impute", SimpleImputer(strategy="median")),
                ("scale", StandardScaler()),
                ("detector", self._make_estimator(len(values))),
            ]
        )
        self.pipeline_.fit(finite[:, self.keep_index_])
        self.normal_ranges_: NormalRanges | None = NormalRanges.fit(finite[:, self.keep_index_])

    def cross_validated_scores(self, X: Any, fit_options: Mapping[str, Any]) -> np.ndarray | None:
        """Each training row scored by a clone of this detector fitted on the other folds."""
        splits = calibration_splits(len(X))
        if splits is None:
            return None
        scores = np.empty(len(X), dtype=np.float64)
        for fit_rows, score_rows in splits:
            fold = clone(self)
            fold._fit(_rows(X, fit_rows), **fit_options)
            scores[score_rows] = fold._score(_rows(X, score_rows))
        return scores

    def _score(self, X: Any) -> np.ndarray:
        Xt = self.transform(X)
        return np.asarray(self._raw_scores(self.pipeline_[-1], Xt), dtype=np.float64)

    def feature_contributions(self, X: Any) -> np.ndarray:
        """Each kept column's contribution to the score of each row (rows × kept columns), by :attr:`attribution`.

        Raises :class:`ModelError` for a detector saved before normal ranges were learned (retrain it).
        """
        self._check_fitted()
        if self.normal_ranges_ is None:
            raise ModelError(f"{self.name}: saved without normal feature ranges; retrain it to explain its scores")
        return robust_z_contributions(self.normal_ranges_, self.select(X))

    def transform(self, X: Any) -> np.ndarray:
        """Rows reduced to the kept columns, imputed and scaled as at fit.

        The arithmetic of ``SimpleImputer.transform`` then ``StandardScaler.transform`` (the same operations,
        the same values), without their input validation, which costs more than the work on a few rows.
        """
        values = self.select(X)
        imputer, scaler = self.pipeline_.steps[0][1], self.pipeline_.steps[1][1]
        missing = np.isnan(values)
        if missing.any():
            values = np.where(missing, imputer.statistics_, values)
        if scaler.with_mean:
            values = values - scaler.mean_
        if scaler.with_std:
            values = values / scaler.scale_
        return values

    def select(self, X: Any) -> np.ndarray:
        """Rows as a float matrix of the kept columns (by name for a DataFrame, by position for arrays)."""
        if isinstance(X, pd.DataFrame):
            missing = [c for c in self.kept_columns_ if c not in X.columns]
            if missing:
                raise ModelError(f"{self.name}: input lacks the feature columns {missing} it was trained on")
            values = X[self.kept_columns_].to_numpy(dtype=np.float64)
        else:
            values = np.atleast_2d(np.asarray(X, dtype=np.float64))
            if values.shape[1] == len(self.columns_):
                values = values[:, self.keep_index_]
            elif values.shape[1] != len(self.kept_columns_):
                raise ModelError(
                    f"{self.name}: input has {values.shape[1]} columns; expected {len(self.columns_)} "
                    f"(as at fit) or {len(self.kept_columns_)} (the kept ones)"
                )
        return np.where(np.isfinite(values), values, np.nan)

    def _as_matrix(self, X: Any, fitting: bool) -> tuple[np.ndarray, list[str]]:
        if isinstance(X, pd.DataFrame):
            columns = feature_columns(X)
            if not columns:
                raise ModelError(f"{self.name}: the table has no numeric feature columns; got {list(X.columns)}")
            return X[columns].to_numpy(dtype=np.float64), columns
        values = np.asarray(X, dtype=np.float64)
        if values.ndim != 2:
            raise ModelError(f"{self.name}: tabular input must be 2-D (recordings, features); got {values.shape}")
        return values, [f"x{i}" for i in range(values.shape[1])]

    def _save_state(self, directory: Path) -> None:
        joblib.dump(
            {
                "pipeline": self.pipeline_,
                "columns": self.columns_,
                "kept_columns": self.kept_columns_,
                "dropped_columns": self.dropped_columns_,
                "normal_ranges": self.normal_ranges_.to_dict() if self.normal_ranges_ is not None else None,
            },
            directory / PIPELINE_FILE,
        )

    def _load_state(self, directory: Path) -> None:
        state = joblib.load(directory / PIPELINE_FILE)
        self.pipeline_ = state["pipeline"]
        self.columns_ = state["columns"]
        self.kept_columns_ = state["kept_columns"]
        self.dropped_columns_ = state["dropped_columns"]
        ranges = state.get("normal_ranges")  # absent in folders saved before explanations
        self.normal_ranges_ = NormalRanges.from_dict(ranges) if ranges else None
        self.keep_index_ = np.array([self.columns_.index(c) for c in self.kept_columns_], dtype=np.int64)


def _rows(X: Any, positions: np.ndarray) -> Any:
    """The rows of a table or an array at ``positions``."""
    return X.iloc[positions] if isinstance(X, pd.DataFrame) else np.asarray(X)[positions]
