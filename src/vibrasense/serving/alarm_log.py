"""The alarm events of the score store's database, and those this process recorded that it has not confirmed.

Events are written like scores (:meth:`ScoreStore.record`: through the durable spool, in order, each once),
so none is lost while the database is down. Reads merge the database's events (every process's) with the
ones this process recorded recently, so an alarm just raised can be acknowledged before its raise is
written, and the alarms still show while the database is down.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Iterable

from vibrasense.alarms import Alarm, AlarmEvent, UnknownAlarm, fold_events
from vibrasense.errors import StoreError
from vibrasense.serving.scores import ScoreStore

log = logging.getLogger(__name__)

RECENT_EVENTS = 5_000
"""Events of this process kept in memory for reads (the database holds them all)."""


class AlarmLog:
    """Records alarm events in the score store and reads alarms back as their events made them."""

    def __init__(self, store: ScoreStore, recent: int = RECENT_EVENTS) -> None:
        self.store = store
        self._recent: deque[AlarmEvent] = deque(maxlen=recent)
        self._lock = threading.Lock()

    def record(self, events: Iterable[AlarmEvent]) -> None:
        """Queue events for the database (through the spool) and keep them for reads."""
        for event in events:
            with self._lock:
                self._recent.append(event)
            self.store.record(event)

    def events(
        self,
        *,
        alarm_id: str | None = None,
        machine_id: str | None = None,
        cleared: bool | None = None,
        limit: int = 100,
    ) -> list[AlarmEvent]:
        """Events of the latest ``limit`` alarms matching the filters: the database's, then this process's newer.

        While the database is down only this process's events are read (it logs why).
        """
        try:
            stored = self.store.alarm_events(alarm_id=alarm_id, machine_id=machine_id, cleared=cleared, limit=limit)
        except StoreError as error:
            log.warning("alarms read from this process only: %s", error)
            stored = []
        seen = {event.event_id for event in stored}
        with self._lock:
            local = [
                event
                for event in self._recent
                if event.event_id not in seen
                and (alarm_id is None or event.alarm_id == alarm_id)
                and (machine_id is None or event.machine_id == machine_id)
            ]
        return stored + local

    def alarms(self, *, machine_id: str | None = None, cleared: bool | None = None, limit: int = 100) -> list[Alarm]:
        """Alarms (only open ones, only cleared ones, or both), open ones first (newest raised first), then
        cleared ones (newest cleared first)."""
        folded = fold_events(self.events(machine_id=machine_id, cleared=cleared, limit=limit)).values()
        found = [alarm for alarm in folded if cleared is None or alarm.open != cleared]
        opened = sorted((a for a in found if a.open), key=lambda a: a.raised_at, reverse=True)
        cleared = sorted((a for a in found if not a.open), key=lambda a: a.cleared_at or a.raised_at, reverse=True)
        return (opened + cleared)[:limit]

    def alarm(self, alarm_id: str) -> Alarm:
        """One alarm by id; :class:`UnknownAlarm` when no event names it."""
        found = fold_events(self.events(alarm_id=alarm_id, limit=1)).get(alarm_id)
        if found is None:
            raise UnknownAlarm("alarm_id", f"no alarm {alarm_id!r}; GET /v1/alarms lists them")
        return found

    def shelvings(self) -> list[AlarmEvent]:
        """Each condition's latest shelving in the database (this process's own are in its alarm book already);
        :class:`StoreError` when the database cannot be read."""
        return self.store.latest_shelvings()
