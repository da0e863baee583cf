"""The MQTT gateway: sensor messages in, scores recorded, each machine's state published back retained.

Threads: paho's network thread receives messages onto a bounded queue (``gateway.queue_size``; with MQTT 5
the broker is told the same number as Receive Maximum, so it never sends more unacknowledged messages than
fit); one worker scores them through :class:`~vibrasense.serving.service.ScoringService` in arrival order;
others push features to the online store, watch the registry alias and answer ``/metrics``, ``/healthz``.

Nothing lost, nothing twice: messages are QoS 1 on a persistent session and acknowledged (``manual_ack``)
only once handled: scored and queued in the score store's durable spool, or published to the dead-letter
topic. A handled message's key (its ``score_id``, derived from site, machine, sensor, message id and
timestamp) goes to the :class:`~vibrasense.gateway.ledger.HandledLedger` first, so a redelivery is dropped;
a crash between scoring and that record is caught by the score store, which stores a ``score_id`` once.
When the score store cannot take a score (or no model is loaded) the message is not acknowledged: the
worker retries it, the queue fills and the broker holds the rest.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import paho.mqtt.client as mqtt
from pydantic import ValidationError

from vibrasense.config import Settings
from vibrasense.errors import InputError, ModelError, StoreError, redact
from vibrasense.gateway import topics
from vibrasense.gateway.codec import Waveform, decode_summary, decode_waveform
from vibrasense.gateway.connection import connect_options, new_client
from vibrasense.gateway.deadletter import dead_letter, message_key
from vibrasense.gateway.ledger import LEDGER_FILE, HandledLedger
from vibrasense.gateway.monitor import GatewayMetrics, HealthServer
from vibrasense.gateway.online_push import OnlinePusher, Snapshot
from vibrasense.serving.schemas import ScoreRequest
from vibrasense.serving.service import ScoringService

log = logging.getLogger(__name__)

SCORE_ID_NAMESPACE = uuid.UUID("5b0c3c57-2f0e-4b43-9a52-8d6f3e0c9a11")
RETRY_FIRST_S = 0.5
RETRY_MAX_S = 10.0
PUBLISH_TIMEOUT_S = 10.0


def score_id(site: str, machine_id: str, sensor: str, message: str) -> str:
    """The score id of a message: the same for every delivery of it, different for every other message."""
    return uuid.uuid5(SCORE_ID_NAMESPACE, f"{site}/{machine_id}/{sensor}/{message}").hex


def message_name(message_id: str | None, timestamp: datetime) -> str:
    """What names a message among its sensor's: its id and timestamp (a sensor that restarts its counter sends
    new timestamps), or its timestamp alone."""
    return f"{message_id}@{timestamp.isoformat()}" if message_id is not None else timestamp.isoformat()


@dataclass(frozen=True)
class _Received:
    message: mqtt.MQTTMessage
    arrived: float
    connection: int


class Gateway:
    """Subscribes, scores, publishes statuses; :meth:`start` then :meth:`stop` (the service is the caller's)."""

    def __init__(self, settings: Settings, service: ScoringService) -> None:
        self.settings = settings
        self.config = settings.gateway
        self.service = service
        self.metrics = GatewayMetrics(service.metrics.registry)
        self.ledger = HandledLedger(settings.workdir / LEDGER_FILE)
        self.pusher = OnlinePusher(settings, on_push=self._count_push)
        self.health_server: HealthServer | None = None
        self.connected = False
        self.problem: str | None = None
        self._connection = 0
        self._queue: queue.Queue[_Received] = queue.Queue(maxsize=self.config.queue_size)
        self._stop = threading.Event()
        self._client = new_client(self.config, self.config.client_id, persistent=True, manual_ack=True)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._threads = [
            threading.Thread(target=self._work, name="gateway-worker", daemon=True),
            threading.Thread(target=self._watch_registry, name="gateway-registry", daemon=True),
        ]

    # -- life cycle ------------------------------------------------------------------------------------

    def start(self) -> Gateway:
        """Connect (in the background, reconnecting for ever), and start the worker and the helpers."""
        if self.config.metrics_port:
            self.health_server = HealthServer(
                self.config.metrics_host, self.config.metrics_port, self.service.metrics.registry, self.health
            ).start()
        self.pusher.start()
        for thread in self._threads:
            thread.start()
        options = connect_options(self.config, persistent=True, receive_maximum=self.config.queue_size)
        self._client.connect_async(**options)
        self._client.loop_start()
        return self

    def stop(self) -> None:
        """Stop taking messages, finish the one in hand, disconnect (the broker keeps the session), stop helpers."""
        self._stop.set()
        for thread in self._threads:
            thread.join(30)
        self._client.disconnect()
        self._client.loop_stop()
        self.pusher.stop()
        if self.health_server is not None:
            self.health_server.stop()
        self.ledger.close()

    def _count_push(self, outcome: str, rows: int) -> None:
        self.metrics.online_pushes.labels(outcome).inc(rows)

    def wait_connected(self, timeout_s: float = 10.0) -> bool:
        """Wait until subscribed at the broker; whether it happened in time."""
        deadline = time.monotonic() + timeout_s
        while not self.connected and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.connected

    def health(self) -> dict[str, Any]:
        """``status`` (ok, degraded, down) and why: the broker, the score store, the online store, the model."""
        scorer = self.service.slot.scorer
        stores = {"score_store": self.service.store.status(), "online_store": self.pusher.status}
        degraded = [
            f"{name} {status}" for name, status in stores.items() if not status.startswith(("ok", "unknown", "off"))
        ]
        if self.problem:
            degraded.append(self.problem)
        status = "down" if not self.connected else "degraded" if degraded else "ok"
        return {
            "status": status,
            "broker": f"{'' if self.connected else 'not '}connected to {self.config.host}:{self.config.port}",
            **stores,
            "model": None if scorer is None else {"name": scorer.name, "version": str(scorer.version)},
            "queued": self._queue.qsize(),
            "handled": len(self.ledger),
            "degraded": degraded,
        }

    # -- MQTT callbacks (paho's network thread) --------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            log.warning("MQTT broker %s:%d refused the gateway: %s", self.config.host, self.config.port, reason)
            return
        self._connection += 1
        client.subscribe([(topic, 1) for topic in topics.subscriptions(self.config.site)])
        self.connected = True
        self.metrics.connected.set(1)
        log.info(
            "connected to MQTT %s:%d as %s (session %s), subscribed to %s",
            self.config.host,
            self.config.port,
            self.config.client_id,
            "resumed" if flags.session_present else "new",
            ", ".join(topics.subscriptions(self.config.site)),
        )

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self._connection += 1  # messages of the old connection are not acknowledged: the broker sends them again
        self.connected = False
        self.metrics.connected.set(0)
        if not self._stop.is_set():
            log.warning("disconnected from MQTT %s:%d (%s); reconnecting", self.config.host, self.config.port, reason)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        # blocks only when the queue is full, which Receive Maximum prevents with MQTT 5: back-pressure either way
        self._queue.put(_Received(message, time.monotonic(), self._connection))
        self.metrics.queue_depth.set(self._queue.qsize())

    # -- the worker ------------------------------------------------------------------------------------

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                received = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            self.metrics.queue_depth.set(self._queue.qsize())
            delay = RETRY_FIRST_S
            while not self._stop.is_set():
                try:
                    kind, outcome = self._handle(received.message)
                except (StoreError, ModelError) as error:  # transient: retry, unacknowledged, holding the queue
                    self._degrade(f"cannot score: {redact(error)}", delay)
                    self._stop.wait(delay)
                    delay = min(delay * 2, RETRY_MAX_S)
                    continue
                self.problem = None
                self.metrics.messages.labels(kind, outcome).inc()
                if received.connection == self._connection:
                    self._client.ack(received.message.mid, received.message.qos)
                self.metrics.handling.observe(time.monotonic() - received.arrived)
                break

    def _degrade(self, problem: str, delay: float) -> None:
        if problem != self.problem:
            log.warning("gateway degraded: %s; retrying the message every %.1f s or more", problem, delay)
        self.problem = problem

    def _handle(self, message: mqtt.MQTTMessage) -> tuple[str, str]:
        """Handle one message; returns its kind and outcome (scored, duplicate, dead_letter)."""
        payload = bytes(message.payload)
        kind = message.topic.rsplit("/", 1)[-1] if message.topic.endswith(topics.KINDS) else "unknown"
        try:
            topic = topics.parse(message.topic)
            if topic.kind == "waveform":
                return kind, self._waveform(topic, payload)
            return kind, self._summary(topic, payload)
        except InputError as error:
            return kind, self._dead_letter(message.topic, payload, error)

    def _waveform(self, topic: topics.SensorTopic, payload: bytes) -> str:
        waveform = decode_waveform(payload, self.settings.serving.max_samples)
        key = score_id(
            topic.site, topic.machine_id, topic.sensor, message_name(waveform.message_id, waveform.timestamp)
        )
        if self.ledger.seen(key):
            return "duplicate"
        request = self._request(topic, waveform)
        try:
            response = self.service.score(request, score_id=key, scored_at=waveform.timestamp)
        except InputError as error:
            source = waveform.field if error.source in ("pcm_base64", "samples") else error.source
            raise InputError(source, error.reason) from None
        self.pusher.add(topic.machine_id, Snapshot(waveform.frames()[:, 0], waveform.sample_rate, waveform.timestamp))
        self._publish_status(topic.site, topic.machine_id)
        self.ledger.mark(key)
        log.debug("scored %s: %s", topic, response.score)
        return "scored"

    def _summary(self, topic: topics.SensorTopic, payload: bytes) -> str:
        summary = decode_summary(payload)
        key = score_id(
            topic.site, topic.machine_id, topic.sensor, "summary/" + message_name(summary.message_id, summary.timestamp)
        )
        if self.ledger.seen(key):
            return "duplicate"
        self.service.observe_summary(topic.machine_id, topic.sensor, summary.values, summary.timestamp)
        self._publish_status(topic.site, topic.machine_id)
        self.ledger.mark(key)
        return "scored"

    def _request(self, topic: topics.SensorTopic, waveform: Waveform) -> ScoreRequest:
        body = {
            "sample_rate": waveform.sample_rate,
            "pcm_base64": waveform.pcm_base64(),
            "dtype": waveform.dtype,
            "channels": waveform.channels,
            "machine_id": topic.machine_id,
            "sensor": topic.sensor,
        }
        try:
            return ScoreRequest.model_validate(body, context=self.service.validation_context)
        except ValidationError as error:
            first = error.errors()[0]
            field = str(first["loc"][0]) if first["loc"] else "payload"
            raise InputError(waveform.field if field == "pcm_base64" else field, first["msg"]) from None

    def _publish_status(self, site: str, machine_id: str) -> None:
        status = self.service.machine_status(machine_id)
        body = status.model_dump(mode="json")
        health = self.health()
        body["gateway"] = {"status": health["status"], "degraded": health["degraded"]}
        self._client.publish(topics.status_topic(site, machine_id), json.dumps(body), qos=1, retain=True)

    def _dead_letter(self, topic: str, payload: bytes, error: InputError) -> str:
        key = message_key(topic, payload)
        if self.ledger.seen(key):
            return "duplicate"
        site = topics.site_of(topic)
        info = self._client.publish(
            topics.dead_letter_topic(site), dead_letter(topic, payload, str(error.source), error.reason), qos=1
        )
        info.wait_for_publish(PUBLISH_TIMEOUT_S)  # acknowledged only once the dead letter is at the broker
        self.ledger.mark(key)
        self.metrics.dead_letters.labels(str(error.source)).inc()
        log.warning("dead letter from %s: %s: %s", topic, error.source, error.reason)
        return "dead_letter"

    # -- the registry ----------------------------------------------------------------------------------

    def _watch_registry(self) -> None:
        """Reload the champion when the alias moves to another version (every ``gateway.registry_poll_s``)."""
        if not self.config.registry_poll_s or self.settings.serving.model_version is not None:
            return
        client = None
        while not self._stop.wait(self.config.registry_poll_s):
            try:
                from vibrasense.registry import resolve_version, tracking_client

                client = client or tracking_client(self.settings)
                target = resolve_version(client, self.settings, self.settings.serving.model_alias).version
            except Exception as error:  # a registry down or without the alias: keep the model in use
                log.debug("registry check failed: %s", redact(error))
                continue
            current = self.service.slot.scorer
            if current is not None and str(current.version) == str(target):
                continue
            try:
                result = self.service.reload()
            except (ModelError, StoreError) as error:
                self.metrics.model_reloads.labels("failed").inc()
                log.warning("champion moved to version %s but cannot be loaded: %s", target, error)
                continue
            self.metrics.model_reloads.labels("ok").inc()
            log.info(
                "champion moved: now scoring with %s v%s (was %s)",
                result.model.name,
                result.model.version,
                result.previous.version if result.previous else "none",
            )
