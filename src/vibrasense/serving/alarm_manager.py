"""Alarm management in the scoring service: the rules of each machine, the engine, the alarms and their API.

:class:`AlarmManager` resolves a machine's rules (configuration ``alarms:`` over the levels the served model
learned at training, see :mod:`vibrasense.alarms.levels`), gates a recording on the machine-off RMS, reads
its ISO 10816-1 severity, feeds the snapshot to the :class:`~vibrasense.alarms.AlarmEngine` and records the
alarm events it causes (:class:`~vibrasense.serving.alarm_log.AlarmLog`). Engineers' actions (acknowledge,
shelve, unshelve) are checked against the alarm as its recorded events made it and recorded the same way.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np

from vibrasense.alarms import (
    Alarm,
    AlarmBook,
    AlarmEngine,
    AlarmEvent,
    LearnedLevels,
    ResolvedRules,
    Snapshot,
    SnapshotResult,
    load_learned_levels,
    resolve_rules,
)
from vibrasense.alarms.lifecycle import ALARM_STATUSES
from vibrasense.config import Settings
from vibrasense.errors import InputError
from vibrasense.features.severity import severity_zone, velocity_rms_mm_s
from vibrasense.inference import Scorer
from vibrasense.serving.alarm_log import AlarmLog
from vibrasense.serving.metrics import ServingMetrics
from vibrasense.serving.schemas import AlarmEventRecord, AlarmRecord, MachineStatus, SensorStatus, SeverityReading
from vibrasense.serving.scores import ScoreStore

log = logging.getLogger(__name__)

SYNC_INTERVAL_S = 2.0
"""How often a process re-reads the engineers' actions other processes recorded on its open alarms."""

SUMMARY_KEYS = ("velocity_rms_mm_s", "peak_acceleration_g", "temperature_c")
"""What a summary-only smart sensor may report."""


def overall_rms(samples: np.ndarray) -> float:
    """RMS of a recording with its mean removed (the machine-off gate's reading; ``vib_rms`` at training).

    The mean is taken in float64 and the sum of squares by BLAS on the samples' own dtype (float32): a tenth
    of the cost of a float64 copy, and within 1e-5 of ``vib_rms`` (a gate compares it with a level).
    """
    x = np.asarray(samples)
    if not x.size:
        return 0.0
    deviation = x - x.dtype.type(x.mean(dtype=np.float64))
    return float(np.sqrt(np.dot(deviation, deviation) / x.size))


def alarm_record(alarm: Alarm, now: datetime) -> AlarmRecord:
    """An alarm as the API shows it."""
    return AlarmRecord(
        alarm_id=alarm.alarm_id,
        machine_id=alarm.machine_id,
        sensor=alarm.sensor,
        condition=alarm.condition,  # type: ignore[arg-type]
        severity=alarm.severity,  # type: ignore[arg-type]
        status=alarm.status(now),
        raised_at=alarm.raised_at,
        value=alarm.value,
        acknowledged_at=alarm.acknowledged_at,
        acknowledged_by=alarm.acknowledged_by,
        shelved_until=alarm.shelved_until,
        shelved_by=alarm.shelved_by,
        shelve_reason=alarm.shelve_reason,
        cleared_at=alarm.cleared_at,
        cleared_reason=alarm.cleared_reason,
        events=[
            AlarmEventRecord(
                event_id=e.event_id,
                kind=e.kind,
                severity=e.severity,
                at=e.at,
                by=e.by,
                reason=e.reason,
                value=e.value,
                shelved_until=e.shelved_until,
            )
            for e in alarm.events
        ],
    )


