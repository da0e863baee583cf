"""The gateway against the real Mosquitto, with a real champion: states, the machine-off gate, summaries,
dead letters, duplicates and a store that is down."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from mqtt_watch import SiteWatcher, publish_raw

from vibrasense.config import Settings
from vibrasense.gateway import AnomalySpan, Gateway, Plant, Scenario, discard_session, publish
from vibrasense.gateway.codec import encode_binary, encode_json, encode_summary
from vibrasense.gateway.topics import sensor_topic
from vibrasense.serving.model import load_registered_scorer
from vibrasense.serving.service import ScoringService
from vibrasense.signals.synthetic import PLANT_EPOCH, machine_sound

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]


@contextmanager
def running_gateway(settings: Settings) -> Iterator[Gateway]:
    """The champion's scoring service and a gateway on it, connected and subscribed; both stopped after."""
    service = ScoringService(settings, load_registered_scorer(settings)).start()
    gateway = Gateway(settings, service).start()
    try:
        assert gateway.wait_connected(15), "the gateway did not connect to the broker"
        yield gateway
    finally:
        gateway.stop()
        service.close()


def wait_handled(gateway: Gateway, watcher: SiteWatcher, count: int, timeout_s: float = 120.0) -> None:
    watcher.wait(lambda: gateway.health()["handled"] >= count, timeout_s, f"{count} messages handled")


def score_rows(settings: Settings) -> tuple[int, int]:
    """Rows in the score store and distinct score ids among them."""
    path = Path(settings.score_store_url.removeprefix("sqlite:///"))
    with sqlite3.connect(path) as db:
        return db.execute("SELECT COUNT(*), COUNT(DISTINCT score_id) FROM scores").fetchone()


def test_an_anomalous_machine_goes_ok_warning_alarm_and_a_switched_off_one_is_not_running(
    gateway_settings: Settings, site: str
) -> None:
    scenario = Scenario(
        site=site,
        sound_machines=3,
        duration_s=40,
        anomalies={"pump_id_01": AnomalySpan("bearing", 8.0)},
        off={"pump_id_02": (10.0, float("inf"))},
        severity=2.0,
        ramp_s=16.0,
    )
    with SiteWatcher(site) as watcher, running_gateway(gateway_settings) as gateway:
        published = publish(gateway_settings.gateway, Plant(scenario, start=PLANT_EPOCH), speed=0)
        assert published.messages == scenario.messages() == 120
        wait_handled(gateway, watcher, published.messages)
        watcher.wait(lambda: len(watcher.statuses.get("pump_id_02", [])) >= 40, 30, "every status")
        gateway.service.store.wait_stored()
        assert score_rows(gateway_settings) == (120, 120)
    assert watcher.states("pump_id_01") == ["ok", "warning", "alarm"]
    assert watcher.states("pump_id_02") == ["ok", "not_running"]  # the gate: no score, no alarm
    assert "alarm" not in watcher.states("pump_id_00")
    last = watcher.statuses["pump_id_01"][-1]
    assert last["machine_id"] == "pump_id_01" and last["sensors"]["mic"]["state"] == "alarm"
    assert any(alarm["severity"] == "alarm" for alarm in last["active_alarms"])
    assert last["gateway"]["status"] in ("ok", "degraded")
    off = watcher.statuses["pump_id_02"][-1]["sensors"]["mic"]
    assert off["state"] == "not_running" and off["score"] is None


def test_the_status_is_retained_for_a_client_that_comes_later(gateway_settings: Settings, site: str) -> None:
    samples = machine_sound(1.0, 16_000, machine=0, seed=7, clip=100_000)
    with running_gateway(gateway_settings) as gateway, SiteWatcher(site) as watcher:
        publish_raw(
            [(sensor_topic(site, "pump_id_00", "mic", "waveform"), encode_binary(samples, 16_000, PLANT_EPOCH, 1))]
        )
        wait_handled(gateway, watcher, 1)
    with SiteWatcher(site) as later:
        later.wait(lambda: "pump_id_00" in later.statuses, 10, "the retained status")
    assert later.statuses["pump_id_00"][0]["_retain"] is True
    assert later.statuses["pump_id_00"][0]["sensors"]["mic"]["scored_at"].startswith("2026-01-05T06:00:00")


def test_summary_only_sensors_reach_the_machine_status(gateway_settings: Settings, site: str) -> None:
    scenario = Scenario(site=site, sound_machines=0, summary_only=2, duration_s=5)
    with SiteWatcher(site) as watcher, running_gateway(gateway_settings) as gateway:
        publish(gateway_settings.gateway, Plant(scenario, start=PLANT_EPOCH), speed=0)
        wait_handled(gateway, watcher, 10)
        watcher.wait(lambda: len(watcher.statuses.get("smart-01", [])) >= 5, 10, "the summary statuses")
    smart = watcher.statuses["smart-01"][-1]["sensors"]["smart"]
    assert set(smart["values"]) == {"velocity_rms_mm_s", "peak_acceleration_g", "temperature_c"}
    assert smart["state"] in ("ok", "warning", "alarm")


