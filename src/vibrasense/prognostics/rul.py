"""Remaining useful life from the health-index trend or from past runs, and the PHM 2012 challenge score.

After onset the smoothed health index of a wearing bearing grows roughly exponentially, so its logarithm is
fitted with a line in time (hours) and extrapolated to the failure level; the 95 % band comes from the
slope's standard error. The failure level is a multiple of the run's own alarm threshold, learned from past
runs (the median ratio of the index at failure to the threshold) or a default.

With past runs of the same kind of bearing, similarity wins. Each past run gives one candidate remaining life,
matched on the current run's age: its life less the time elapsed here, the past run's timeline first scaled to
this run's operating condition where both are known (ISO 281 rating life, ``prognostics.condition``). A past run
that had already failed at this age is left out, since this bearing has outlived it. The alarm is not used to
match while any past run is still alive at this age: on the FEMTO runs the time from alarm to failure ranges
from 3 minutes to 2 hours, so it says far less than the age does. Only a bearing that has outlived every past
run is matched on its alarm: each past run's time from alarm to failure less the time since the alarm here
(before the alarm, each run's alarm lead); past every lead, failure is overdue and the shortest lead's last
stretch is all that is left.

The candidates are few and they differ, and the PHM 2012 score punishes a late estimate four times harder than
an early one, so the estimate is the one that maximises the expected score over the candidates, each blurred
by a log-normal spread (``SIMILARITY_SPREAD``): a conservative choice that leans towards the shorter lives.
The score stops at 0 however late an estimate is, so where the candidates split into short and long lives the
best expected score can give up the short ones altogether (on FEMTO, a bearing just past three runs' lives was
told 4 h when one run still alive at its age had 7 s left, and it failed 15 minutes later). So the estimate is
chosen only among those that at most ``LATE_RISK`` of the blurred candidates fall short of: the 20 % quantile,
at which an asymmetric linear loss with the score's odds (late 4 : early 1) is least; never a life that more
than one in five comparable runs did not have. The band runs from the shortest to the longest candidate
widened by that spread (95 %).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import ndtr

from vibrasense.prognostics.condition import OperatingCondition
from vibrasense.prognostics.health import HealthResult

DEFAULT_FAILURE_RATIO = 4.0
MIN_TREND_POINTS = 5
SIMILARITY_SPREAD = 0.3  # log-normal spread of a past run's remaining life around this run's (about ±30 %)
LATE_RISK = 5 / (5 + 20)  # the PHM 2012 exponent counts lateness Er/5, earliness Er/20: 1 in 5


@dataclass(frozen=True)
class RulEstimate:
    """Remaining useful life in hours at one snapshot, with its 95 % band and how it was reached."""

    hours: float
    low: float
    high: float
    method: str  # "exponential trend" or "past runs" or "unknown"


UNKNOWN = RulEstimate(math.nan, math.nan, math.nan, "unknown")


@dataclass(frozen=True)
class PastRun:
    """One complete run to failure: its life and when its alarm fired, in hours from its start, and its operating
    condition (None: unknown)."""

    life_hours: float
    alarm_hours: float | None
    condition: OperatingCondition | None = None

    @property
    def lead_hours(self) -> float | None:
        """Time from the alarm to failure."""
        return None if self.alarm_hours is None else self.life_hours - self.alarm_hours

    @classmethod
    def from_result(cls, result: HealthResult, condition: OperatingCondition | None = None) -> PastRun:
        times = result.table["event_timestamp"]
        start = times.iloc[0]
        alarm = None if result.first_alarm is None else (result.first_alarm - start).total_seconds() / 3600
        return cls((times.iloc[-1] - start).total_seconds() / 3600, alarm, condition)

    def scaled_to(self, condition: OperatingCondition | None) -> PastRun:
        """This run's timeline as it would have run under ``condition`` (unchanged if either is unknown)."""
        if condition is None or self.condition is None:
            return self
        ratio = condition.life_ratio(self.condition)
        alarm = None if self.alarm_hours is None else self.alarm_hours * ratio
        return PastRun(self.life_hours * ratio, alarm, condition)


