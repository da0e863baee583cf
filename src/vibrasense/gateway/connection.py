"""MQTT clients configured from ``gateway.*``: protocol, persistent session, TLS and credentials.

The gateway's client keeps its session at the broker: a fixed client id with ``clean_start=False`` and a
session expiry (MQTT 5), or ``clean_session=False`` (MQTT 3.1.1), so QoS 1 messages published while it is
away wait for it, and messages it received but never acknowledged are delivered again.
"""

from __future__ import annotations

import socket
import ssl
import threading

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from vibrasense.config import GatewaySettings
from vibrasense.errors import ConfigError

EMBEDDED_USER = "vibrasense"
"""The user name sent to the embedded broker, whose sessions are only kept for named (not anonymous) clients."""


def new_client(settings: GatewaySettings, client_id: str, *, persistent: bool, manual_ack: bool = False) -> mqtt.Client:
    """A paho client (callback API 2) with the configured protocol, TLS and credentials; not yet connected."""
    v5 = settings.protocol == "5"
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        clean_session=None if v5 else not persistent,
        manual_ack=manual_ack,
    )
    if settings.tls or settings.ca_file is not None:
        try:
            client.tls_set(
                ca_certs=str(settings.ca_file) if settings.ca_file else None,
                certfile=str(settings.cert_file) if settings.cert_file else None,
                keyfile=str(settings.key_file) if settings.key_file else None,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        except (OSError, ssl.SSLError) as error:
            raise ConfigError(f"gateway.ca_file, cert_file or key_file cannot be used for TLS: {error}") from None
    password = settings.password.get_secret_value() if settings.password is not None else None
    if settings.user is not None:
        client.username_pw_set(settings.user, password)
    client.reconnect_delay_set(min_delay=1, max_delay=10)
    return client


def connect_options(settings: GatewaySettings, *, persistent: bool, receive_maximum: int | None = None) -> dict:
    """Keyword arguments of ``connect``/``connect_async``: MQTT 5 session expiry and Receive Maximum."""
    options: dict = {"host": settings.host, "port": settings.port, "keepalive": settings.keepalive_s}
    if settings.protocol == "5":
        properties = Properties(PacketTypes.CONNECT)
        if persistent:
            properties.SessionExpiryInterval = settings.session_expiry_s
        if receive_maximum is not None:
            properties.ReceiveMaximum = receive_maximum
        options |= {"clean_start": not persistent, "properties": properties}
    return options


def discard_session(settings: GatewaySettings, client_id: str, timeout_s: float = 10.0) -> None:
    """Drop the broker's session of ``client_id``: its subscriptions and the messages queued for it.

    For a run that must start afresh (the demo's plant): connecting once with a clean start and no session
    expiry ends the session the broker kept from an earlier run.
    """
    client = new_client(settings, client_id, persistent=False)
    accepted = threading.Event()
    client.on_connect = lambda *_: accepted.set()
    try:
        client.connect(**connect_options(settings, persistent=False))
    except OSError as error:
        raise ConfigError(
            f"gateway: cannot reach the MQTT broker at {settings.host}:{settings.port}: {error}"
        ) from None
    client.loop_start()
    try:
        if not accepted.wait(timeout_s):
            raise ConfigError(f"gateway: the MQTT broker at {settings.host}:{settings.port} did not accept {client_id}")
    finally:
        client.disconnect()
        client.loop_stop()


def broker_reachable(host: str, port: int, timeout_s: float = 1.0) -> bool:
    """Whether something accepts TCP connections at ``host:port``."""
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError:
        return False
    return True
