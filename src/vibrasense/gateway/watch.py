"""A client's view of the machines' states: the retained status topics of a site, as transitions."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import datetime
from typing import Any

import paho.mqtt.client as mqtt

from vibrasense.config import GatewaySettings
from vibrasense.gateway.connection import connect_options, new_client
from vibrasense.gateway.topics import ROOT, STATUS

SUBSCRIBE_TIMEOUT_S = 10.0


class StatusWatcher:
    """Subscribes to ``vibrasense/<site>/+/status`` and keeps each machine's state transitions, with their times.

    Retained statuses (the states before it subscribed) are not transitions it saw, and are left out.
    """

    def __init__(self, settings: GatewaySettings, site: str) -> None:
        self.site = site
        self.transitions: dict[str, list[tuple[str, datetime]]] = {}
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._client = new_client(settings, f"vibrasense-watch-{uuid.uuid4().hex[:8]}", persistent=False)
        self._client.on_message = self._on_message
        self._client.on_subscribe = lambda *_: self._subscribed.set()
        self._options = connect_options(settings, persistent=False)

    def __enter__(self) -> StatusWatcher:
        self._client.connect(**self._options)
        self._client.loop_start()
        self._client.subscribe(f"{ROOT}/{self.site}/+/{STATUS}", qos=1)
        self._subscribed.wait(SUBSCRIBE_TIMEOUT_S)
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        if message.retain:  # a state from before this watcher: not a transition it saw
            return
        status = json.loads(message.payload)
        machine_id, state = status["machine_id"], status["state"]
        moment = max(
            (datetime.fromisoformat(s["scored_at"]) for s in status["sensors"].values() if s.get("scored_at")),
            default=datetime.fromisoformat(status["updated_at"]),
        )
        with self._lock:
            seen = self.transitions.setdefault(machine_id, [])
            if not seen or seen[-1][0] != state:
                seen.append((state, moment))

    def states(self, machine_id: str) -> list[str]:
        """The machine's states in the order seen, repeats collapsed."""
        with self._lock:
            return [state for state, _ in self.transitions.get(machine_id, [])]
