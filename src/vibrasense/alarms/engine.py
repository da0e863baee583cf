"""The alarm engine: every snapshot of a machine's sensor through its condition monitors, into states and events.

Per machine and sensor three conditions are watched, each by a :class:`LevelMonitor`, and a fourth by rule:

- ``score``: the model's score against the warning, alarm and reset levels;
- ``rate``: the least-squares slope of the last ``rate_window`` scores against ``rate_limit`` (a warning only);
- ``zone``: the ISO 10816-1 velocity RMS against the class's zone C (warning) and zone D (alarm) boundaries,
  reset below ``ZONE_RESET`` × the zone C boundary; for summary-only sensors the slope of the velocity is
  watched too (``rate``), against the rise from the B to the C boundary over one window;
- ``domain``: a warning while the model's scores are withheld because the recordings lie far outside what
  it was trained on (:mod:`vibrasense.inference.domain`): nobody is judging the machine, someone should
  know; it clears with the next recording the model can judge.

A sensor's state is the worst of its conditions', or ``not_running`` when the machine-off gate closed
(every monitor starts over and open alarms clear). The machine's state combines its sensors
(:func:`~vibrasense.alarms.states.machine_state`: the worst running sensor; ``not_running`` only when all are).
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

from vibrasense.alarms.levels import ResolvedRules
from vibrasense.alarms.lifecycle import CONDITIONS, AlarmBook, AlarmEvent, Condition
from vibrasense.alarms.monitor import LevelMonitor, Levels, slope
from vibrasense.alarms.states import ActiveState, State, machine_state, worst
from vibrasense.features.severity import zone_boundaries

ZONE_RESET = 0.9
"""A zone warning or alarm resets below this fraction of the zone B/C boundary."""


@dataclass(frozen=True)
class Snapshot:
    """One observation of a machine's sensor: running or not, and its score and/or velocity RMS."""

    machine_id: str
    sensor: str
    at: datetime
    running: bool = True
    score: float | None = None
    velocity_mm_s: float | None = None
    score_withheld: bool = False
    """The model scored the snapshot but its score says nothing of the machine (an unknown domain): neither the
    score's level nor the trend is watched, and the velocity does not stand in for the score in the trend."""


@dataclass(frozen=True)
class SnapshotResult:
    """The sensor's and the machine's state after a snapshot, each condition's, and the alarm events caused."""

    state: State
    machine_state: State
    conditions: dict[str, State]
    events: list[AlarmEvent]


@dataclass
class _Track:
    """The monitors of one machine's sensor."""

    rules: ResolvedRules | None
    monitors: dict[Condition, LevelMonitor] = field(default_factory=dict)
    trend: deque[float] = field(default_factory=deque)
    state: State = "ok"
    out_of_domain: bool = False


def _rate_levels(limit: float) -> Levels:
    return Levels(warning=limit, alarm=math.inf, reset=limit / 2)


