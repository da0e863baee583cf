"""The life of an alarm: raised, escalated, acknowledged, shelved, unshelved, cleared; each step an event.

An alarm belongs to one machine, sensor and *condition* (``score``: the score levels, ``rate``: the score's
rate of change, ``zone``: the ISO 10816 severity, ``domain``: recordings the model cannot judge). It is
raised when its condition's state becomes warning or alarm, escalated when a warning becomes an alarm, and
cleared when the state is back to ok (through the reset level and delay) or the machine stops. At most one
alarm per machine, sensor and condition is open. An engineer acknowledges it (who and when), or shelves it
for a time with a reason: while shelved, the condition raises no new alarm. An alarm is the fold of its
events (:func:`fold_events`), so a book in another process rebuilds it from the events in the database.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal

from vibrasense.alarms.states import STATES, State
from vibrasense.errors import InputError

Condition = Literal["score", "rate", "zone", "domain"]
CONDITIONS: tuple[Condition, ...] = ("score", "rate", "zone", "domain")
EventKind = Literal["raised", "escalated", "acknowledged", "shelved", "unshelved", "cleared"]
EVENT_KINDS: tuple[EventKind, ...] = ("raised", "escalated", "acknowledged", "shelved", "unshelved", "cleared")
AlarmStatus = Literal["active", "acknowledged", "shelved", "cleared"]
SHELVINGS: tuple[EventKind, ...] = ("shelved", "unshelved")
ENGINEER_ACTIONS: tuple[EventKind, ...] = ("acknowledged", *SHELVINGS)
"""The events an engineer records (over the API), which any process holding the alarm open must take."""
ALARM_STATUSES: tuple[AlarmStatus, ...] = ("active", "acknowledged", "shelved", "cleared")
Key = tuple[str, str, str]
"""(machine_id, sensor, condition)."""


class UnknownAlarm(InputError):
    """No alarm has this id."""


class AlarmConflict(InputError):
    """The alarm is in no state for this action (acknowledging a cleared alarm...)."""


def new_event_id() -> str:
    """A unique id for an alarm event (also its key in the spool: written twice, stored once)."""
    return uuid.uuid4().hex


@dataclass(frozen=True)
class AlarmEvent:
    """One step in an alarm's life, with who (for an engineer's action) and when."""

    alarm_id: str
    kind: EventKind
    machine_id: str
    sensor: str
    condition: str
    severity: str
    at: datetime
    by: str | None = None
    reason: str | None = None
    value: float | None = None
    shelved_until: datetime | None = None
    event_id: str = field(default_factory=new_event_id)

    @property
    def key(self) -> Key:
        return self.machine_id, self.sensor, self.condition


@dataclass
class Alarm:
    """An alarm as its events made it."""

    alarm_id: str
    machine_id: str
    sensor: str
    condition: str
    severity: str
    raised_at: datetime
    value: float | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    shelved_until: datetime | None = None
    shelved_by: str | None = None
    shelve_reason: str | None = None
    cleared_at: datetime | None = None
    cleared_reason: str | None = None
    events: list[AlarmEvent] = field(default_factory=list)

    @property
    def key(self) -> Key:
        return self.machine_id, self.sensor, self.condition

    @property
    def open(self) -> bool:
        """Not cleared yet."""
        return self.cleared_at is None

    def status(self, now: datetime) -> AlarmStatus:
        """cleared, else shelved (until the shelf expires), else acknowledged, else active."""
        if self.cleared_at is not None:
            return "cleared"
        if self.shelved_until is not None and self.shelved_until > now:
            return "shelved"
        return "acknowledged" if self.acknowledged_at is not None else "active"

    def apply(self, event: AlarmEvent) -> None:
        """Take one more event of this alarm."""
        if event.kind == "escalated":
            self.severity, self.value = event.severity, event.value
        elif event.kind == "acknowledged":
            self.acknowledged_at, self.acknowledged_by = event.at, event.by
        elif event.kind == "shelved":
            self.shelved_until, self.shelved_by, self.shelve_reason = event.shelved_until, event.by, event.reason
        elif event.kind == "unshelved":
            self.shelved_until = None
        elif event.kind == "cleared":
            self.cleared_at, self.cleared_reason = event.at, event.reason
        self.events.append(event)

    @classmethod
    def raised(cls, event: AlarmEvent) -> Alarm:
        alarm = cls(
            event.alarm_id, event.machine_id, event.sensor, event.condition, event.severity, event.at, event.value
        )
        alarm.events.append(event)
        return alarm


def fold_events(events: Iterable[AlarmEvent]) -> dict[str, Alarm]:
    """Alarms by id from their events (in the order given; an alarm's first event must be its raise)."""
    alarms: dict[str, Alarm] = {}
    seen: set[str] = set()
    for event in events:
        if event.event_id in seen:
            continue
        seen.add(event.event_id)
        if event.kind == "raised":
            alarms.setdefault(event.alarm_id, Alarm.raised(event))
        elif event.alarm_id in alarms:
            alarms[event.alarm_id].apply(event)
    return alarms


class AlarmBook:
    """The open alarms of the conditions this process watches, and what each state change does to them."""

    def __init__(self) -> None:
        self._open: dict[Key, Alarm] = {}
        self._shelves: dict[Key, datetime] = {}
        self._shelved_at: dict[Key, datetime] = {}  # when the latest shelving known here happened
        self._lock = threading.RLock()

    def open_alarm(self, key: Key) -> Alarm | None:
        """The open alarm of a condition, if any."""
        return self._open.get(key)

    def open_alarms(self) -> list[Alarm]:
        """Every open alarm this book knows, oldest first."""
        with self._lock:
            return sorted(self._open.values(), key=lambda a: a.raised_at)

    def restore(self, alarms: Iterable[Alarm]) -> None:
        """Take the open alarms (and shelves) recorded by an earlier run or another process."""
        with self._lock:
            for alarm in alarms:
                if alarm.open:
                    self._open[alarm.key] = alarm
                if alarm.shelved_until is not None:
                    self._shelves[alarm.key] = max(alarm.shelved_until, self._shelves.get(alarm.key, alarm.raised_at))

    def merge(self, recorded: Iterable[Alarm]) -> int:
        """Take the engineers' actions (acknowledged, shelved, unshelved) that another process recorded on the
        alarms this book holds open, so their status shows them; returns how many events were new here. Whether
        a condition is shelved is :meth:`take_shelvings`'s."""
        taken = 0
        with self._lock:
            for alarm in recorded:
                mine = self._open.get(alarm.key)
                if mine is None or mine.alarm_id != alarm.alarm_id:
                    continue
                known = {event.event_id for event in mine.events}
                for event in sorted(alarm.events, key=lambda e: e.at):
                    if event.event_id not in known and event.kind in ENGINEER_ACTIONS:
                        mine.apply(event)
                        taken += 1
        return taken

    def take_shelvings(self, latest: Iterable[AlarmEvent]) -> None:
        """Take each condition's latest ``shelved`` or ``unshelved`` event as recorded anywhere (another process
        may have shelved a condition this one watches), unless this book knows a newer one."""
        with self._lock:
            for event in latest:
                if event.kind not in SHELVINGS:
                    raise ValueError(f"event {event.event_id} is {event.kind}, not a shelving")
                known = self._shelved_at.get(event.key)
                if known is not None and known >= event.at:
                    continue
                self._shelved_at[event.key] = event.at
                if event.kind == "shelved" and event.shelved_until is not None:
                    self._shelves[event.key] = event.shelved_until
                else:
                    self._shelves.pop(event.key, None)

    def shelved_until(self, key: Key, at: datetime) -> datetime | None:
        """Until when a condition is shelved at ``at``, or ``None`` (from memory only: never waits on a database)."""
        until = self._shelves.get(key)
        return until if until is not None and until > at else None

    def reconcile(self, key: Key, state: State, at: datetime, value: float | None) -> list[AlarmEvent]:
        """The events a condition's state causes: raise (unless shelved), escalate, or clear."""
        machine_id, sensor, condition = key
        with self._lock:
            alarm = self._open.get(key)
            if state in ("warning", "alarm"):
                if alarm is None:
                    if self.shelved_until(key, at) is not None:
                        return []
                    event = AlarmEvent(
                        uuid.uuid4().hex, "raised", machine_id, sensor, condition, state, at, value=value
                    )
                    self._open[key] = Alarm.raised(event)
                    return [event]
                if STATES.index(state) > STATES.index(alarm.severity):  # type: ignore[arg-type]
                    return [self._apply(alarm, "escalated", at, severity=state, value=value)]
                return []
            if alarm is None:
                return []
            reason = "machine not running" if state == "not_running" else "back below the reset level"
            return [self._apply(alarm, "cleared", at, reason=reason, value=value)]

    def acknowledge(self, alarm: Alarm, by: str, at: datetime) -> AlarmEvent:
        """Acknowledge an open alarm; :class:`AlarmConflict` for a cleared or already acknowledged one."""
        with self._lock:
            alarm = self._current(alarm)
            if not alarm.open:
                raise AlarmConflict(
                    "alarm_id",
                    f"alarm {alarm.alarm_id} was cleared at {alarm.cleared_at:%Y-%m-%d %H:%M:%S} UTC: "
                    "nothing to acknowledge",
                )
            if alarm.acknowledged_at is not None:
                raise AlarmConflict(
                    "alarm_id", f"alarm {alarm.alarm_id} was already acknowledged by {alarm.acknowledged_by}"
                )
            return self._apply(alarm, "acknowledged", at, by=by)

    def shelve(self, alarm: Alarm, by: str, reason: str, until: datetime, at: datetime) -> AlarmEvent:
        """Shelve an open alarm's condition until ``until``: no new alarm is raised for it before then."""
        with self._lock:
            alarm = self._current(alarm)
            if not alarm.open:
                raise AlarmConflict("alarm_id", f"alarm {alarm.alarm_id} was cleared; there is nothing to shelve")
            event = self._apply(alarm, "shelved", at, by=by, reason=reason, shelved_until=until)
            self._shelves[alarm.key], self._shelved_at[alarm.key] = until, at
            return event

    def unshelve(self, alarm: Alarm, by: str, at: datetime) -> AlarmEvent:
        """End a shelf early (also of an alarm cleared meanwhile: its condition may raise again at once);
        :class:`AlarmConflict` when the alarm is not shelved."""
        with self._lock:
            alarm = self._current(alarm)
            if alarm.shelved_until is None or alarm.shelved_until <= at:
                raise AlarmConflict("alarm_id", f"alarm {alarm.alarm_id} is not shelved (it is {alarm.status(at)})")
            self._shelves.pop(alarm.key, None)
            self._shelved_at[alarm.key] = at
            return self._apply(alarm, "unshelved", at, by=by)

    def _current(self, alarm: Alarm) -> Alarm:
        """This book's copy of an alarm when it holds it open (the freshest), else the one given."""
        mine = self._open.get(alarm.key)
        return mine if mine is not None and mine.alarm_id == alarm.alarm_id else alarm

    def _apply(self, alarm: Alarm, kind: EventKind, at: datetime, **details: object) -> AlarmEvent:
        event = AlarmEvent(alarm.alarm_id, kind, alarm.machine_id, alarm.sensor, alarm.condition, alarm.severity, at)
        event = replace(event, **details)  # type: ignore[arg-type]
        alarm.apply(event)
        if not alarm.open and self._open.get(alarm.key) is alarm:
            del self._open[alarm.key]
        return event
