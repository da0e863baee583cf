"""Leave-one-run-out RUL evaluation over a fleet's complete runs to failure, scored as in the PHM 2012 challenge.

Each run in turn is the current one and every other run is its history (scaled to its operating condition where
known); the run is cut at a share of its life and the estimate at the cut, made from the snapshots up to it
only, is scored against the true remaining life: Er = 100·(actual − estimate)/actual (positive: early), the
challenge's accuracy A, and whether the 95 % band holds the truth.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from vibrasense.errors import InputError
from vibrasense.prognostics.condition import OperatingCondition
from vibrasense.prognostics.health import HealthResult
from vibrasense.prognostics.rul import PastRuns, RulEstimate, estimate_rul, phm2012_score

CUTS = (0.5, 0.6, 0.7, 0.8, 0.9)


@dataclass(frozen=True)
class CutScore:
    """One run cut at ``cut`` of its life: the truth, the estimate and its score."""

    machine_id: str
    cut: float
    actual_hours: float
    estimate: RulEstimate

    @property
    def error_pct(self) -> float:
        """Er: positive when the estimate is early."""
        return 100 * (self.actual_hours - self.estimate.hours) / self.actual_hours

    @property
    def accuracy(self) -> float:
        """The PHM 2012 accuracy A (0 for no estimate)."""
        if not math.isfinite(self.estimate.hours):
            return 0.0
        return phm2012_score(np.array([self.actual_hours]), np.array([self.estimate.hours]))

    @property
    def covered(self) -> bool:
        """Whether the 95 % band holds the true remaining life."""
        return bool(self.estimate.low <= self.actual_hours <= self.estimate.high)


def leave_one_out(
    results: dict[str, HealthResult],
    conditions: dict[str, OperatingCondition | None] | None = None,
    cuts: Sequence[float] = CUTS,
) -> list[CutScore]:
    """Every run cut at each of ``cuts`` (shares of its life), estimated from the other runs."""
    if len(results) < 2:
        raise InputError("<runs>", f"{len(results)} run given; leave-one-out needs two complete runs or more")
    if any(not 0 < cut < 1 for cut in cuts):
        raise InputError("<cuts>", f"cuts are shares of life strictly between 0 and 1, got {list(cuts)}")
    known = conditions or {}
    scores = []
    for name, result in results.items():
        others = [other for other in results if other != name]
        past = PastRuns.learn([results[o] for o in others], [known.get(o) for o in others])
        past = past.scaled_to(known.get(name))
        times = result.table["event_timestamp"]
        start, end = times.iloc[0], times.iloc[-1]
        life = (end - start).total_seconds() / 3600
        for cut in cuts:
            at = start + pd.Timedelta(hours=cut * life)
            scores.append(CutScore(name, cut, (1 - cut) * life, estimate_rul(result, at, past=past)))
    return scores


def summarise(scores: Sequence[CutScore]) -> dict[str, float]:
    """Mean and spread (standard deviation) of A, mean signed Er, the bands' coverage and the count of A = 0."""
    accuracy = np.array([s.accuracy for s in scores])
    errors = np.array([s.error_pct for s in scores if math.isfinite(s.estimate.hours)])
    return {
        "score": float(accuracy.mean()),
        "spread": float(accuracy.std()),
        "mean_error_pct": float(errors.mean()) if len(errors) else math.nan,
        "median_error_pct": float(np.median(errors)) if len(errors) else math.nan,
        "coverage": float(np.mean([s.covered for s in scores])),
        "zero_cuts": float((accuracy < 0.005).sum()),
    }
