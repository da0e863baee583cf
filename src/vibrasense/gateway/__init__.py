"""The live plant over MQTT: the gateway that scores sensor messages, and a simulator that sends them.

Topic tree and message formats: :mod:`vibrasense.gateway.topics` and :mod:`vibrasense.gateway.codec`.
"""

from vibrasense.gateway.broker import EmbeddedBroker, use_embedded
from vibrasense.gateway.connection import broker_reachable, discard_session
from vibrasense.gateway.plant import Gateway, score_id
from vibrasense.gateway.simulator import AnomalySpan, Plant, Scenario, publish

__all__ = [
    "AnomalySpan",
    "EmbeddedBroker",
    "Gateway",
    "Plant",
    "Scenario",
    "broker_reachable",
    "discard_session",
    "publish",
    "score_id",
    "use_embedded",
]
