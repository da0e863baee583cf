"""The one interface of every detector, and how detectors are found by name.

Conventions of scikit-learn and PyOD: a detector is a :class:`sklearn.base.BaseEstimator` whose
constructor only stores hyper-parameters (so ``get_params``, ``set_params`` and ``sklearn.base.clone``
work); ``fit(X)`` learns from normal recordings only and never changes a hyper-parameter; fitted state
ends in ``_``; ``score(X)`` returns one anomaly score per recording (higher = more anomalous);
``threshold_`` is learned from scores of the normal training recordings by models that did not see them
(``calibration_``, :mod:`vibrasense.models.calibration`); ``predict(X)`` is
``score(X) > threshold_`` as 0/1. ``save(dir)`` writes plain files (JSON plus a torch state dict or a
joblib pickle) that :func:`load_detector` reads without Lightning.

Detectors are discovered: every module of this package is imported (except the training-only
``lightning_*`` ones) and every subclass of :class:`Detector` that sets ``name`` is known by that name.
"""

from __future__ import annotations

import functools
import importlib
import json
import pkgutil
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

import numpy as np
import yaml
from pydantic import TypeAdapter, ValidationError
from sklearn.base import BaseEstimator

from vibrasense.errors import ModelError
from vibrasense.models.calibration import NormalScores
from vibrasense.models.threshold import THRESHOLD_METHODS, fit_threshold

InputKind = Literal["logmel", "tabular"]
DETECTOR_FILE = "detector.json"
FORMAT_VERSION = 1
TRAINING_ONLY_PREFIX = "lightning"  # modules that import Lightning: training loads them, discovery does not


