"""The alarm engine: sensor and machine states, the not-running gate, rate of change, ISO zones, alarm events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from vibrasense.alarms import AlarmBook, AlarmEngine, AlarmEvent, Snapshot, fold_events, machine_state, resolve_rules
from vibrasense.config import AlarmRules

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def rules(**given: object):
    defaults = {"trigger_count": 2, "trigger_window": 3, "reset_count": 3, "rate_window": 5}
    return resolve_rules(AlarmRules(**(defaults | given)), None, "pump-1", threshold=1.0)


class Feed:
    """A machine's sensors fed snapshot by snapshot, a minute apart; every event kept."""

    def __init__(self, **given: object) -> None:
        self.engine = AlarmEngine()
        self.rules = rules(**given)
        self.events: list[AlarmEvent] = []
        self.minute = 0

    def __call__(self, score: float | None = None, sensor: str = "x", running: bool = True, velocity=None):
        self.minute += 1
        snapshot = Snapshot("pump-1", sensor, T0 + timedelta(minutes=self.minute), running, score, velocity)
        result = self.engine.observe(snapshot, self.rules)
        self.events += result.events
        return result

    def kinds(self) -> list[tuple[str, str, str]]:
        return [(e.kind, e.condition, e.severity) for e in self.events]


def test_warning_then_alarm_is_one_alarm_raised_escalated_and_cleared_only_via_reset() -> None:
    feed = Feed()
    states = [feed(score).state for score in (0.5, 1.1, 1.2, 1.3, 1.4, 1.3, 1.4)]
    assert states == ["ok", "ok", "warning", "warning", "alarm", "alarm", "alarm"]  # alarm level 1.25 (fallback)
    assert feed.kinds() == [("raised", "score", "warning"), ("escalated", "score", "alarm")]
    states = [feed(score).state for score in (0.9, 0.7, 0.7, 0.7)]  # 0.9: above the reset level 0.75
    assert states == ["alarm", "alarm", "alarm", "ok"]
    assert feed.kinds()[-1] == ("cleared", "score", "alarm")
    (alarm,) = fold_events(feed.events).values()
    assert alarm.severity == "alarm" and not alarm.open and alarm.cleared_reason == "back below the reset level"
    assert alarm.raised_at == T0 + timedelta(minutes=3) and alarm.cleared_at == T0 + timedelta(minutes=11)


def test_not_running_means_no_alarm_and_clears_an_open_one() -> None:
    feed = Feed()
    for score in (2.0, 2.0):
        feed(score)
    result = feed(running=False)
    assert (result.state, result.machine_state) == ("not_running", "not_running")
    assert feed.kinds() == [("raised", "score", "alarm"), ("cleared", "score", "alarm")]
    assert feed.events[-1].reason == "machine not running"
    assert feed(2.0).state == "ok"  # the monitors start over: one high score is no alarm


def test_machine_state_is_the_worst_running_sensor_and_not_running_only_when_all_are() -> None:
    feed = Feed()
    feed(0.5, "x"), feed(2.0, "y"), feed(2.0, "y")
    assert feed.engine.sensor_states("pump-1") == {"x": "ok", "y": "alarm"}
    assert feed(running=False, sensor="y").machine_state == "ok"
    assert feed(running=False, sensor="x").machine_state == "not_running"
    assert machine_state(["not_running", "warning", "ok"]) == "warning"
    assert machine_state([]) == "not_running"


def test_a_steady_rise_below_the_warning_level_raises_a_rate_of_change_warning() -> None:
    feed = Feed(rate_limit=0.05)
    states = [feed(0.2 + 0.08 * i).state for i in range(8)]  # 0.2 .. 0.76: never above the warning level 1.0
    assert states[:5] == ["ok"] * 5 and states[-1] == "warning"
    assert ("raised", "rate", "warning") in feed.kinds() and all(c == "rate" for _, c, _ in feed.kinds())
    flat = [feed(0.5).state for _ in range(8)]
    assert flat[-1] == "ok" and feed.kinds()[-1] == ("cleared", "rate", "warning")


def test_iso_zone_c_warns_and_zone_d_alarms_for_the_machine_class() -> None:
    feed = Feed(machine_class="II")  # boundaries 1.12 / 2.8 / 7.1 mm/s
    states = [feed(0.5, velocity=v).state for v in (1.0, 3.0, 3.5, 8.0, 9.0)]
    assert states == ["ok", "ok", "warning", "warning", "alarm"]
    assert [k for k in feed.kinds() if k[1] == "zone"] == [
        ("raised", "zone", "warning"),
        ("escalated", "zone", "alarm"),
    ]
    assert feed.events[0].value == 3.5


def test_a_shelved_condition_does_not_raise_again_until_the_shelf_expires() -> None:
    feed = Feed(reset_count=1)
    feed(2.0), feed(2.0)
    alarm = feed.engine.book.open_alarm(("pump-1", "x", "score"))
    assert alarm is not None
    feed.events.append(feed.engine.book.shelve(alarm, "ana", "sensor swap", T0 + timedelta(minutes=10, seconds=30), T0))
    feed(0.1)  # cleared
    assert [feed(2.0).state for _ in range(3)] == ["ok", "alarm", "alarm"]  # reported, not raised again
    assert [k[0] for k in feed.kinds()] == ["raised", "shelved", "cleared"]
    feed(0.1), feed(2.0), feed(2.0), feed(2.0)  # minutes 7..10: still shelved (alarm at 9 and 10)
    feed(0.1), feed(2.0), feed(2.0)  # minutes 11..13: the shelf has expired, raised at 13
    assert [k[0] for k in feed.kinds()] == ["raised", "shelved", "cleared", "raised"]


def test_an_open_alarm_restored_from_the_database_continues() -> None:
    feed = Feed()
    feed(2.0), feed(2.0)
    restored = AlarmBook()
    restored.restore(fold_events(feed.events).values())
    engine = AlarmEngine(restored)
    snapshots = [Snapshot("pump-1", "x", T0 + timedelta(hours=1, minutes=i), True, 0.1) for i in range(3)]
    results = [engine.observe(s, feed.rules) for s in snapshots]
    assert [r.state for r in results] == ["alarm", "alarm", "ok"]
    assert [e.kind for e in results[-1].events] == ["cleared"]
    assert results[-1].events[0].alarm_id == feed.events[0].alarm_id


def test_a_running_snapshot_needs_rules() -> None:
    with pytest.raises(ValueError, match="rules"):
        AlarmEngine().observe(Snapshot("m", "x", T0, True, 1.0), None)
