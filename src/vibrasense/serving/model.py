"""The model the service scores with: loaded from the registry, warmed, and swapped atomically.

The service needs only the :class:`~vibrasense.inference.Scorer` protocol; the registry's ``load_scorer``
returns a :class:`~vibrasense.inference.ModelScorer`, and tests may pass any object that satisfies it.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from vibrasense.config import Settings
from vibrasense.errors import InputError, ModelError, VibrasenseError, redact
from vibrasense.inference import Scorer, Verdict, limit_process_threads
from vibrasense.signals.records import SignalContext

log = logging.getLogger(__name__)

WARMUP_SECONDS = 10.0
"""A typical clip length (DCASE, MIMII): long enough for any model, and it sizes buffers as traffic will."""
WARMUP_CONTEXT = SignalContext(bearing="cwru-6205-de", shaft_hz=29.95)
"""For a model that needs a bearing and a shaft speed in every request: any will do to warm it."""

ScorerLoader = Callable[[Settings, "str | int | None"], Scorer]
"""Loads the scorer for an alias or version (``None``: the one the settings name)."""


class ModelUnavailable(ModelError):
    """No model is loaded yet: the service cannot score."""


def load_registered_scorer(settings: Settings, alias_or_version: str | int | None = None) -> Scorer:
    """The model carrying ``alias_or_version`` (default: serving.model_version, else serving.model_alias)."""
    try:
        from vibrasense.registry import load_scorer  # MLflow: imported only where a model is loaded from it
    except ImportError as error:
        raise ModelError(
            f"cannot load a model from the registry: vibrasense.registry is unavailable ({error})"
        ) from None
    target = alias_or_version
    if target is None:
        target = settings.serving.model_version or settings.serving.model_alias
    try:
        if settings.serving.runtime == "onnx":
            return load_onnx_scorer(settings, target)
        return load_scorer(settings, target)
    except VibrasenseError:
        raise
    except Exception as error:  # MLflow and its stores raise many types, often with the store's URI in them
        raise ModelError(
            redact(f"cannot load model {target!r} from the registry at {settings.tracking_uri}: {error}")
        ) from None


def load_onnx_scorer(settings: Settings, alias_or_version: str | int) -> Scorer:
    """The registered version as an :class:`~vibrasense.inference.onnx_runtime.OnnxScorer` (``serving.runtime:
    onnx``), exported once into ``<model-cache>/<run>/onnx`` beside the version's model folder."""
    from vibrasense.inference.onnx_export import export_onnx
    from vibrasense.inference.onnx_runtime import ONNX_FILE, OnnxScorer
    from vibrasense.registry import resolve_version, tracking_client
    from vibrasense.registry.versions import detector_directory

    client = tracking_client(settings)
    version = resolve_version(client, settings, alias_or_version)
    folder = detector_directory(client, settings, version)
    exported = folder.parent / "onnx"
    if not (exported / ONNX_FILE).is_file():
        log.info("exporting %s v%s to ONNX into %s", settings.tracking.registered_model, version.version, exported)
        with tempfile.TemporaryDirectory(dir=folder.parent, prefix="onnx-", ignore_cleanup_errors=True) as scratch:
            export_onnx(folder, scratch)
            with contextlib.suppress(OSError):  # another process finished the same export first: keep that one
                Path(scratch).rename(exported)
    scorer = OnnxScorer.from_directory(exported, settings.tracking.registered_model, version.version)
    scorer.directory = folder  # what else the model folder holds (the alarm levels learned at training) is read there
    return scorer


def warm_up(scorer: Scorer, sample_rate: float) -> Verdict:
    """Score a clip of low noise so that lazy imports, caches and allocations happen before traffic.

    The clip is at ``sample_rate`` or, for a model folder that refuses slower recordings, at its lowest rate.
    """
    inputs = getattr(scorer, "inputs", None)
    sample_rate = max(sample_rate, getattr(inputs, "min_sample_rate", None) or 0.0)
    rng = np.random.default_rng(0)
    samples = (0.01 * rng.standard_normal(int(sample_rate * WARMUP_SECONDS))).astype(np.float32)
    try:
        try:
            return scorer.score(samples, sample_rate)
        except InputError as error:
            if error.source not in ("bearing", "shaft_hz"):
                raise
            return scorer.score(samples, sample_rate, WARMUP_CONTEXT)
    except Exception as error:
        raise ModelError(f"model {describe(scorer)} fails on a warm-up recording: {error}") from error


def describe(scorer: Scorer) -> str:
    """``name`` v``version`` of a scorer, for messages."""
    return f"{scorer.name} v{scorer.version}"


class ModelSlot:
    """Holds the scorer in use; a reload builds and warms the new one fully, then swaps the reference.

    Requests read :attr:`scorer` once and keep that reference, so a swap never fails or changes a
    request in flight; reloads are serialised by a lock. A load that brings torch into the process limits
    its thread pool before the new model serves (the process limited the others at start-up).
    """

    def __init__(self, scorer: Scorer | None = None) -> None:
        self._scorer = scorer
        self._reload_lock = threading.Lock()

    @property
    def scorer(self) -> Scorer | None:
        """The scorer in use, or ``None`` before one is loaded."""
        return self._scorer

    def require(self) -> Scorer:
        """The scorer in use; raises :class:`ModelUnavailable` when none is loaded."""
        scorer = self._scorer
        if scorer is None:
            raise ModelUnavailable(
                "no model is loaded; register a champion (vibrasense train) and POST /v1/models/reload"
            )
        return scorer

    def swap(self, scorer: Scorer) -> Scorer | None:
        """Make ``scorer`` the one in use; returns the previous one."""
        previous, self._scorer = self._scorer, scorer
        return previous

    def reload(self, load: Callable[[], Scorer], warm_rate: float) -> tuple[Scorer, Scorer | None]:
        """Load and warm a new scorer, then swap it in; the old one keeps serving until then."""
        with self._reload_lock:
            had_torch = "torch" in sys.modules
            scorer = load()
            if not isinstance(scorer, Scorer):
                raise ModelError(f"loaded object {type(scorer).__name__} has no score(samples, sample_rate, context)")
            if not had_torch and "torch" in sys.modules:
                limit_process_threads()  # the model brought torch: its pool is limited before it serves
            warm_up(scorer, warm_rate)
            previous = self.swap(scorer)
            log.info("now serving %s (was %s)", describe(scorer), describe(previous) if previous else "none")
            return scorer, previous