class Detector(BaseEstimator):
    """Base of every detector; a subclass that sets ``name`` is found under it."""

    name: ClassVar[str] = ""
    input_kind: ClassVar[InputKind] = "tabular"
    # True for a detector that selects among others: its fit also takes labelled validation recordings
    # (X_val, y_val) and log-mel spectrograms (logmel, logmel_val)
    selects_on_validation: ClassVar[bool] = False
    # hyper-parameters added after folders of this detector were first saved, with the value every folder
    # saved before them was trained with: such a folder loads as it was trained, not with today's default
    added_params: ClassVar[dict[str, Any]] = {}

    def __init__(self, threshold_method: str = "percentile", threshold_percentile: float = 95.0) -> None:
        self.threshold_method = threshold_method
        self.threshold_percentile = threshold_percentile

    @classmethod
    def params_from_settings(cls, settings: Mapping[str, Any]) -> dict[str, Any]:
        """Constructor arguments taken from settings shared by every detector (``training.*``).

        Each setting this constructor accepts by name is taken, ``seed`` also as ``random_state``; a
        setting left ``None`` keeps the constructor's default.
        """
        given = {k: v for k, v in settings.items() if v is not None}
        if "seed" in given:
            given.setdefault("random_state", given["seed"])
        accepted = cls._get_param_names()
        return {k: v for k, v in given.items() if k in accepted}

    # -- the interface -------------------------------------------------------------------------------

    def fit(self, X: Any, **fit_options: Any) -> Self:
        """Learn from normal recordings ``X``, then set ``threshold_`` from their out-of-sample scores
        (``calibration_``)."""
        if self.threshold_method not in THRESHOLD_METHODS:
            raise ModelError(
                f"{self.name}: threshold_method={self.threshold_method!r} is unknown; "
                f"choose one of {list(THRESHOLD_METHODS)}"
            )
        if _length(X) == 0:
            raise ModelError(f"{self.name}: no normal training recordings given; fit needs at least one")
        scores = self._fit(X, **fit_options)
        self.fitted_ = True
        self.training_scores_ = self._score(X) if scores is None else np.asarray(scores, dtype=np.float64)
        self.calibration_ = self._calibration(X, fit_options)
        self.threshold_ = fit_threshold(self.calibration_.scores, self.threshold_method, self.threshold_percentile)
        return self

    def _calibration(self, X: Any, fit_options: Mapping[str, Any]) -> NormalScores:
        """Out-of-sample scores of the normal training recordings: held out, else cross-validated, else (too
        few recordings, or a detector that cannot be refitted per fold) their training scores."""
        held_out = self.calibration_ids(X)
        if held_out:
            positions = np.asarray(held_out, dtype=np.int64)
            return NormalScores(positions, self.training_scores_[positions], "held out")
        positions = np.arange(len(self.training_scores_))
        cross_validated = self.cross_validated_scores(X, fit_options)
        if cross_validated is not None:
            return NormalScores(positions, cross_validated, "cross-validated")
        return NormalScores(positions, self.training_scores_, "in sample")

    def calibration_ids(self, X: Any) -> list[int]:
        """Positions in ``X`` of the normal recordings held out of the fit, when the detector keeps some (then
        the threshold is set from their scores: a model that fits its training recordings closely scores them
        lower than new normal ones); empty otherwise."""
        return []

    def cross_validated_scores(self, X: Any, fit_options: Mapping[str, Any]) -> np.ndarray | None:
        """Each normal training recording's score by this detector refitted on the others
        (:func:`~vibrasense.models.calibration.calibration_splits`); ``None`` where it does not cross-validate."""
        return None

    def score(self, X: Any) -> np.ndarray:
        """Anomaly score of each recording, higher = more anomalous."""
        self._check_fitted()
        return np.asarray(self._score(X), dtype=np.float64)

    def predict(self, X: Any) -> np.ndarray:
        """1 for each recording scored above ``threshold_``, else 0."""
        return (self.score(X) > self.threshold_).astype(np.int64)

    def set_params(self, **params: Any) -> Self:
        """Change hyper-parameters, checked as :func:`get_detector` checks them; fitted state is kept."""
        return super().set_params(**validate_params(type(self), params))

    @property
    def is_fitted(self) -> bool:
        """Whether ``fit`` has run."""
        return getattr(self, "fitted_", False)

    def __sklearn_is_fitted__(self) -> bool:
        return self.is_fitted

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
            "params": self.get_params(deep=False),
            "threshold_": float(self.threshold_),
            "training_scores_": [float(s) for s in self.training_scores_],
        }
        (out / DETECTOR_FILE).write_text(json.dumps(meta, indent=2))
        return out

    @classmethod
    def load(cls, directory: Path | str) -> Detector:
        """Read a detector written by :meth:`save` (of any kind)."""
        return load_detector(directory)

    # -- what subclasses implement -------------------------------------------------------------------

    def _fit(self, X: Any, **fit_options: Any) -> np.ndarray | None:
        """Learn from ``X``; return the score of each recording of ``X`` when the fit computed them anyway (else
        ``fit`` scores them)."""
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


def _length(X: Any) -> int:
    return X.shape[0] if hasattr(X, "shape") else len(X)


def list_detectors() -> list[str]:
    """Names of every detector found, sorted."""
    return sorted(_detector_classes())


def detector_class(name: str) -> type[Detector]:
    """The detector class found as ``name``; unknown names raise :class:`ModelError` listing them."""
    classes = _detector_classes()
    try:
        return classes[name]
    except KeyError:
        raise ModelError(
            f"unknown model {name!r}; known models are {sorted(classes)} (set training.model.name or pass --model)"
        ) from None


def get_detector(name: str, /, **hyper_parameters: Any) -> Detector:
    """A new, unfitted detector by name, e.g. ``get_detector("cnn-ae", z_dim=8)``; parameters are checked."""
    cls = detector_class(name)
    return cls(**validate_params(cls, hyper_parameters))


