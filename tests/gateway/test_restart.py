"""``vibrasense gateway`` as a real process, killed (SIGKILL) mid-stream, started again: nothing lost, nothing twice."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from vibrasense.config import Settings
from vibrasense.gateway import Plant, Scenario, publish
from vibrasense.gateway.ledger import LEDGER_FILE
from vibrasense.signals.synthetic import PLANT_EPOCH

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_gateway(settings: Settings, champion_workdir: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    """``vibrasense gateway`` with the test's settings from the environment; returns once it is connected."""
    env = os.environ | {
        "VIBRASENSE_TRACKING__TRACKING_URI": f"sqlite:///{champion_workdir / 'mlflow.db'}",
        "VIBRASENSE_SERVING__SCORE_STORE_URL": settings.score_store_url,
        "VIBRASENSE_GATEWAY__CLIENT_ID": settings.gateway.client_id,
        "VIBRASENSE_GATEWAY__SITE": settings.gateway.site,
        "VIBRASENSE_GATEWAY__REGISTRY_POLL_S": "0",
    }
    command = [sys.executable, "-m", "vibrasense", "--workdir", str(settings.workdir), "gateway", "--metrics-port"]
    process = subprocess.Popen([*command, str(port)], env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while True:
        assert process.poll() is None, f"the gateway exited with {process.returncode}: {log.read_text()[-3000:]}"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"the gateway was not connected within 120 s: {log.read_text()[-3000:]}"
        time.sleep(0.2)


def rows(settings: Settings) -> tuple[int, int]:
    path = Path(settings.score_store_url.removeprefix("sqlite:///"))
    if not path.exists():
        return 0, 0
    with sqlite3.connect(path) as db:
        try:
            return db.execute("SELECT COUNT(*), COUNT(DISTINCT score_id) FROM scores").fetchone()
        except sqlite3.OperationalError:  # the table is not created yet
            return 0, 0


def test_a_gateway_killed_and_restarted_mid_stream_loses_no_message_and_scores_none_twice(
    gateway_settings: Settings, champion_workdir: Path, site: str, tmp_path: Path
) -> None:
    scenario = Scenario(site=site, sound_machines=3, duration_s=40, interval_s=1.0)
    total = scenario.messages()
    port, log = free_port(), tmp_path / "gateway.log"
    first = start_gateway(gateway_settings, champion_workdir, port, log)
    published: list[int] = []
    publisher = threading.Thread(
        target=lambda: published.append(publish(gateway_settings.gateway, Plant(scenario, PLANT_EPOCH), 8).messages)
    )
    publisher.start()
    try:
        time.sleep(2.5)
        first.send_signal(signal.SIGKILL)  # no clean-up at all: the broker keeps the session's messages
        first.wait(10)
        with sqlite3.connect(gateway_settings.workdir / LEDGER_FILE) as ledger:
            handled_before_restart = ledger.execute("SELECT COUNT(*) FROM handled").fetchone()[0]
        second = start_gateway(gateway_settings, champion_workdir, port, log)
        try:
            publisher.join(120)
            assert published == [total]
            deadline = time.monotonic() + 180
            while rows(gateway_settings)[0] < total and time.monotonic() < deadline:
                time.sleep(0.5)
            time.sleep(2)  # were anything scored twice, it would arrive now
            assert rows(gateway_settings) == (total, total), log.read_text()[-3000:]
            assert 0 < handled_before_restart < total  # the kill was mid-stream
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(60) == 0, log.read_text()[-3000:]
    finally:
        if first.poll() is None:
            first.kill()
