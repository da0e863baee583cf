"""An embedded MQTT broker (amqtt, pure Python) for machines with no broker installed: the demo, a laptop.

What it does and does not do, as verified against paho (see the README): it speaks MQTT 3.1.1 only; QoS 1
messages published while a named client with a persistent session is away are kept and delivered when it
comes back (amqtt keeps none for anonymous clients, so the clients here always send a user name); but a
message delivered and not acknowledged within 5 s, or when the client drops, is not delivered again. So the
gateway's "nothing lost across a crash" holds with Mosquitto (or any full broker), not with this one, which
runs in memory and is meant for demos. :func:`use_embedded` says how clients must talk to it.
"""

from __future__ import annotations

import asyncio
import logging
import threading

from vibrasense.config import GatewaySettings
from vibrasense.errors import VibrasenseError
from vibrasense.gateway.connection import EMBEDDED_USER

START_TIMEOUT_S = 10.0


class EmbeddedBroker:
    """An amqtt broker on ``host:port`` in a thread of its own, with its own event loop."""

    def __init__(self, host: str = "127.0.0.1", port: int = 1883) -> None:
        self.host = host
        self.port = port
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._broker = None
        self._thread = threading.Thread(target=self._run, name="embedded-mqtt-broker", daemon=True)

    def start(self) -> EmbeddedBroker:
        """Start listening; raises :class:`VibrasenseError` when the port is taken or the broker fails."""
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self._thread.start()
        if not self._started.wait(START_TIMEOUT_S) or self._error is not None:
            raise VibrasenseError(f"the embedded MQTT broker cannot listen on {self.host}:{self.port}: {self._error}")
        return self

    def stop(self) -> None:
        """Shut the broker down and end its thread."""
        if self._broker is not None and self._loop.is_running():
            asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop).result(START_TIMEOUT_S)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(START_TIMEOUT_S)

    def _run(self) -> None:
        from amqtt.broker import Broker

        asyncio.set_event_loop(self._loop)
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            # a named client is not anonymous: only then does amqtt keep its session's messages while it is away
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": False}},
        }
        try:
            self._broker = Broker(config, loop=self._loop)
            self._loop.run_until_complete(self._broker.start())
        except BaseException as error:  # the port taken, most often: reported by start()
            self._error = error
            self._started.set()
            return
        self._started.set()
        self._loop.run_forever()


def use_embedded(settings: GatewaySettings) -> GatewaySettings:
    """The client settings for the embedded broker: MQTT 3.1.1, no TLS, a user name."""
    return settings.model_copy(
        update={"protocol": "3.1.1", "tls": False, "ca_file": None, "user": settings.user or EMBEDDED_USER}
    )
