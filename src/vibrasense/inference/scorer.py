"""A model folder ready to score raw recordings: detector + the feature spec it was trained on + its inputs.

Scoring computes the model's inputs with the one featurizer from the spec recorded in the folder, never
from the configuration of the process that serves it; the context (bearing, shaft speed) comes from the
caller, else from the model's recorded default, and a needed column that cannot be computed is refused
with the field to give. The hot path uses no pandas; thread pools are the process's business
(:func:`vibrasense.inference.limit_process_threads`), not the scorer's.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Protocol, runtime_checkable

import numpy as np

from vibrasense.errors import InputError, ModelError
from vibrasense.features.featurize import featurize
from vibrasense.features.spec import SPEC_VERSION, FeatureSpec
from vibrasense.inference.domain import DomainReference, signatures_of
from vibrasense.inference.model_inputs import ModelInputs
from vibrasense.signals.records import SignalContext

if TYPE_CHECKING:  # the detectors (scikit-learn, torch) load with a native model, never for an ONNX one
    from vibrasense.inference.explanation import Explanation
    from vibrasense.models.base import Detector


class Verdict(NamedTuple):
    """The verdict on one recording: higher score is more anomalous; above ``threshold`` it is an anomaly,
    unless the recording lies far outside what the model was trained on (``unknown_domain``): then its score
    says nothing about the machine and it is no anomaly of it."""

    score: float
    threshold: float
    is_anomaly: bool
    explanation: Explanation | None = None
    """What drove the score, when it was asked for (see :mod:`vibrasense.inference.explanation`)."""
    domain_distance: float | None = None
    """Distance to the nearest training recording in units of their own spacing (:mod:`~vibrasense.inference.domain`);
    ``None`` for a model saved before domain references were kept."""
    unknown_domain: bool = False
    far_from_training: bool = False
    """Beyond the domain limit: an unknown domain, unless the recording named a machine the model was trained on
    (then it is judged as that machine's)."""

    @property
    def state(self) -> str:
        """``unknown_domain``, ``anomaly`` or ``normal``."""
        return "unknown_domain" if self.unknown_domain else "anomaly" if self.is_anomaly else "normal"


@runtime_checkable
class Scorer(Protocol):
    """What a service scores with: a name, a version, and ``score`` of raw samples."""

    name: str
    version: str

    def score(
        self,
        samples: np.ndarray,
        sample_rate: float,
        context: SignalContext | None = None,
        *,
        machine_id: str | None = None,
    ) -> Verdict:
        """The verdict on float32 mono samples at ``sample_rate`` Hz of machine ``machine_id`` (if known)."""
        ...


@runtime_checkable
class ExplainingScorer(Scorer, Protocol):
    """A scorer that says what drove a score when ``explain=True``; ``explains_cheaply`` when that costs well
    under a millisecond (then a service explains every score)."""

    explains_cheaply: bool

    def score(
        self,
        samples: np.ndarray,
        sample_rate: float,
        context: SignalContext | None = None,
        *,
        machine_id: str | None = None,
        explain: bool = False,
    ) -> Verdict:
        """The verdict on float32 mono samples at ``sample_rate`` Hz, with its explanation if asked for."""
        ...


def current_spec(folder: Path, unreadable_fix: str, version_fix: str) -> FeatureSpec:
    """The feature spec recorded in a model folder; :class:`ModelError` ending in the fix to apply when it is
    missing or unreadable, or of another spec version than this vibrasense computes."""
    try:
        spec = FeatureSpec.load(folder)
    except InputError as error:
        raise ModelError(f"{folder}: {error.reason}; {unreadable_fix}") from None
    if spec.version != SPEC_VERSION:
        raise ModelError(
            f"{folder}: the model's inputs follow feature spec version {spec.version}, this vibrasense computes "
            f"version {SPEC_VERSION}; {version_fix}"
        )
    return spec


class ModelScorer:
    """Scores raw samples with a fitted detector, computing its inputs from the recorded feature spec."""

    directory: Path | None = None
    """The model folder it was loaded from, if any."""

    domain: DomainReference | None = None
    """The signatures of the normal training recordings, when the folder keeps them."""

    def __init__(self, detector: Detector, spec: FeatureSpec, inputs: ModelInputs, name: str, version: str) -> None:
        self.detector = detector
        self.spec = spec
        self.inputs = inputs
        self.name = name
        self.version = str(version)
        self.threshold = float(detector.threshold_)

    @classmethod
    def from_directory(cls, directory: Path | str, name: str, version: str) -> ModelScorer:
        """Load a model folder written at training (detector files, ``feature_spec.json``, ``model_inputs.json``)."""
        folder = Path(directory)
        spec = current_spec(
            folder,
            "retrain it with `vibrasense train`",
            "re-extract the features and retrain it with `vibrasense train`",
        )
        from vibrasense.models.base import load_detector

        scorer = cls(load_detector(folder), spec, ModelInputs.load(folder), name, version)
        scorer.directory = folder  # what else the folder holds (the alarm levels learned at training) is read there
        scorer.domain = DomainReference.load(folder)
        return scorer

    @property
    def channel(self) -> int:
        """The channel of a multi-channel recording the model was trained on."""
        return self.spec.signals.channel

    def context(self, given: SignalContext | None = None) -> SignalContext:
        """The caller's context, completed field by field from the model's recorded default."""
        default = self.inputs.default_context
        if given is None:
            return default
        return SignalContext(given.bearing or default.bearing, given.shaft_hz or default.shaft_hz)

    def model_input(
        self, samples: np.ndarray, sample_rate: float, context: SignalContext | None = None
    ) -> list[np.ndarray] | np.ndarray:
        """What the detector consumes for one recording: ``[log-mel]`` or a (1, columns) row."""
        return self.inputs_and_signature(samples, sample_rate, context)[0]

    def inputs_and_signature(
        self, samples: np.ndarray, sample_rate: float, context: SignalContext | None = None
    ) -> tuple[list[np.ndarray] | np.ndarray, np.ndarray | None]:
        """The detector's input for one recording and its domain signature (``None`` without a reference),
        from one pass of the featurizer."""
        x = np.asarray(samples, dtype=np.float32)
        if x.ndim != 1 or x.size == 0 or not np.isfinite(x).all():
            raise InputError("samples", "need a non-empty 1-D array of finite samples")
        lowest = self.inputs.min_sample_rate
        if lowest and sample_rate < lowest:
            raise InputError(
                "sample_rate",
                f"{sample_rate:g} Hz is below the {lowest:g} Hz of the recordings model {self.name} v{self.version} "
                f"was trained and evaluated on: it reads frequencies above {sample_rate / 2:g} Hz, which this lacks",
            )
        if self.inputs.kind == "logmel":
            spectrogram = featurize(x, sample_rate, self.spec, columns=(), logmel=True).logmel
            return [spectrogram], None if self.domain is None else signatures_of([spectrogram])
        wants_logmel = self.domain is not None and self.domain.source == "logmel"
        features = featurize(
            x, sample_rate, self.spec, self.context(context), columns=self.inputs.columns, logmel=wants_logmel
        )
        row = np.array([[features.values[c] for c in self.inputs.columns]], dtype=np.float64)
        if self.domain is None:
            return row, None
        return row, signatures_of([features.logmel]) if wants_logmel else row

    @property
    def explains_cheaply(self) -> bool:
        """A tabular model's explanation needs no model call; an autoencoder's needs one more pass."""
        return self.inputs.kind == "tabular"

    def score(
        self,
        samples: np.ndarray,
        sample_rate: float,
        context: SignalContext | None = None,
        *,
        machine_id: str | None = None,
        explain: bool = False,
    ) -> Verdict:
        """The verdict on float32 mono samples at ``sample_rate`` Hz of machine ``machine_id`` (``None``: not
        named); ``explain`` adds what drove the score."""
        inputs, domain_signature = self.inputs_and_signature(samples, float(sample_rate), context)
        value = float(self.detector.score(inputs)[0])
        explanation = None
        if explain:
            from vibrasense.inference.explanation import explain_score

            explanation = explain_score(self.detector, inputs, self.inputs.columns, self.spec)
        return self.verdict(value, domain_signature, explanation, machine_id)

    def verdict(
        self,
        value: float,
        domain_signature: np.ndarray | None,
        explanation: Explanation | None = None,
        machine_id: str | None = None,
    ) -> Verdict:
        """The verdict on a score: an anomaly above the threshold, unless the recording's signature lies beyond
        the domain reference's limit and ``machine_id`` is none the model was trained on (then ``unknown_domain``
        and no anomaly)."""
        if self.domain is None or domain_signature is None:
            return Verdict(value, self.threshold, bool(value > self.threshold), explanation)
        distance = float(self.domain.distance(domain_signature)[0])
        far = distance > self.domain.limit
        unknown = far and not self.domain.knows(machine_id)
        anomaly = bool(value > self.threshold and not unknown)
        return Verdict(value, self.threshold, anomaly, explanation, distance, unknown, far)


def explained_verdict(
    scorer: Scorer,
    samples: np.ndarray,
    sample_rate: float,
    context: SignalContext | None,
    machine_id: str | None,
    *,
    explain: bool,
) -> Verdict:
    """``scorer``'s verdict on a recording of ``machine_id``, with its explanation when the scorer can explain and
    that is cheap or ``explain`` asks."""
    if isinstance(scorer, ExplainingScorer) and (explain or scorer.explains_cheaply):
        return scorer.score(samples, sample_rate, context, machine_id=machine_id, explain=True)
    return scorer.score(samples, sample_rate, context, machine_id=machine_id)