def validate_params(cls: type[Detector], params: Mapping[str, Any], field: str = "") -> dict[str, Any]:
    """``params`` checked against the constructor of ``cls``: names, then types (lax: ``"10"`` is an int).

    Returns the values converted to the constructor's types. ``field`` (e.g. ``training.model.params``)
    prefixes the message of the :class:`ModelError` raised for an unknown name or a wrong type.
    """
    where = f"{field}: " if field else ""
    accepted = cls._get_param_names()
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ModelError(
            f"{where}model {cls.name!r} has no hyper-parameter {', '.join(map(repr, unknown))}; "
            f"it accepts {', '.join(accepted)}"
        )
    types = _param_types(cls)
    checked: dict[str, Any] = {}
    for key, value in params.items():
        annotation, adapter = types[key]
        try:
            checked[key] = adapter.validate_python(value)
        except ValidationError as error:
            reason = "; ".join(e["msg"] for e in error.errors())
            raise ModelError(
                f"{where}hyper-parameter {key}={value!r} of model {cls.name!r} is invalid: {reason} "
                f"(the constructor takes {key}: {_type_name(annotation)})"
            ) from None
    return checked


def parse_param(cls: type[Detector], assignment: str) -> tuple[str, Any]:
    """``"key=value"`` (a command-line flag) as the constructor's name and a value of its type.

    The value is read as YAML (``10``, ``0.5``, ``[a, b]``, ``null``) when that fits the type, else kept as
    text, so ``gamma=scale`` and ``gamma=0.1`` both work.
    """
    key, equals, text = assignment.partition("=")
    key = key.strip().replace("-", "_")
    if not equals or not key:
        raise ModelError(f"--param {assignment!r}: expected KEY=VALUE, e.g. --param n_neighbors=10")
    try:
        parsed = yaml.safe_load(text)
    except yaml.YAMLError:
        parsed = text
    try:
        return key, validate_params(cls, {key: parsed}, "--param")[key]
    except ModelError:
        if parsed == text:
            raise
        return key, validate_params(cls, {key: text}, "--param")[key]


def load_detector(directory: Path | str) -> Detector:
    """Read any detector written by :meth:`Detector.save`."""
    folder = Path(directory)
    meta_path = folder / DETECTOR_FILE
    if not meta_path.is_file():
        raise ModelError(f"{folder}: no {DETECTOR_FILE} here; is this a folder written by Detector.save?")
    meta = json.loads(meta_path.read_text())
    cls = detector_class(meta["detector"])
    detector = cls(**(cls.added_params | meta["params"]))
    detector._load_state(folder)
    detector.threshold_ = float(meta["threshold_"])
    detector.training_scores_ = np.asarray(meta.get("training_scores_", []), dtype=np.float64)
    detector.fitted_ = True
    return detector


@functools.cache
def _param_types(cls: type[Detector]) -> dict[str, tuple[Any, TypeAdapter]]:
    """Each constructor parameter's annotation (``Any`` when unannotated) and its pydantic adapter."""
    hints = typing.get_type_hints(cls.__init__)
    return {name: (hints.get(name, Any), TypeAdapter(hints.get(name, Any))) for name in cls._get_param_names()}


def _type_name(annotation: Any) -> str:
    text = annotation.__name__ if isinstance(annotation, type) else str(annotation)
    return text.replace("typing.", "").replace("collections.abc.", "")


def _detector_classes() -> dict[str, type[Detector]]:
    """Every subclass of :class:`Detector` that sets ``name``, by name, once the package's modules are imported."""
    _import_detector_modules()
    found: dict[str, type[Detector]] = {}
    pending = list(Detector.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        name = cls.__dict__.get("name")
        if not name:
            continue
        known = found.setdefault(name, cls)
        if _qualified(known) != _qualified(cls):
            raise ModelError(f"two detectors are named {name!r}: {_qualified(known)} and {_qualified(cls)}")
    return found


@functools.cache
def _import_detector_modules() -> None:
    """Import every module of ``vibrasense.models`` so that each detector class exists.

    Modules named ``lightning_*`` hold the Lightning side of training; they are imported by ``fit`` when
    it needs them, so that finding (and loading, and scoring with) a detector never imports Lightning.
    """
    package = importlib.import_module("vibrasense.models")
    for module in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
        if not module.name.rpartition(".")[2].startswith(TRAINING_ONLY_PREFIX):
            importlib.import_module(module.name)


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"
