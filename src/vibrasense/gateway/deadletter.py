"""Dead letters: a message the gateway cannot use, published with the reason, never silently dropped."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime

SMALL_PAYLOAD_BYTES = 1024
"""A payload up to this size travels whole (base64) in its dead letter; a larger one by its size only."""


def dead_letter(topic: str, payload: bytes, field: str, reason: str) -> bytes:
    """The JSON of a dead letter: original topic, the field at fault and why, the payload or its size."""
    body = {
        "topic": topic,
        "field": field,
        "reason": f"{field}: {reason}",
        "payload_bytes": len(payload),
        "payload_base64": base64.b64encode(payload).decode("ascii") if len(payload) <= SMALL_PAYLOAD_BYTES else None,
        "at": datetime.now(UTC).isoformat(),
    }
    return json.dumps(body).encode()


def message_key(topic: str, payload: bytes) -> str:
    """A key for a message the gateway cannot read an id from: its topic and payload, hashed."""
    digest = hashlib.sha256(topic.encode() + b"\0" + payload).hexdigest()
    return f"dl-{digest[:32]}"
