"""A synthetic plant publishing over MQTT, in real time or faster: what a plant's sensors would send.

Machines (from :mod:`vibrasense.signals.synthetic`):

- sound machines ``<type>_id_NN`` (sensor ``mic``, named as the DCASE layout names the demo's training
  machines): :func:`machine_sound`, normal clips, one anomaly from a chosen time on (``pump_id_01=bearing@60``:
  a bearing defect from 60 s), or switched off (near-silence, which the machine-off gate must recognise);
- bearings ``bearing-NN`` (sensor ``accel``): :func:`bearing_vibration` with an outer-race defect whose
  severity follows :func:`run_to_failure_severity` over the simulation, and a smart sensor (``smart``)
  beside it sending the vibration velocity it would measure;
- summary-only machines ``smart-NN`` (sensor ``smart``): steady scalars, no waveform.

Every sensor sends one snapshot every ``interval_s`` of simulated time; ``speed`` is simulated seconds per
real second (0: as fast as the broker takes them). Messages are QoS 1; each carries a message id that
counts per sensor, so a re-run with the same scenario publishes the same messages.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal, NamedTuple

import numpy as np

from vibrasense.config import GatewaySettings
from vibrasense.errors import ConfigError, VibrasenseError
from vibrasense.gateway.codec import PcmDtype, encode_binary, encode_json, encode_summary
from vibrasense.gateway.connection import connect_options, new_client
from vibrasense.gateway.topics import sensor_topic
from vibrasense.signals.synthetic import ANOMALIES, Anomaly, bearing_vibration, machine_sound, run_to_failure_severity

log = logging.getLogger(__name__)

SOUND_RATE = 16_000
BEARING_RATE = 25_600
OFF_LEVEL = 1e-4
"""Amplitude of a switched-off machine's signal: the sensor's own noise."""
CLIP_OFFSET = 100_000
"""Clip numbers of simulated snapshots start here: other clips than those a demo plant trains on."""
MAX_UNACKNOWLEDGED = 100
"""Messages published and not yet acknowledged by the broker, at most: the publisher waits beyond."""
_ANOMALY_SPEC = re.compile(
    r"^(?P<machine>[A-Za-z0-9][A-Za-z0-9._:\-]*)=(?P<anomaly>[a-z]+)"
    r"@(?P<start>\d+(?:\.\d*)?)(?:-(?P<end>\d+(?:\.\d*)?))?$"
)
_OFF_SPEC = re.compile(
    r"^(?P<machine>[A-Za-z0-9][A-Za-z0-9._:\-]*)@(?P<start>\d+(?:\.\d*)?)(?:-(?P<end>\d+(?:\.\d*)?))?$"
)


class AnomalySpan(NamedTuple):
    """An anomaly of a sound machine from ``start_s`` until it is repaired at ``end_s`` (simulated seconds)."""

    anomaly: Anomaly
    start_s: float
    end_s: float = float("inf")


@dataclass(frozen=True)
class Scenario:
    """What the plant does over ``duration_s`` of simulated time."""

    site: str = "plant-1"
    machine_type: str = "pump"
    sound_machines: int = 3
    bearings: int = 0
    summary_only: int = 0
    interval_s: float = 1.0
    snapshot_s: float = 1.0
    duration_s: float = 60.0
    anomalies: dict[str, AnomalySpan] = field(default_factory=dict)
    """Sound machine id -> its anomaly, when it starts and when it is repaired."""
    off: dict[str, tuple[float, float]] = field(default_factory=dict)
    """Sound machine id -> (simulated second it stops, second it starts again)."""
    severity: float = 2.0
    """Severity an anomaly grows to (1 is subtle, 2 clear), linearly over ``ramp_s`` from its start."""
    ramp_s: float = 20.0
    encoding: Literal["binary", "json"] = "binary"
    dtype: PcmDtype = "int16"
    seed: int = 7

    def sound_ids(self) -> list[str]:
        """The sound machines' ids."""
        return [f"{self.machine_type}_id_{k:02d}" for k in range(self.sound_machines)]

    @property
    def snapshots_per_sensor(self) -> int:
        """How many snapshots each sensor sends."""
        return max(1, int(self.duration_s / self.interval_s))

    def messages(self) -> int:
        """How many messages the whole scenario publishes."""
        sensors = self.sound_machines + 2 * self.bearings + self.summary_only
        return sensors * self.snapshots_per_sensor

    def check(self) -> Scenario:
        """Raise :class:`ConfigError` naming an anomaly or switch-off of an unknown machine."""
        known = set(self.sound_ids())
        for option, machines in (("--anomalous", self.anomalies), ("--off", self.off)):
            unknown = sorted(set(machines) - known)
            if unknown:
                raise ConfigError(f"{option}: {unknown[0]} is not a sound machine of this plant ({sorted(known)})")
        return self