def test_malformed_messages_land_on_the_dead_letter_topic_with_their_reason(
    gateway_settings: Settings, site: str
) -> None:
    good = encode_binary(np.zeros(16_000), 16_000, PLANT_EPOCH, 1, "float32")
    nan = np.zeros(16_000, dtype=np.float32)
    nan[5] = np.nan
    topic = sensor_topic(site, "pump_id_00", "mic", "waveform")
    no_rate = json.dumps({"timestamp": PLANT_EPOCH.isoformat(), "samples": [0.0] * 1000}).encode()
    malformed = [
        (topic, b"RIFF....not our header"),
        (topic, good[:5] + bytes([9]) + good[6:]),  # dtype code 9
        (topic, encode_binary(nan, 16_000, PLANT_EPOCH, 2, "float32")),
        (f"vibrasense/{site}/pump 00!/mic/waveform", good),
        (topic, no_rate),
        (sensor_topic(site, "pump_id_00", "mic", "summary"), encode_summary({}, PLANT_EPOCH)),
        (topic, encode_json(np.zeros(100), 16_000, PLANT_EPOCH, 3)),  # 6 ms: shorter than signals.min_duration_s
    ]
    with SiteWatcher(site) as watcher, running_gateway(gateway_settings) as gateway:
        publish_raw(malformed)
        watcher.wait(lambda: len(watcher.dead_letters) >= len(malformed), 60, "every dead letter")
        metrics = gateway.metrics
        assert metrics.messages.labels("waveform", "dead_letter")._value.get() == 6
        assert metrics.dead_letters.labels("dtype")._value.get() == 1
    fields = [letter["field"] for letter in watcher.dead_letters]
    assert fields == ["header", "dtype", "samples", "machine_id", "sample_rate", "summary", "samples"]
    by_field = {letter["field"]: letter for letter in watcher.dead_letters}
    assert "NaN" in watcher.dead_letters[2]["reason"] and "min_duration_s" in watcher.dead_letters[6]["reason"]
    assert by_field["machine_id"]["topic"] == f"vibrasense/{site}/pump 00!/mic/waveform"
    assert by_field["header"]["payload_base64"] is not None and by_field["dtype"]["payload_base64"] is None
    assert by_field["dtype"]["payload_bytes"] == len(good)
    assert watcher.statuses == {}  # nothing was scored
    assert score_rows(gateway_settings) == (0, 0)


def test_a_message_delivered_twice_is_scored_once_even_after_a_restart(gateway_settings: Settings, site: str) -> None:
    samples = machine_sound(1.0, 16_000, machine=0, seed=7, clip=100_001)
    message = (sensor_topic(site, "pump_id_00", "mic", "waveform"), encode_binary(samples, 16_000, PLANT_EPOCH, 77))
    with SiteWatcher(site) as watcher:
        with running_gateway(gateway_settings) as gateway:
            publish_raw([message, message])
            watcher.wait(lambda: gateway.metrics.messages.labels("waveform", "duplicate")._value.get() == 1, 30)
            gateway.service.store.wait_stored()
        with running_gateway(gateway_settings) as gateway:
            publish_raw([message])
            watcher.wait(lambda: gateway.metrics.messages.labels("waveform", "duplicate")._value.get() == 1, 30)
            assert gateway.metrics.messages.labels("waveform", "scored")._value.get() == 0
    assert score_rows(gateway_settings) == (1, 1)


def test_a_discarded_session_drops_what_was_queued_for_the_gateway_and_nothing_else(
    gateway_settings: Settings, site: str
) -> None:
    def clip(message_id: int) -> tuple[str, bytes]:
        samples = machine_sound(1.0, 16_000, machine=0, seed=7, clip=100_100 + message_id)
        return sensor_topic(site, "pump_id_00", "mic", "waveform"), encode_binary(
            samples, 16_000, PLANT_EPOCH, message_id
        )

    with SiteWatcher(site) as watcher:
        with running_gateway(gateway_settings):
            pass  # the broker now keeps the gateway's session and its subscription
        publish_raw([clip(1), clip(2)])  # queued for the gateway while it is away
        with running_gateway(gateway_settings) as gateway:
            wait_handled(gateway, watcher, 2)  # the session kept them
        publish_raw([clip(3), clip(4), clip(5)])
        discard_session(gateway_settings.gateway, gateway_settings.gateway.client_id)
        with running_gateway(gateway_settings) as gateway:
            publish_raw([clip(6)])  # published after the fresh start: handled
            wait_handled(gateway, watcher, 3)  # the count is the work directory's: 2 before, this one
            time.sleep(1.0)  # a queued message, were any left, would have arrived before the new one
            assert gateway.metrics.messages.labels("waveform", "scored")._value.get() == 1
    assert score_rows(gateway_settings) == (3, 3)


def test_with_the_score_store_down_it_keeps_scoring_and_says_it_is_degraded(
    gateway_settings: Settings, site: str
) -> None:
    settings = gateway_settings.model_copy(
        update={
            "serving": gateway_settings.serving.model_copy(
                update={"score_store_url": "postgresql+psycopg://postgres@127.0.0.1:9/vibrasense"}
            )
        }
    )
    samples = machine_sound(1.0, 16_000, machine=0, seed=7, clip=100_002)
    topic = sensor_topic(site, "pump_id_00", "mic", "waveform")
    with SiteWatcher(site) as watcher, running_gateway(settings) as gateway:
        publish_raw([(topic, encode_binary(samples, 16_000, PLANT_EPOCH, k)) for k in range(3)])
        watcher.wait(lambda: len(watcher.statuses.get("pump_id_00", [])) == 3, 30, "three statuses")
        health = gateway.health()
    assert health["status"] == "degraded" and any("score_store" in reason for reason in health["degraded"])
    assert watcher.statuses["pump_id_00"][-1]["gateway"]["status"] == "degraded"
    assert watcher.statuses["pump_id_00"][-1]["sensors"]["mic"]["score"] is not None
