"""A test's view of the broker: every status and dead letter of a site, as a client of the real broker sees them."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

BROKER = ("127.0.0.1", 1883)


class SiteWatcher:
    """Subscribes to ``vibrasense/<site>/+/status`` and ``vibrasense/<site>/dead-letter`` and records them."""

    def __init__(self, site: str) -> None:
        self.site = site
        self.statuses: dict[str, list[dict[str, Any]]] = {}
        self.dead_letters: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"watch-{uuid.uuid4().hex[:12]}")
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_: self._subscribed.set()

    def __enter__(self) -> SiteWatcher:
        self.client.connect(*BROKER)
        self.client.loop_start()
        self.client.subscribe([(f"vibrasense/{self.site}/+/status", 1), (f"vibrasense/{self.site}/dead-letter", 1)])
        assert self._subscribed.wait(10), "the watcher could not subscribe"
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        body = json.loads(message.payload)
        with self._lock:
            if message.topic.endswith("/dead-letter"):
                self.dead_letters.append(body)
            else:
                self.statuses.setdefault(message.topic.split("/")[2], []).append(body | {"_retain": message.retain})

    def states(self, machine_id: str) -> list[str]:
        """The machine's states in the order published, repeats collapsed: its transitions."""
        with self._lock:
            seen = [status["state"] for status in self.statuses.get(machine_id, [])]
        return [state for k, state in enumerate(seen) if k == 0 or seen[k - 1] != state]

    def wait(self, condition: Callable[[], bool], timeout_s: float = 60.0, what: str = "condition") -> None:
        """Wait until ``condition()`` holds; fail naming ``what`` when it does not in time."""
        deadline = time.monotonic() + timeout_s
        while not condition():
            assert time.monotonic() < deadline, f"timed out after {timeout_s:.0f} s waiting for {what}"
            time.sleep(0.1)


def publish_raw(messages: list[tuple[str, bytes]]) -> None:
    """Publish ``(topic, payload)`` pairs at QoS 1 and wait for each PUBACK."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"raw-{uuid.uuid4().hex[:12]}")
    client.connect(*BROKER)
    client.loop_start()
    try:
        for topic, payload in messages:
            client.publish(topic, payload, qos=1).wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()