@dataclass(frozen=True)
class PastRuns:
    """What earlier run-to-failure runs of the same kind of bearing teach: summaries and each run's timeline."""

    mean_life_hours: float
    alarm_lead_hours: float | None
    failure_ratio: float
    runs: tuple[PastRun, ...] = field(default=())

    @classmethod
    def learn(
        cls, results: list[HealthResult], conditions: Sequence[OperatingCondition | None] | None = None
    ) -> PastRuns:
        """Summaries of complete runs (each ends at failure), with each run's operating condition if known."""
        known = list(conditions) if conditions is not None else [None] * len(results)
        runs = tuple(PastRun.from_result(result, condition) for result, condition in zip(results, known, strict=True))
        return cls._of(runs, failure_ratio(results))

    @classmethod
    def _of(cls, runs: tuple[PastRun, ...], ratio: float) -> PastRuns:
        leads = [run.lead_hours for run in runs if run.lead_hours is not None]
        lead = float(np.median(leads)) if leads else None
        return cls(float(np.mean([run.life_hours for run in runs])), lead, ratio, runs)

    def scaled_to(self, condition: OperatingCondition | None) -> PastRuns:
        """The past runs as they would have run under ``condition`` (see :meth:`PastRun.scaled_to`)."""
        if condition is None or not self.runs:
            return self
        return self._of(tuple(run.scaled_to(condition) for run in self.runs), self.failure_ratio)


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
    """RUL at time ``at`` using only snapshots up to ``at`` (and, if given, what past runs teach).

    The onset counts only once it is known (at the first alert): before, the trend has no start.
    """
    start = result.table["event_timestamp"].iloc[0]
    elapsed = (at - start).total_seconds() / 3600
    alarmed = result.first_alarm is not None and result.first_alarm <= at
    since = (at - result.first_alarm).total_seconds() / 3600 if alarmed else None  # type: ignore[operator]
    if past is not None:
        return _from_past(past, elapsed, since)
    known = result.onset_known_at
    if result.onset is not None and known is not None and known <= at:
        table = result.table
        trend = table[(table["event_timestamp"] >= result.onset) & (table["event_timestamp"] <= at)]
        trend = trend[trend["smoothed"].notna()]
        sums = _TrendSums()
        origin = trend["event_timestamp"].iloc[0] if len(trend) else at
        for time, value in zip(trend["event_timestamp"], trend["smoothed"], strict=True):
            sums.add((time - origin).total_seconds() / 3600, value)
        estimate = sums.extrapolate((at - origin).total_seconds() / 3600, failure_level_ratio * result.threshold)
        if estimate is not None:
            return estimate
    return UNKNOWN


def rul_series(
    result: HealthResult,
    failure_level_ratio: float = DEFAULT_FAILURE_RATIO,
    past: PastRuns | None = None,
) -> list[RulEstimate | None]:
    """:func:`estimate_rul` at every snapshot of the run (None at a sensor fault), in one pass.

    The trend fit keeps running sums, so each snapshot costs the same however long the run: the same
    estimates as asking at each snapshot, without refitting every earlier point each time.
    """
    table = result.table
    times = table["event_timestamp"]
    faults = table["sensor_fault"].to_numpy(dtype=bool)
    if past is not None:
        start = times.iloc[0]
        alarm = result.first_alarm
        estimates: list[RulEstimate | None] = []
        for at, fault in zip(times, faults, strict=True):
            since = (at - alarm).total_seconds() / 3600 if alarm is not None and alarm <= at else None
            estimates.append(None if fault else _from_past(past, (at - start).total_seconds() / 3600, since))
        return estimates
    onset, known = result.onset, result.onset_known_at
    target = failure_level_ratio * result.threshold
    smoothed = table["smoothed"].to_numpy(dtype=float)
    sums = _TrendSums()
    origin = None
    out: list[RulEstimate | None] = []
    for at, fault, value in zip(times, faults, smoothed, strict=True):
        if onset is not None and at >= onset and np.isfinite(value):
            origin = at if origin is None else origin
            sums.add((at - origin).total_seconds() / 3600, value)
        if fault:
            out.append(None)
            continue
        estimate = None
        if origin is not None and known is not None and known <= at:
            estimate = sums.extrapolate((at - origin).total_seconds() / 3600, target)
        out.append(estimate or UNKNOWN)
    return out


def _from_past(past: PastRuns, elapsed: float, since: float | None) -> RulEstimate:
    if past.runs:
        return _similarity(past.runs, elapsed, since)
    lead = past.alarm_lead_hours  # summaries only
    if since is not None and lead is not None:
        remaining = max(lead - since, 0.0)
    else:
        remaining = max(past.mean_life_hours - elapsed, lead or 0.0)
    return RulEstimate(remaining, 0.5 * remaining, 1.5 * remaining, "past runs")


def similarity_candidates(runs: tuple[PastRun, ...], elapsed: float, since: float | None) -> list[float]:
    """One remaining life per past run that is still informative at this age (see the module)."""
    alive = [run.life_hours - elapsed for run in runs if run.life_hours > elapsed]
    if alive:
        return alive
    leads = [run.lead_hours for run in runs if run.lead_hours is not None]
    if since is not None and leads:
        after_alarm = [lead - since for lead in leads if lead > since]
        # past every run's lead: failure is overdue, so the shortest lead's last stretch is all that is left
        return after_alarm or [min(leads) * math.exp(-2 * SIMILARITY_SPREAD) * 0.5]
    return leads or [0.0]


