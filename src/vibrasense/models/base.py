"""The one interface of every detector, and how detectors are found by name.

Conventions of scikit-learn and PyOD: the constructor only stores hyper-parameters; ``fit(X)`` learns from
normal recordings only; fitted state ends in ``_``; ``score(X)`` returns one anomaly score per recording
(higher = more anomalous); ``threshold_`` is learned from the scores of the training recordings;
``predict(X)`` is ``score(X) > threshold_`` as 0/1. ``save(dir)`` writes plain files (JSON plus a torch
state dict or a joblib pickle) that :func:`load_detector` reads without Lightning.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

import numpy as np

from vibrasense.errors import ModelError
from vibrasense.models.threshold import THRESHOLD_METHODS, fit_threshold

InputKind = Literal["logmel", "tabular"]
DETECTOR_FILE = "detector.json"
FORMAT_VERSION = 1


class Detector:
    """Base of every detector; a subclass that sets ``name`` is registered under it."""

    name: ClassVar[str] = ""
    input_kind: ClassVar[InputKind] = "tabular"
    _registry: ClassVar[dict[str, type[Detector]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("name"):
            Detector._registry[cls.name] = cls

    def __init__(self, threshold_method: str = "percentile", threshold_percentile: float = 95.0) -> None:
        self.threshold_method = threshold_method
        self.threshold_percentile = threshold_percentile

    # -- the interface -------------------------------------------------------------------------------

    def fit(self, X: Any, **fit_options: Any) -> Self:
        """Learn from normal recordings ``X``, then set ``threshold_`` from their scores."""
        if self.threshold_method not in THRESHOLD_METHODS:
            raise ModelError(
                f"{self.name}: threshold_method={self.threshold_method!r} is unknown; "
                f"choose one of {list(THRESHOLD_METHODS)}"
            )
        if _length(X) == 0:
            raise ModelError(f"{self.name}: no normal training recordings given; fit needs at least one")
        self._fit(X, **fit_options)
        self.fitted_ = True
        self.training_scores_ = self._score(X)
        self.threshold_ = fit_threshold(self.training_scores_, self.threshold_method, self.threshold_percentile)
        return self

    def score(self, X: Any) -> np.ndarray:
        """Anomaly score of each recording, higher = more anomalous."""
        self._check_fitted()
        return np.asarray(self._score(X), dtype=np.float64)

    def predict(self, X: Any) -> np.ndarray:
        """1 for each recording scored above ``threshold_``, else 0."""
        return (self.score(X) > self.threshold_).astype(np.int64)

    def get_params(self) -> dict[str, Any]:
        """The hyper-parameters given to the constructor (scikit-learn convention)."""
        return {name: getattr(self, name) for name in _param_names(type(self))}

    @property
    def is_fitted(self) -> bool:
        """Whether ``fit`` has run."""
        return getattr(self, "fitted_", False)

    # -- persistence ---------------------------------------------------------------------------------

    def save(self, directory: Path | str) -> Path:
        """Write the fitted detector into ``directory`` (created); returns it."""
        self._check_fitted()
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        self._save_state(out)
        meta = {
            "format_version": FORMAT_VERSION,
            "detector": self.name,
            "params": self.get_params(),
            "threshold_": float(self.threshold_),
            "training_scores_": [float(s) for s in self.training_scores_],
        }
        (out / DETECTOR_FILE).write_text(json.dumps(meta, indent=2))
        return out

    @classmethod
    def load(cls, directory: Path | str) -> Detector:
        """Read a detector written by :meth:`save` (any registered kind)."""
        return load_detector(directory)

    # -- what subclasses implement -------------------------------------------------------------------

    def _fit(self, X: Any, **fit_options: Any) -> None:
        raise NotImplementedError

    def _score(self, X: Any) -> np.ndarray:
        raise NotImplementedError

    def _save_state(self, directory: Path) -> None:
        raise NotImplementedError

    def _load_state(self, directory: Path) -> None:
        raise NotImplementedError

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise ModelError(f"detector {self.name!r} is not fitted; call fit(X) on normal recordings first")

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"


def _length(X: Any) -> int:
    return X.shape[0] if hasattr(X, "shape") else len(X)


def list_detectors() -> list[str]:
    """Names of every registered detector, sorted."""
    _import_builtin()
    return sorted(Detector._registry)


def detector_class(name: str) -> type[Detector]:
    """The detector class registered as ``name``; unknown names raise :class:`ModelError` listing them."""
    _import_builtin()
    try:
        return Detector._registry[name]
    except KeyError:
        raise ModelError(
            f"unknown model {name!r}; known models are {sorted(Detector._registry)} "
            "(set training.model or pass --model)"
        ) from None


def get_detector(name: str, **hyper_parameters: Any) -> Detector:
    """A new, unfitted detector by name, e.g. ``get_detector("cnn-ae", z_dim=8)``."""
    cls = detector_class(name)
    accepted = _param_names(cls)
    unknown = sorted(set(hyper_parameters) - set(accepted))
    if unknown:
        raise ModelError(f"model {name!r} has no hyper-parameter {unknown}; it accepts {accepted}")
    return cls(**hyper_parameters)


def _param_names(cls: type[Detector]) -> list[str]:
    """Constructor parameters of a detector class and of the classes it extends."""
    names = [
        p.name
        for klass in cls.__mro__
        if "__init__" in klass.__dict__ and klass is not object
        for p in inspect.signature(klass.__init__).parameters.values()
        if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    ]
    return list(dict.fromkeys(names))


def load_detector(directory: Path | str) -> Detector:
    """Read any detector written by :meth:`Detector.save`."""
    folder = Path(directory)
    meta_path = folder / DETECTOR_FILE
    if not meta_path.is_file():
        raise ModelError(f"{folder}: no {DETECTOR_FILE} here; is this a folder written by Detector.save?")
    meta = json.loads(meta_path.read_text())
    detector = detector_class(meta["detector"])(**meta["params"])
    detector._load_state(folder)
    detector.threshold_ = float(meta["threshold_"])
    detector.training_scores_ = np.asarray(meta.get("training_scores_", []), dtype=np.float64)
    detector.fitted_ = True
    return detector


def _import_builtin() -> None:
    """Import the built-in detector modules so that they register."""
    from vibrasense.models import (  # noqa: F401
        auto,
        cnn_ae,
        dense_ae,
        isolation_forest,
        lof,
        mahalanobis,
        one_class_svm,
    )