class AlarmEngine:
    """States and alarm events of every machine and sensor it is shown; thread-safe."""

    def __init__(self, book: AlarmBook | None = None) -> None:
        self.book = book or AlarmBook()
        self._tracks: dict[tuple[str, str], _Track] = {}
        self._lock = threading.Lock()

    def observe(self, snapshot: Snapshot, rules: ResolvedRules | None) -> SnapshotResult:
        """Feed one snapshot under the machine's rules (needed unless it is not running); returns the new states
        and the events to record."""
        if snapshot.running and rules is None:
            raise ValueError("a running snapshot needs the machine's rules")
        with self._lock:
            track = self._track(snapshot, rules)
            conditions: dict[str, State] = {}
            if not snapshot.running:
                track.monitors.clear()
                track.trend.clear()
                track.state = "not_running"
                track.out_of_domain = False
                for condition in CONDITIONS:
                    conditions[condition] = "not_running"
            else:
                conditions.update(self._watch(track, snapshot))
                track.state = worst(conditions.values()) if conditions else "ok"
            events: list[AlarmEvent] = []
            value = {
                "score": snapshot.score,
                "zone": snapshot.velocity_mm_s,
                "rate": _trended(snapshot),
                "domain": snapshot.score,
            }
            for condition, state in conditions.items():
                key = (snapshot.machine_id, snapshot.sensor, condition)
                events += self.book.reconcile(key, state, snapshot.at, value[condition])
            machine = self._machine_state(snapshot.machine_id)
        return SnapshotResult(track.state, machine, conditions, events)

    def sensor_states(self, machine_id: str) -> dict[str, State]:
        """The state of each sensor of a machine seen by this engine."""
        with self._lock:
            return {sensor: t.state for (machine, sensor), t in self._tracks.items() if machine == machine_id}

    def machine_state(self, machine_id: str) -> State:
        """The machine's combined state (``not_running`` for a machine never seen)."""
        with self._lock:
            return self._machine_state(machine_id)

    def _machine_state(self, machine_id: str) -> State:
        return machine_state(t.state for (machine, _), t in self._tracks.items() if machine == machine_id)

    def _track(self, snapshot: Snapshot, rules: ResolvedRules | None) -> _Track:
        key = (snapshot.machine_id, snapshot.sensor)
        track = self._tracks.get(key)
        if track is None:
            track = self._tracks[key] = _Track(rules)
        elif (
            rules is not None and track.rules != rules
        ):  # new levels (a model reload): the monitors restart from their states
            states = {condition: monitor.state for condition, monitor in track.monitors.items()}
            track.rules, track.monitors = rules, {}
            for condition, state in states.items():
                self._monitor(track, snapshot, condition, state)
        return track

    def _monitor(
        self, track: _Track, snapshot: Snapshot, condition: Condition, state: ActiveState | None = None
    ) -> LevelMonitor | None:
        """The condition's monitor, made on first use (starting from an open alarm's severity, if any)."""
        monitor = track.monitors.get(condition)
        if monitor is not None:
            return monitor
        rules = track.rules
        assert rules is not None  # a running snapshot brought them
        levels = self._levels(rules, snapshot, condition)
        if levels is None:
            return None
        if state is None:
            alarm = self.book.open_alarm((snapshot.machine_id, snapshot.sensor, condition))
            state = alarm.severity if alarm is not None else "ok"  # type: ignore[assignment]
        monitor = track.monitors[condition] = LevelMonitor(levels, rules.delays, state or "ok")
        return monitor

    def _levels(self, rules: ResolvedRules, snapshot: Snapshot, condition: Condition) -> Levels | None:
        if condition == "score":
            return rules.levels
        boundaries = zone_boundaries(rules.machine_class) if rules.machine_class else None
        if condition == "zone":
            if boundaries is None:
                return None
            _, bc, cd = boundaries
            return Levels(warning=bc, alarm=cd, reset=ZONE_RESET * bc)
        if snapshot.score is not None:
            return _rate_levels(rules.rate_limit) if rules.rate_limit else None
        if boundaries is None:
            return None
        ab, bc, _ = boundaries
        return _rate_levels((bc - ab) / rules.rate_window)

    def _watch(self, track: _Track, snapshot: Snapshot) -> dict[str, State]:
        rules = track.rules
        assert rules is not None
        states: dict[str, State] = {}
        trended = _trended(snapshot)
        if snapshot.score_withheld:
            states["domain"] = "warning"
        elif snapshot.score is not None and track.out_of_domain:
            states["domain"] = "ok"
        track.out_of_domain = snapshot.score_withheld or (track.out_of_domain and snapshot.score is None)
        if snapshot.score is not None and not snapshot.score_withheld:
            monitor = self._monitor(track, snapshot, "score")
            if monitor is not None:
                states["score"] = monitor.update(snapshot.score)
        if snapshot.velocity_mm_s is not None:
            monitor = self._monitor(track, snapshot, "zone")
            if monitor is not None:
                states["zone"] = monitor.update(snapshot.velocity_mm_s)
        if trended is not None:
            if track.trend.maxlen != rules.rate_window:
                track.trend = deque(track.trend, maxlen=rules.rate_window)
            track.trend.append(trended)
            monitor = self._monitor(track, snapshot, "rate")
            if monitor is not None and len(track.trend) == rules.rate_window:
                states["rate"] = monitor.update(slope(track.trend))
            elif monitor is not None:
                states["rate"] = monitor.state
        return states


def _trended(snapshot: Snapshot) -> float | None:
    """What the rate condition follows: the score, else (a sensor without a model) the velocity RMS; nothing
    when the score is withheld."""
    if snapshot.score_withheld:
        return None
    return snapshot.score if snapshot.score is not None else snapshot.velocity_mm_s