def parse_anomaly(text: str) -> tuple[str, AnomalySpan]:
    """``pump_id_01=bearing@60-120`` as ``("pump_id_01", AnomalySpan("bearing", 60.0, 120.0))``; without an end
    the anomaly stays."""
    match = _ANOMALY_SPEC.match(text.strip())
    if not match or match["anomaly"] not in ANOMALIES:
        raise ConfigError(
            f"--anomalous {text!r}: write MACHINE=ANOMALY@SECONDS or MACHINE=ANOMALY@FROM-TO (simulated seconds), "
            f"ANOMALY one of {', '.join(ANOMALIES)}"
        )
    start, end = float(match["start"]), float(match["end"]) if match["end"] else float("inf")
    if end <= start:
        raise ConfigError(f"--anomalous {text!r}: the repair ({end:g} s) must come after the start ({start:g} s)")
    return match["machine"], AnomalySpan(match["anomaly"], start, end)  # type: ignore[arg-type]


def parse_off(text: str) -> tuple[str, tuple[float, float]]:
    """``pump_id_02@20-40`` as ``("pump_id_02", (20.0, 40.0))``; without an end the machine stays off."""
    match = _OFF_SPEC.match(text.strip())
    if not match:
        raise ConfigError(f"--off {text!r}: write MACHINE@SECONDS or MACHINE@FROM-TO (simulated seconds)")
    return match["machine"], (float(match["start"]), float(match["end"]) if match["end"] else float("inf"))


@dataclass(frozen=True)
class Message:
    """One message to publish, at a simulated second."""

    topic: str
    payload: bytes
    at_s: float


