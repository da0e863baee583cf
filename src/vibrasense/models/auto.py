"""``auto``: picks the detector that works best on this data, and records why.

With labelled validation recordings (normal and anomalous) the candidate with the highest validation AUC
wins (ties: the first in candidate order). Without labels the criterion is normal-only, after Tax & Duin
(2001): each tabular candidate is fitted on 80 % of the normal recordings and must separate the 20 %
held out from artificial outliers drawn uniformly from the box spanned by the normal data (widened by
10 % per side); the highest AUC wins. The autoencoders join the competition only when log-mel
spectrograms are given together with labelled validation spectrograms, because no comparable artificial
outliers exist for spectrograms.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from vibrasense.errors import ModelError
from vibrasense.models.base import Detector, InputKind, detector_class, get_detector, load_detector, validate_params

log = logging.getLogger(__name__)

TABULAR_CANDIDATES = ("isolation-forest", "one-class-svm", "lof", "mahalanobis")
AUTOENCODER_CANDIDATES = ("cnn-ae", "dense-ae")
HOLDOUT_FRACTION = 0.2
N_ARTIFICIAL = 200
REPORT_FILE = "selection_report.json"
BEST_DIR = "best"


class AutoDetector(Detector):
    """Selects among the tabular detectors (and the autoencoders) and then behaves as the one selected.

    ``autoencoder_params`` go to both autoencoder candidates; the thresholds of every candidate are this
    detector's own.
    """

    name = "auto"
    selects_on_validation = True

    def __init__(
        self,
        candidates: Sequence[str] = TABULAR_CANDIDATES,
        autoencoder_params: dict[str, Any] | None = None,
        seed: int = 42,
        threshold_method: str = "percentile",
        threshold_percentile: float = 95.0,
    ) -> None:
        super().__init__(threshold_method, threshold_percentile)
        self.candidates = candidates
        self.autoencoder_params = autoencoder_params
        self.seed = seed

    @property
    def input_kind(self) -> InputKind:  # type: ignore[override]
        """``tabular`` until fitted, then the input of the detector selected."""
        best = getattr(self, "best_", None)
        return "tabular" if best is None else best.input_kind

    @classmethod
    def params_from_settings(cls, settings: Mapping[str, Any]) -> dict[str, Any]:
        """Its own, plus as ``autoencoder_params`` the settings both autoencoders take (thresholds aside)."""
        own = super().params_from_settings(settings)
        taken = [detector_class(name).params_from_settings(settings) for name in AUTOENCODER_CANDIDATES]
        shared = set.intersection(*(set(params) for params in taken)) - set(Detector._get_param_names())
        return own | {"autoencoder_params": {k: taken[0][k] for k in sorted(shared)}}

    def fit(
        self,
        X: Any,
        *,
        X_val: Any = None,
        y_val: Sequence[int] | None = None,
        logmel: Sequence[np.ndarray] | None = None,
        logmel_val: Sequence[np.ndarray] | None = None,
        **fit_options: Any,
    ) -> AutoDetector:
        """Select on validation AUC when ``y_val`` holds both classes, else on the normal-only criterion."""
        if len(X) == 0:
            raise ModelError("auto: no normal training recordings given; fit needs at least one")
        # an unknown candidate or autoencoder parameter is the caller's error, not a candidate that failed
        for name in self.candidates:
            detector_class(name)
        for name in AUTOENCODER_CANDIDATES:
            validate_params(detector_class(name), self.autoencoder_params or {}, "auto: autoencoder_params")
        labelled = y_val is not None and len(set(np.asarray(y_val).tolist())) == 2
        results: dict[str, dict[str, Any]] = {}
        if labelled:
            criterion = "validation AUC on labelled validation recordings"
            for name in self.candidates:
                results[name] = self._try(name, lambda d: d.fit(X), lambda d: _auc(y_val, d.score(X_val)))
            if logmel is not None and logmel_val is not None:
                for name in AUTOENCODER_CANDIDATES:
                    results[name] = self._try(
                        name,
                        lambda d: d.fit(logmel, **fit_options),
                        lambda d: _auc(y_val, d.score(logmel_val)),
                    )
        else:
            criterion = (
                "normal-only: AUC of held-out normal recordings against artificial uniform outliers "
                "(Tax & Duin 2001); autoencoders need labelled validation spectrograms and were not compared"
            )
            table, held_out, artificial = self._normal_only_split(X)
            for name in self.candidates:
                results[name] = self._try(
                    name,
                    lambda d: d.fit(table),
                    lambda d: _auc(
                        [0] * len(held_out) + [1] * len(artificial), np.r_[d.score(held_out), d.score(artificial)]
                    ),
                )
        scored = {n: r for n, r in results.items() if r.get("auc") is not None}
        if not scored:
            raise ModelError(
                f"auto: no candidate could be fitted: {json.dumps({n: r.get('error') for n, r in results.items()})}"
            )
        best = max(scored, key=lambda n: scored[n]["auc"])
        final = self._candidate(best)
        if best in AUTOENCODER_CANDIDATES:
            final.fit(logmel, **fit_options)
        else:
            final.fit(X)
        self.best_ = final
        self.selection_report_ = {
            "criterion": criterion,
            "selected": best,
            "candidates": results,
            "reason": f"{best} has the highest AUC ({scored[best]['auc']:.4f}) under the criterion",
        }
        log.info("auto selected %s: %s", best, self.selection_report_["reason"])
        self.threshold_ = final.threshold_
        self.training_scores_ = final.training_scores_
        self.calibration_ = final.calibration_
        self.fitted_ = True
        return self

    def _candidate(self, name: str) -> Detector:
        params = dict(self.autoencoder_params or {}) if name in AUTOENCODER_CANDIDATES else {}
        params |= {"threshold_method": self.threshold_method, "threshold_percentile": self.threshold_percentile}
        return get_detector(name, **params)

    def _try(self, name: str, fit: Any, evaluate: Any) -> dict[str, Any]:
        detector = self._candidate(name)
        try:
            fit(detector)
            return {"auc": float(evaluate(detector))}
        except (ModelError, ValueError) as error:
            log.warning("auto: candidate %s failed: %s", name, error)
            return {"auc": None, "error": str(error)}

    def _normal_only_split(self, X: Any) -> tuple[Any, np.ndarray, np.ndarray]:
        """(fit part, held-out normal rows, artificial outliers) as arrays over the input's columns."""
        if isinstance(X, pd.DataFrame):
            from vibrasense.models.tabular import feature_columns

            values = X[feature_columns(X)].to_numpy(dtype=np.float64)
        else:
            values = np.asarray(X, dtype=np.float64)
        rng = np.random.default_rng(self.seed)
        order = rng.permutation(len(values))
        n_hold = max(1, round(len(values) * HOLDOUT_FRACTION)) if len(values) >= 5 else 0
        held = values[order[:n_hold]] if n_hold else values
        fit_part = values[order[n_hold:]]
        finite = np.where(np.isfinite(fit_part), fit_part, np.nan)
        empty = np.isnan(finite).all(axis=0)
        low = np.nanmin(np.where(empty, 0.0, finite), axis=0)
        high = np.nanmax(np.where(empty, 0.0, finite), axis=0)
        margin = 0.1 * (high - low)
        artificial = rng.uniform(low - margin, high + margin, size=(N_ARTIFICIAL, values.shape[1]))
        artificial[:, empty] = np.nan  # columns without data stay without data
        return fit_part, held, artificial

    def _score(self, X: Any) -> np.ndarray:
        return self.best_.score(X)

    def _save_state(self, directory: Path) -> None:
        self.best_.save(directory / BEST_DIR)
        (directory / REPORT_FILE).write_text(json.dumps(self.selection_report_, indent=2))

    def _load_state(self, directory: Path) -> None:
        self.best_ = load_detector(directory / BEST_DIR)
        self.selection_report_ = json.loads((directory / REPORT_FILE).read_text())


def _auc(labels: Sequence[int], scores: np.ndarray) -> float:
    scores = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=np.inf)
    return float(roc_auc_score(np.asarray(labels), scores))
