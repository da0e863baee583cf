"""The model the service scores with: a small protocol, how it is loaded, and an atomically swapped slot.

The service depends only on :class:`Scorer`, not on training internals; ``vibrasense.training.load_scorer``
returns an object that satisfies it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np

from vibrasense.config import Settings
from vibrasense.errors import ModelError

log = logging.getLogger(__name__)

WARMUP_SECONDS = 10.0
"""A typical clip length (DCASE, MIMII): long enough for any model, and it sizes buffers as traffic will."""


@runtime_checkable
class Scorer(Protocol):
    """Scores one recording: higher is more anomalous; above ``threshold`` it is an anomaly."""

    name: str
    version: str

    def score(self, samples: np.ndarray, sample_rate: float) -> tuple[float, float, bool]:
        """``(score, threshold, is_anomaly)`` of float32 mono samples at ``sample_rate`` Hz."""
        ...


ScorerLoader = Callable[[Settings, "str | int | None"], Scorer]
"""Loads the scorer for an alias or version (``None``: the one the settings name)."""


def load_registered_scorer(settings: Settings, alias_or_version: str | int | None = None) -> Scorer:
    """The model carrying ``alias_or_version`` (default: serving.model_version, else serving.model_alias)."""
    try:
        from vibrasense.training import load_scorer
    except ImportError as error:
        raise ModelError(
            f"cannot load a model from the registry: vibrasense.training is unavailable ({error})"
        ) from None
    target = alias_or_version
    if target is None:
        target = settings.serving.model_version or settings.serving.model_alias
    return load_scorer(settings, target)


def warm_up(scorer: Scorer, sample_rate: float) -> tuple[float, float, bool]:
    """Score a clip of low noise so that lazy imports, caches and allocations happen before traffic."""
    rng = np.random.default_rng(0)
    samples = (0.01 * rng.standard_normal(int(sample_rate * WARMUP_SECONDS))).astype(np.float32)
    try:
        return scorer.score(samples, sample_rate)
    except Exception as error:
        raise ModelError(f"model {describe(scorer)} fails on a warm-up recording: {error}") from error


def describe(scorer: Scorer) -> str:
    """``name`` v``version`` of a scorer, for messages."""
    return f"{scorer.name} v{scorer.version}"


class ModelSlot:
    """Holds the scorer in use; a reload builds and warms the new one fully, then swaps the reference.

    Requests read :attr:`scorer` once and keep that reference, so a swap never fails or changes a
    request in flight; reloads are serialised by a lock.
    """

    def __init__(self, scorer: Scorer | None = None) -> None:
        self._scorer = scorer
        self._reload_lock = threading.Lock()

    @property
    def scorer(self) -> Scorer | None:
        """The scorer in use, or ``None`` before one is loaded."""
        return self._scorer

    def require(self) -> Scorer:
        """The scorer in use; raises :class:`ModelError` when none is loaded."""
        scorer = self._scorer
        if scorer is None:
            raise ModelError("no model is loaded; register a champion (vibrasense train) and POST /v1/models/reload")
        return scorer

    def swap(self, scorer: Scorer) -> Scorer | None:
        """Make ``scorer`` the one in use; returns the previous one."""
        previous, self._scorer = self._scorer, scorer
        return previous

    def reload(self, load: Callable[[], Scorer], warm_rate: float) -> tuple[Scorer, Scorer | None]:
        """Load and warm a new scorer, then swap it in; the old one keeps serving until then."""
        with self._reload_lock:
            scorer = load()
            if not isinstance(scorer, Scorer):
                raise ModelError(f"loaded object {type(scorer).__name__} has no score(samples, sample_rate)")
            warm_up(scorer, warm_rate)
            previous = self.swap(scorer)
            log.info("now serving %s (was %s)", describe(scorer), describe(previous) if previous else "none")
            return scorer, previous