class Plant:
    """The scenario's messages in time order, stamped from ``start`` (default: now)."""

    def __init__(self, scenario: Scenario, start: datetime | None = None) -> None:
        self.scenario = scenario.check()
        self.start = start or datetime.now(UTC)
        self._severity = {
            k: run_to_failure_severity(scenario.snapshots_per_sensor, seed=scenario.seed + k)
            for k in range(scenario.bearings)
        }

    def messages(self) -> Iterator[Message]:
        """Every message, snapshot by snapshot, each snapshot's sensors in a fixed order."""
        plan = self.scenario
        for index in range(plan.snapshots_per_sensor):
            at_s = index * plan.interval_s
            stamp = self.start + timedelta(seconds=at_s)
            for machine, machine_id in enumerate(plan.sound_ids()):
                yield self._sound(machine, machine_id, index, at_s, stamp)
            for bearing in range(plan.bearings):
                yield from self._bearing(bearing, index, at_s, stamp)
            for smart in range(plan.summary_only):
                values = self._summary_values(1.2, 0.4, 38.0, np.random.default_rng([plan.seed, smart, index]))
                topic = sensor_topic(plan.site, f"smart-{smart:02d}", "smart", "summary")
                yield Message(topic, encode_summary(values, stamp, index), at_s)

    def _sound(self, machine: int, machine_id: str, index: int, at_s: float, stamp: datetime) -> Message:
        plan = self.scenario
        span = plan.anomalies.get(machine_id)
        active = span is not None and span.start_s <= at_s < span.end_s
        grown = 1.0
        if active and plan.ramp_s > 0:
            grown = min(1.0, (at_s - span.start_s + plan.interval_s) / plan.ramp_s)
        samples = machine_sound(
            plan.snapshot_s,
            SOUND_RATE,
            machine,
            span.anomaly if active else None,
            plan.seed,
            clip=CLIP_OFFSET + index,
            severity=plan.severity * grown,
        )
        off_from, off_to = plan.off.get(machine_id, (float("inf"), float("inf")))
        if off_from <= at_s < off_to:
            samples = OFF_LEVEL * np.random.default_rng([plan.seed, machine, index]).standard_normal(samples.size)
        return Message(
            sensor_topic(plan.site, machine_id, "mic", "waveform"),
            self._waveform(samples, SOUND_RATE, stamp, index),
            at_s,
        )

    def _bearing(self, bearing: int, index: int, at_s: float, stamp: datetime) -> Iterator[Message]:
        plan = self.scenario
        severity = float(self._severity[bearing][index])
        samples = bearing_vibration(
            plan.snapshot_s,
            BEARING_RATE,
            defect="outer_race" if severity > 0 else None,
            severity=severity,
            seed=plan.seed * 1000 + index,
        )
        machine_id = f"bearing-{bearing:02d}"
        waveform = self._waveform(samples, BEARING_RATE, stamp, index)
        yield Message(sensor_topic(plan.site, machine_id, "accel", "waveform"), waveform, at_s)
        rng = np.random.default_rng([plan.seed, 100 + bearing, index])
        values = self._summary_values(1.5 + 3.0 * severity, 0.5 + 2.0 * severity, 40.0 + 8.0 * severity, rng)
        yield Message(
            sensor_topic(plan.site, machine_id, "smart", "summary"), encode_summary(values, stamp, index), at_s
        )

    @staticmethod
    def _summary_values(velocity: float, peak: float, temperature: float, rng: np.random.Generator) -> dict[str, float]:
        return {
            "velocity_rms_mm_s": round(velocity * (1 + 0.03 * rng.standard_normal()), 3),
            "peak_acceleration_g": round(peak * (1 + 0.05 * rng.standard_normal()), 3),
            "temperature_c": round(temperature + 0.3 * rng.standard_normal(), 2),
        }

    def _waveform(self, samples: np.ndarray, rate: int, stamp: datetime, index: int) -> bytes:
        plan = self.scenario
        if plan.encoding == "binary":
            return encode_binary(samples, rate, stamp, index, plan.dtype)
        return encode_json(samples, rate, stamp, index)


@dataclass
class Published:
    """What a simulation published."""

    messages: int = 0
    seconds: float = 0.0
    by_topic: dict[str, int] = field(default_factory=dict)


def publish(
    settings: GatewaySettings,
    plant: Plant,
    speed: float = 1.0,
    client_id: str | None = None,
    on_published: Callable[[int], None] | None = None,
) -> Published:
    """Publish the plant's messages (QoS 1) paced at ``speed`` simulated seconds per second; wait for every PUBACK.

    ``on_published`` is called with the count of messages published so far after each one (it may wait).
    """
    client = new_client(settings, client_id or f"vibrasense-sim-{plant.scenario.site}"[:23], persistent=False)
    try:
        client.connect(**connect_options(settings, persistent=False))
    except OSError as error:
        raise VibrasenseError(
            f"cannot reach the MQTT broker at {settings.host}:{settings.port} ({error}); start one (mosquitto -d) "
            "or pass --embedded-broker"
        ) from None
    client.loop_start()
    result = Published()
    started = time.monotonic()
    pending = []
    try:
        for message in plant.messages():
            if speed > 0:
                delay = started + message.at_s / speed - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            pending.append(client.publish(message.topic, message.payload, qos=1))
            result.messages += 1
            result.by_topic[message.topic] = result.by_topic.get(message.topic, 0) + 1
            if len(pending) >= MAX_UNACKNOWLEDGED:
                pending[0].wait_for_publish(30)
            pending = [info for info in pending if not info.is_published()]
            if on_published is not None:
                on_published(result.messages)
        for info in pending:
            info.wait_for_publish(30)
    finally:
        client.disconnect()
        client.loop_stop()
    result.seconds = time.monotonic() - started
    return result
