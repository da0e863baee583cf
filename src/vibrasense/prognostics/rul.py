"""Remaining useful life from the health-index trend, and the PHM 2012 challenge score.

After onset the smoothed health index of a wearing bearing grows roughly exponentially, so its logarithm is
fitted with a line in time (hours) and extrapolated to the failure level; the 95 % band comes from the
slope's standard error. The failure level is a multiple of the run's own alarm threshold, learned from past
runs (the median ratio of the index at failure to the threshold) or a default.

With past runs of the same kind of bearing, similarity wins: once the alarm has fired, the remaining life
is the past runs' median time from alarm to failure, less the time since the alarm; before the alarm it is
their mean life less the time elapsed, but never less than that median alarm lead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from vibrasense.prognostics.health import HealthResult

DEFAULT_FAILURE_RATIO = 4.0
MIN_TREND_POINTS = 5


@dataclass(frozen=True)
class RulEstimate:
    """Remaining useful life in hours at one snapshot, with its 95 % band and how it was reached."""

    hours: float
    low: float
    high: float
    method: str  # "exponential trend" or "past runs" or "unknown"


@dataclass(frozen=True)
class PastRuns:
    """What earlier run-to-failure runs of the same kind of bearing teach."""

    mean_life_hours: float
    alarm_lead_hours: float | None
    failure_ratio: float

    @classmethod
    def learn(cls, results: list[HealthResult]) -> PastRuns:
        """Summaries of complete runs (each ends at failure)."""
        lives, leads = [], []
        for result in results:
            times = result.table["event_timestamp"]
            lives.append((times.iloc[-1] - times.iloc[0]).total_seconds() / 3600)
            if result.first_alarm is not None:
                leads.append((times.iloc[-1] - result.first_alarm).total_seconds() / 3600)
        lead = float(np.median(leads)) if leads else None
        return cls(float(np.mean(lives)), lead, failure_ratio(results))


def failure_ratio(results: list[HealthResult]) -> float:
    """Median ratio of the smoothed index at failure (the last usable snapshots) to the alarm threshold."""
    ratios = []
    for result in results:
        usable = result.table.dropna(subset=["smoothed"])
        if len(usable):
            ratios.append(float(usable["smoothed"].tail(3).max() / result.threshold))
    return float(np.median(ratios)) if ratios else DEFAULT_FAILURE_RATIO


def estimate_rul(
    result: HealthResult,
    at: pd.Timestamp,
    failure_level_ratio: float = DEFAULT_FAILURE_RATIO,
    past: PastRuns | None = None,
) -> RulEstimate:
    """RUL at time ``at`` using only snapshots up to ``at`` (and, if given, what past runs teach)."""
    start = result.table["event_timestamp"].iloc[0]
    elapsed = (at - start).total_seconds() / 3600
    alarmed = result.first_alarm is not None and result.first_alarm <= at
    if past is not None:
        lead = past.alarm_lead_hours
        if alarmed and lead is not None:
            since = (at - result.first_alarm).total_seconds() / 3600  # type: ignore[operator]
            remaining = max(lead - since, 0.0)
        else:
            remaining = max(past.mean_life_hours - elapsed, lead or 0.0)
        return RulEstimate(remaining, 0.5 * remaining, 1.5 * remaining, "past runs")
    usable = result.table[(result.table["event_timestamp"] <= at) & result.table["smoothed"].notna()]
    if result.onset is not None and result.onset <= at:
        estimate = _exponential(
            usable[usable["event_timestamp"] >= result.onset], at, failure_level_ratio * result.threshold
        )
        if estimate is not None:
            return estimate
    return RulEstimate(math.nan, math.nan, math.nan, "unknown")


def _exponential(trend: pd.DataFrame, at: pd.Timestamp, failure_level: float) -> RulEstimate | None:
    if len(trend) < MIN_TREND_POINTS:
        return None
    hours = (trend["event_timestamp"] - trend["event_timestamp"].iloc[0]).dt.total_seconds().to_numpy() / 3600
    log_index = np.log(np.maximum(trend["smoothed"].to_numpy(dtype=float), 1e-9))
    slope, intercept = np.polyfit(hours, log_index, 1)
    if slope <= 0:
        return None
    residuals = log_index - (slope * hours + intercept)
    spread = np.sqrt(np.sum(residuals**2) / max(len(hours) - 2, 1) / np.sum((hours - hours.mean()) ** 2))
    now = hours[-1] + (at - trend["event_timestamp"].iloc[-1]).total_seconds() / 3600
    current = max(float(log_index[-1]), slope * now + intercept)
    target = math.log(failure_level)

    def remaining(rate: float) -> float:
        return max((target - current) / rate, 0.0) if rate > 0 else math.inf

    return RulEstimate(
        remaining(slope),
        remaining(slope + 1.96 * spread),
        remaining(slope - 1.96 * spread),
        "exponential trend",
    )


def phm2012_score(actual_rul: np.ndarray, predicted_rul: np.ndarray) -> float:
    """Mean PHM 2012 accuracy: Er = 100·(ActRUL − RUL)/ActRUL; exp(−ln(0.5)·Er/5) if Er ≤ 0 (late), else
    exp(ln(0.5)·Er/20) (early, penalised less). 1 is perfect; the challenge was won with 0.31."""
    actual = np.asarray(actual_rul, dtype=float)
    predicted = np.asarray(predicted_rul, dtype=float)
    error = 100 * (actual - predicted) / actual
    scores = np.where(error <= 0, np.exp(-np.log(0.5) * error / 5), np.exp(np.log(0.5) * error / 20))
    return float(np.mean(scores))