def best_guess(candidates: list[float], spread: float = SIMILARITY_SPREAD, late_risk: float = 1.0) -> float:
    """The estimate with the highest expected PHM 2012 score when the truth is one of ``candidates`` (equally
    likely), each blurred by a log-normal ``spread``; only among estimates that at most a share ``late_risk`` of
    the blurred candidates falls short of (1: any)."""
    values = np.asarray([c for c in candidates if c > 0], dtype=float)
    if not len(values):
        return 0.0
    z = np.linspace(-2.0, 2.0, 9)
    weights = np.tile(np.exp(-(z**2) / 2), len(values))
    truths = (values[:, None] * np.exp(spread * z)[None, :]).ravel()
    guesses = np.linspace(0.0, float(values.max()), 401)[1:]
    expected = _scores(truths[None, :], guesses[:, None]) @ weights
    expected[late_share(values, guesses, spread) > late_risk] = -np.inf
    return float(guesses[int(np.argmax(expected))])


def late_share(values: np.ndarray, guesses: np.ndarray, spread: float = SIMILARITY_SPREAD) -> np.ndarray:
    """For each guess, the share of the candidate lives ``values`` (equally likely, log-normal ``spread``) that
    are shorter: how likely the guess is late."""
    return ndtr(np.log(guesses[:, None] / values[None, :]) / spread).mean(axis=1)


def _similarity(runs: tuple[PastRun, ...], elapsed: float, since: float | None) -> RulEstimate:
    candidates = similarity_candidates(runs, elapsed, since)
    guess = best_guess(candidates, late_risk=LATE_RISK)
    widen = math.exp(1.96 * SIMILARITY_SPREAD)
    low = min(min(candidates), guess) / widen
    high = max(max(candidates), guess) * widen
    return RulEstimate(guess, low, high, "past runs")


class _TrendSums:
    """Running sums of (hours, log index) for a least-squares line, extended one point at a time."""

    def __init__(self) -> None:
        self.n = 0
        self.h = self.y = self.hh = self.hy = self.yy = 0.0
        self.last_h = self.last_y = math.nan

    def add(self, hours: float, index: float) -> None:
        y = math.log(max(float(index), 1e-9))
        self.n += 1
        self.h += hours
        self.y += y
        self.hh += hours * hours
        self.hy += hours * y
        self.yy += y * y
        self.last_h, self.last_y = hours, y

    def extrapolate(self, now: float, failure_level: float) -> RulEstimate | None:
        """Hours until the fitted exponential reaches ``failure_level`` (95 % band from the slope's standard
        error), ``now`` hours after the first point; None with too few points or no growth."""
        if self.n < MIN_TREND_POINTS:
            return None
        sxx = self.hh - self.h * self.h / self.n
        if sxx <= 0:
            return None
        sxy = self.hy - self.h * self.y / self.n
        slope = sxy / sxx
        if slope <= 0:
            return None
        intercept = (self.y - slope * self.h) / self.n
        residual = max(self.yy - self.y * self.y / self.n - slope * sxy, 0.0)
        spread = math.sqrt(residual / max(self.n - 2, 1) / sxx)
        current = max(self.last_y, slope * now + intercept)
        target = math.log(failure_level)

        def remaining(rate: float) -> float:
            return max((target - current) / rate, 0.0) if rate > 0 else math.inf

        return RulEstimate(
            remaining(slope), remaining(slope + 1.96 * spread), remaining(slope - 1.96 * spread), "exponential trend"
        )


def _scores(actual: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """0.5 ** (−Er/5) when late, 0.5 ** (Er/20) when early: one exponent, never positive, so nothing overflows
    (``np.where`` over two ``exp`` branches overflowed in the unused one for a very late guess)."""
    error = 100 * (actual - predicted) / actual
    return 0.5 ** np.maximum(-error / 5, error / 20)


def phm2012_score(actual_rul: np.ndarray, predicted_rul: np.ndarray) -> float:
    """Mean PHM 2012 accuracy: Er = 100·(ActRUL − RUL)/ActRUL; exp(−ln(0.5)·Er/5) if Er ≤ 0 (late), else
    exp(ln(0.5)·Er/20) (early, penalised less). 1 is perfect; the challenge was won with 0.31."""
    return float(np.mean(_scores(np.asarray(actual_rul, dtype=float), np.asarray(predicted_rul, dtype=float))))
