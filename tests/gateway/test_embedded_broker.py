"""The embedded broker (amqtt) of the demo: `vibrasense simulate --mqtt` to the gateway, and a persistent session
that keeps what was published while the gateway was away. No server needed."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from vibrasense.config import Settings
from vibrasense.gateway import EmbeddedBroker, Gateway, Plant, Scenario, publish, use_embedded
from vibrasense.gateway.watch import StatusWatcher
from vibrasense.serving.model import load_registered_scorer
from vibrasense.serving.service import ScoringService
from vibrasense.signals.synthetic import PLANT_EPOCH

pytestmark = pytest.mark.slow


@pytest.fixture
def embedded(gateway_settings: Settings) -> Iterator[Settings]:
    """An embedded broker on a free port, and the settings that talk to it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    broker = EmbeddedBroker("127.0.0.1", port).start()
    try:
        gateway = use_embedded(gateway_settings.gateway.model_copy(update={"port": port}))
        yield gateway_settings.model_copy(update={"gateway": gateway})
    finally:
        broker.stop()


def handled(gateway: Gateway, count: int, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while gateway.health()["handled"] < count:
        assert time.monotonic() < deadline, f"{gateway.health()['handled']} of {count} messages handled"
        time.sleep(0.1)


def test_simulate_cli_feeds_the_gateway_and_the_session_outlives_a_gateway_stop(embedded: Settings, site: str) -> None:
    service = ScoringService(embedded, load_registered_scorer(embedded)).start()
    try:
        gateway = Gateway(embedded, service).start()
        assert gateway.wait_connected(15)
        with StatusWatcher(embedded.gateway, site) as watcher:
            env = os.environ | {"VIBRASENSE_GATEWAY__PORT": str(embedded.gateway.port)}
            command = [sys.executable, "-m", "vibrasense", "simulate", "--mqtt", "--embedded-broker", "--site", site]
            options = ["--machines", "2", "--duration", "5", "--speed", "0", "--off", "pump_id_01@0"]
            result = subprocess.run([*command, *options], env=env, capture_output=True, text=True, timeout=300)
            assert result.returncode == 0, result.stdout + result.stderr
            assert "published 10 messages" in result.stdout
            handled(gateway, 10)
            time.sleep(0.5)
        assert watcher.states("pump_id_01") == ["not_running"]
        assert watcher.states("pump_id_00")[0] == "ok"
        gateway.stop()
    finally:
        service.close()

    # published while no gateway is connected: the broker keeps them for the gateway's session
    scenario = Scenario(site=site, machine_type="fan", sound_machines=1, duration_s=4)
    assert publish(embedded.gateway, Plant(scenario, start=PLANT_EPOCH), speed=0).messages == 4
    service = ScoringService(embedded, load_registered_scorer(embedded)).start()
    try:
        gateway = Gateway(embedded, service).start()
        handled(gateway, 10 + 4)
        assert gateway.metrics.messages.labels("waveform", "scored")._value.get() == 4
        assert gateway.metrics.messages.labels("waveform", "duplicate")._value.get() == 0
        gateway.stop()
    finally:
        service.close()
