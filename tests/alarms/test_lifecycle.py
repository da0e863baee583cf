"""The alarm lifecycle: acknowledge, shelve, unshelve, conflicts, and alarms folded from their events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from vibrasense.alarms import AlarmBook, AlarmConflict, AlarmEvent, fold_events

T0 = datetime(2026, 1, 1, tzinfo=UTC)
KEY = ("fan-1", "default", "score")


def raised(book: AlarmBook):
    (event,) = book.reconcile(KEY, "warning", T0, 1.5)
    alarm = book.open_alarm(KEY)
    assert alarm is not None and alarm.alarm_id == event.alarm_id
    return alarm, event


def test_acknowledge_records_who_and_when_once() -> None:
    book = AlarmBook()
    alarm, _ = raised(book)
    event = book.acknowledge(alarm, "ana", T0 + timedelta(minutes=1))
    assert (event.kind, event.by, event.at) == ("acknowledged", "ana", T0 + timedelta(minutes=1))
    assert alarm.status(T0) == "acknowledged" and alarm.acknowledged_by == "ana"
    with pytest.raises(AlarmConflict, match="already acknowledged by ana"):
        book.acknowledge(alarm, "bob", T0)


def test_a_cleared_alarm_cannot_be_acknowledged_or_shelved() -> None:
    book = AlarmBook()
    alarm, _ = raised(book)
    (cleared,) = book.reconcile(KEY, "ok", T0 + timedelta(minutes=2), 0.1)
    assert cleared.kind == "cleared" and alarm.status(T0) == "cleared" and book.open_alarm(KEY) is None
    with pytest.raises(AlarmConflict, match="was cleared"):
        book.acknowledge(alarm, "ana", T0)
    with pytest.raises(AlarmConflict, match="cleared"):
        book.shelve(alarm, "ana", "why", T0 + timedelta(hours=1), T0)


def test_shelve_and_unshelve() -> None:
    book = AlarmBook()
    alarm, _ = raised(book)
    with pytest.raises(AlarmConflict, match="not shelved"):
        book.unshelve(alarm, "ana", T0)
    book.shelve(alarm, "ana", "pump under repair", T0 + timedelta(hours=1), T0)
    assert alarm.status(T0 + timedelta(minutes=5)) == "shelved" and alarm.shelve_reason == "pump under repair"
    assert alarm.status(T0 + timedelta(hours=2)) == "active"  # the shelf expired
    assert book.shelved_until(KEY, T0) == T0 + timedelta(hours=1)
    book.unshelve(alarm, "bob", T0 + timedelta(minutes=6))
    assert alarm.status(T0 + timedelta(minutes=7)) == "active" and book.shelved_until(KEY, T0) is None


def test_an_alarm_is_the_fold_of_its_events_each_taken_once() -> None:
    book = AlarmBook()
    alarm, first = raised(book)
    events = [first, *book.reconcile(KEY, "alarm", T0 + timedelta(minutes=1), 2.5)]
    events.append(book.acknowledge(alarm, "ana", T0 + timedelta(minutes=2)))
    events += book.reconcile(KEY, "ok", T0 + timedelta(minutes=3), 0.1)
    folded = fold_events(events + events[1:2])[alarm.alarm_id]  # a redelivered event is taken once
    assert [e.kind for e in folded.events] == ["raised", "escalated", "acknowledged", "cleared"]
    assert (folded.severity, folded.value, folded.acknowledged_by) == ("alarm", 2.5, "ana")
    assert folded.cleared_at == T0 + timedelta(minutes=3) and folded.status(T0) == "cleared"


def shelving(kind: str, at: datetime, until: datetime | None = None, key=KEY) -> AlarmEvent:
    return AlarmEvent("other", kind, *key, "alarm", at, by="ana", shelved_until=until)  # type: ignore[arg-type]


def test_shelvings_recorded_elsewhere_shelve_and_unshelve_unless_this_book_knows_newer() -> None:
    book = AlarmBook()
    book.take_shelvings([shelving("shelved", T0, until=T0 + timedelta(hours=1))])
    assert book.reconcile(KEY, "alarm", T0 + timedelta(minutes=1), 3.0) == []
    assert len(book.reconcile(("fan-1", "default", "zone"), "alarm", T0, 3.0)) == 1  # another condition
    book.take_shelvings([shelving("unshelved", T0 + timedelta(minutes=2))])
    assert [e.kind for e in book.reconcile(KEY, "alarm", T0 + timedelta(minutes=3), 3.0)] == ["raised"]
    alarm = book.open_alarm(KEY)
    assert alarm is not None
    book.shelve(alarm, "bob", "pump swap", T0 + timedelta(hours=2), T0 + timedelta(minutes=4))
    book.take_shelvings([shelving("unshelved", T0 + timedelta(minutes=2))])  # older than bob's: ignored
    assert book.shelved_until(KEY, T0 + timedelta(minutes=5)) == T0 + timedelta(hours=2)
    with pytest.raises(ValueError, match="not a shelving"):
        book.take_shelvings([shelving("raised", T0)])
