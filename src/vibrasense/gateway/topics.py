"""The topic tree: ``vibrasense/<site>/<machine_id>/<sensor>/{waveform,summary}`` in, status and dead letters out.

- ``vibrasense/<site>/<machine_id>/<sensor>/waveform``: one snapshot of samples (:mod:`vibrasense.gateway.codec`).
- ``vibrasense/<site>/<machine_id>/<sensor>/summary``: a smart sensor's scalars.
- ``vibrasense/<site>/<machine_id>/status``: the machine's state, published retained by the gateway.
- ``vibrasense/<site>/dead-letter``: what the gateway could not use, and why.

Sites, machine ids and sensors follow the machine-id rule of the API (letters, digits, ``.``, ``_``, ``:``, ``-``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from vibrasense.errors import InputError
from vibrasense.serving.schemas import MACHINE_ID_PATTERN, MACHINE_ID_RULE

ROOT = "vibrasense"
DEAD_LETTER = "dead-letter"
STATUS = "status"
Kind = Literal["waveform", "summary"]
KINDS: tuple[Kind, ...] = ("waveform", "summary")
_NAME = re.compile(MACHINE_ID_PATTERN)


@dataclass(frozen=True)
class SensorTopic:
    """Where a sensor message came from."""

    site: str
    machine_id: str
    sensor: str
    kind: Kind

    def __str__(self) -> str:
        return f"{ROOT}/{self.site}/{self.machine_id}/{self.sensor}/{self.kind}"


def subscriptions(site: str = "+") -> list[str]:
    """The topic filters the gateway subscribes to: waveforms and summaries of ``site`` (``+``: every site)."""
    return [f"{ROOT}/{site}/+/+/{kind}" for kind in KINDS]


def parse(topic: str) -> SensorTopic:
    """The site, machine, sensor and kind of a sensor topic; :class:`InputError` naming the level at fault."""
    levels = topic.split("/")
    if len(levels) != 5 or levels[0] != ROOT or levels[4] not in KINDS:
        raise InputError("topic", f"{topic!r} is not {ROOT}/<site>/<machine_id>/<sensor>/{{waveform,summary}}")
    for name, value in zip(("site", "machine_id", "sensor"), levels[1:4], strict=True):
        if not _NAME.match(value):
            raise InputError(name, f"{value!r} is not a valid {name}: use {MACHINE_ID_RULE}")
    return SensorTopic(levels[1], levels[2], levels[3], levels[4])  # type: ignore[arg-type]


def site_of(topic: str) -> str:
    """The site level of any topic under the root, for the dead-letter topic (``unknown`` when there is none)."""
    levels = topic.split("/")
    return levels[1] if len(levels) > 1 and levels[0] == ROOT and _NAME.match(levels[1]) else "unknown"


def sensor_topic(site: str, machine_id: str, sensor: str, kind: Kind) -> str:
    """The topic a sensor publishes ``kind`` messages on."""
    return str(SensorTopic(site, machine_id, sensor, kind))


def status_topic(site: str, machine_id: str) -> str:
    """The retained status topic of a machine."""
    return f"{ROOT}/{site}/{machine_id}/{STATUS}"


def dead_letter_topic(site: str) -> str:
    """The dead-letter topic of a site."""
    return f"{ROOT}/{site}/{DEAD_LETTER}"