class AlarmManager:
    """Rules, engine, alarm book and log of one scoring process."""

    def __init__(self, settings: Settings, store: ScoreStore, metrics: ServingMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.log = AlarmLog(store)
        self.book = AlarmBook()
        self.engine = AlarmEngine(self.book)
        self._learned: dict[tuple[str, str], LearnedLevels | None] = {}
        self._rules: dict[tuple[str, str, str, float | None], ResolvedRules] = {}
        self._sensors: dict[str, dict[str, SensorStatus]] = {}
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        metrics.watch_alarms(lambda: len(self.book.open_alarms()), self._machines_per_state)

    def start(self) -> None:
        """Take over the open alarms recorded in the database (by an earlier run or another process)."""
        self.book.restore(self.log.alarms(cleared=False, limit=10_000))
        self._sync()
        threading.Thread(target=self._sync_forever, name="alarm-sync", daemon=True).start()

    def close(self) -> None:
        """Stop taking other processes' actions."""
        self._stopped.set()

    # -- rules ---------------------------------------------------------------------------------------

    def learned(self, scorer: Scorer | None) -> LearnedLevels | None:
        """The alarm levels the scorer's model folder holds (read once per model)."""
        if scorer is None:
            return None
        key = (scorer.name, str(scorer.version))
        if key not in self._learned:
            self._learned[key] = load_learned_levels(getattr(scorer, "directory", None))
        return self._learned[key]

    def rules(self, machine_id: str, scorer: Scorer | None, threshold: float | None) -> ResolvedRules:
        """The machine's resolved rules under this model and threshold."""
        name, version = (scorer.name, str(scorer.version)) if scorer is not None else ("", "")
        key = (machine_id, name, version, threshold)
        found = self._rules.get(key)
        if found is None:
            rules = self.settings.alarms.rules(machine_id)
            found = self._rules[key] = resolve_rules(rules, self.learned(scorer), machine_id, threshold)
        return found

    def running(self, machine_id: str, scorer: Scorer, rms: float) -> bool:
        """Whether the machine runs: its overall RMS at or above ``running_rms`` (0: the gate is off)."""
        return rms >= self.rules(machine_id, scorer, None).running_rms

    def severity(self, machine_id: str, sensor: str, samples: np.ndarray, sample_rate: float) -> SeverityReading | None:
        """The ISO 10816-1 reading of an accelerometer's recording; ``None`` without a class or for a microphone."""
        rules = self.settings.alarms.rules(machine_id)
        if rules.machine_class is None or sensor in (rules.sound_sensors or ()):
            return None
        velocity = velocity_rms_mm_s(samples, sample_rate, rules.acceleration_unit or "g")
        return SeverityReading(
            velocity_rms_mm_s=velocity,
            zone=severity_zone(velocity, rules.machine_class),
            machine_class=rules.machine_class,
        )

    # -- snapshots -----------------------------------------------------------------------------------

    def observe(
        self,
        machine_id: str,
        sensor: str,
        at: datetime,
        *,
        running: bool,
        scorer: Scorer | None,
        score: float | None = None,
        threshold: float | None = None,
        zone: SeverityReading | None = None,
        values: dict[str, float] | None = None,
        score_withheld: bool = False,
    ) -> SnapshotResult:
        """Feed one snapshot to the engine, record the events it causes, keep the sensor's status;
        ``score_withheld``: the score is of an unknown domain and raises no alarm (the zone still does)."""
        rules = self.rules(machine_id, scorer, threshold) if running else None
        snapshot = Snapshot(
            machine_id,
            sensor,
            at,
            running,
            score,
            zone.velocity_rms_mm_s if zone is not None else None,
            score_withheld,
        )
        result = self.engine.observe(snapshot, rules)
        with self._lock:
            self._sensors.setdefault(machine_id, {})[sensor] = SensorStatus(
                state=result.state,
                score=score,
                threshold=threshold,
                zone=zone,
                scored_at=at,
                values=values or {},
            )
        self.record(result.events)
        return result

    def observe_summary(self, machine_id: str, sensor: str, values: dict[str, float], at: datetime) -> MachineStatus:
        """A smart sensor's summary: ISO zone and velocity trend, no model; returns the machine's status."""
        for key, value in values.items():
            if key not in SUMMARY_KEYS:
                raise InputError(f"values.{key}", f"not a summary value; use {', '.join(SUMMARY_KEYS)}")
            if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
                raise InputError(f"values.{key}", f"must be a finite number, got {value!r}")
        if values.get("velocity_rms_mm_s", 0.0) < 0:
            raise InputError("values.velocity_rms_mm_s", "a velocity RMS cannot be negative")
        zone = None
        machine_class = self.settings.alarms.rules(machine_id).machine_class
        velocity = values.get("velocity_rms_mm_s")
        if velocity is not None and machine_class is not None:
            zone = SeverityReading(
                velocity_rms_mm_s=float(velocity),
                zone=severity_zone(float(velocity), machine_class),
                machine_class=machine_class,
            )
        self.observe(
            machine_id,
            sensor,
            at,
            running=True,
            scorer=None,
            zone=zone,
            values={k: float(v) for k, v in values.items()},
        )
        return self.machine_status(machine_id)

    def record(self, events: list[AlarmEvent]) -> None:
        """Record events in the score store and count them."""
        if not events:
            return
        self.log.record(events)
        for event in events:
            self.metrics.alarm_events.labels(event.kind).inc()

    # -- reading and engineers' actions --------------------------------------------------------------

    def _sync_forever(self) -> None:
        """:meth:`_sync` every ``SYNC_INTERVAL_S``, in a thread of its own: a database that hangs holds up this
        loop, never a score or a status."""
        while not self._stopped.wait(SYNC_INTERVAL_S):
            self._sync()

    def _sync(self) -> None:
        """Take the shelves, acknowledgements and unshelvings recorded by other processes (an engineer acting
        over the API while the gateway holds the alarm): the scoring path reads them from memory only."""
        try:
            self.book.take_shelvings(self.log.shelvings())
            if self.book.open_alarms():
                self.book.merge(self.log.alarms(cleared=False, limit=10_000))
        except Exception as error:  # a failed read is retried at the next turn; the loop must not die
            log.warning("cannot read engineers' actions on alarms: %s", error)

    def machine_status(self, machine_id: str) -> MachineStatus:
        """The machine's state, each sensor's, and its open alarms (with the engineers' actions recorded
        anywhere, see :meth:`_sync_forever`)."""
        with self._lock:
            sensors = dict(self._sensors.get(machine_id, {}))
        now = datetime.now(UTC)
        alarms = [alarm_record(a, now) for a in self.book.open_alarms() if a.machine_id == machine_id]
        return MachineStatus(
            machine_id=machine_id,
            state=self.engine.machine_state(machine_id),
            sensors=sensors,
            active_alarms=alarms,
            updated_at=max((s.scored_at for s in sensors.values() if s.scored_at), default=now),
        )

    def open_alarms(self) -> list[AlarmRecord]:
        """The open alarms this process holds (those taken over from an earlier run included), oldest first."""
        now = datetime.now(UTC)
        return [alarm_record(alarm, now) for alarm in self.book.open_alarms()]

    def alarms(self, machine_id: str | None = None, status: str | None = None, limit: int = 100) -> list[AlarmRecord]:
        """Alarms (open first, then cleared), optionally of one machine and in one status."""
        if status is not None and status not in (*ALARM_STATUSES, "open"):
            raise InputError("state", f"unknown alarm state {status!r}; use open, {', '.join(ALARM_STATUSES)}")
        cleared = None if status is None else status == "cleared"
        now = datetime.now(UTC)
        # an open status is read from every open alarm (few), then filtered
        found = self.log.alarms(
            machine_id=machine_id, cleared=cleared, limit=limit if status is None or cleared else 10_000
        )
        records = [alarm_record(a, now) for a in found]
        if status not in (None, "open", "cleared"):
            records = [r for r in records if r.status == status]
        return records[:limit]

    def alarm(self, alarm_id: str) -> AlarmRecord:
        """One alarm; :class:`~vibrasense.alarms.UnknownAlarm` when none has this id."""
        return alarm_record(self.book_copy(alarm_id), datetime.now(UTC))

    def acknowledge(self, alarm_id: str, by: str) -> AlarmRecord:
        """Record that ``by`` acknowledged an open alarm."""
        return self._act(alarm_id, lambda alarm, now: self.book.acknowledge(alarm, by, now))

    def shelve(self, alarm_id: str, by: str, reason: str, duration_s: float) -> AlarmRecord:
        """Shelve an open alarm's condition for ``duration_s``."""
        return self._act(
            alarm_id,
            lambda alarm, now: self.book.shelve(alarm, by, reason, now + timedelta(seconds=duration_s), now),
        )

    def unshelve(self, alarm_id: str, by: str) -> AlarmRecord:
        """End a shelf early."""
        return self._act(alarm_id, lambda alarm, now: self.book.unshelve(alarm, by, now))

    def _act(self, alarm_id: str, action: Callable[[Alarm, datetime], AlarmEvent]) -> AlarmRecord:
        """Check and apply an engineer's action on the alarm, record its event, answer the alarm after it."""
        alarm = self.book_copy(alarm_id)
        now = datetime.now(UTC)
        self.record([action(alarm, now)])
        return alarm_record(alarm, now)

    def book_copy(self, alarm_id: str) -> Alarm:
        """The alarm: this process's open copy if it holds one, else as the recorded events made it."""
        for alarm in self.book.open_alarms():
            if alarm.alarm_id == alarm_id:
                return alarm
        return self.log.alarm(alarm_id)

    def _machines_per_state(self) -> dict[str, int]:
        with self._lock:
            machines = list(self._sensors)
        counts = dict.fromkeys(("not_running", "ok", "warning", "alarm"), 0)
        for machine_id in machines:
            counts[self.engine.machine_state(machine_id)] += 1
        return counts
