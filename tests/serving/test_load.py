"""The service under a bounded mixed load on 127.0.0.1: every request answered, every answered score stored once,
memory flat; and an idle connection outlives the clients' reuse of it.

The load runs against ``vibrasense serve``'s server (:mod:`vibrasense.serving.server`) in a process of its own,
so its resident memory is its own; the audit found transport errors (a request sent on a kept-alive
connection just as the server closed it: uvicorn's 5 s idle timeout is httpx's 5 s reuse window).
"""

from __future__ import annotations

import socket
import sqlite3
import time
from pathlib import Path

import psutil
import pytest
from mixed_load import mixed_load
from service_process import service_process
from synthetic_machines import BandEnergyScorer

from vibrasense.config import Settings
from vibrasense.serving.app import create_app
from vibrasense.serving.server import free_port, serve_in_thread, uvicorn_config
from vibrasense.serving.service import SCORE_SPOOL_FILE

WARM_UP = 320
REQUESTS = 2000
CONCURRENCY = 32
HTTPX_KEEPALIVE_EXPIRY_S = 5.0  # httpx's default: it reuses a connection idle up to this long
LOAD_BALANCER_IDLE_S = 60.0  # AWS ALB's default, nginx's upstream keep-alive: the server must outlast them


@pytest.mark.slow
def test_a_mixed_load_is_answered_and_every_answered_score_is_stored(tmp_path: Path) -> None:
    with service_process(tmp_path, free_port(), {"VIBRASENSE_SERVING__MAX_UPLOAD_MB": "2"}) as service:
        warm = mixed_load(service.base, WARM_UP, CONCURRENCY)  # thread pool, caches and label sets grown
        before = psutil.Process(service.pid).memory_info().rss
        started = time.perf_counter()
        load = mixed_load(service.base, REQUESTS, CONCURRENCY)
        seconds = time.perf_counter() - started
        after = psutil.Process(service.pid).memory_info().rss
    # uvicorn shuts down gracefully on SIGTERM, then exits by the signal it caught
    assert service.process.returncode in (0, -15), (tmp_path / "service.log").read_text()[-2000:]
    database = sqlite3.connect(tmp_path / "scores.db")
    stored = [score_id for (score_id,) in database.execute("SELECT score_id FROM scores")]
    database.close()
    spool = sqlite3.connect(tmp_path / SCORE_SPOOL_FILE)
    (spooled,) = spool.execute("SELECT count(*) FROM spool").fetchone()
    spool.close()
    answered = warm.score_ids + load.score_ids
    print(
        f"\nload: {load.answered} of {REQUESTS} requests answered in {seconds:.1f} s at concurrency {CONCURRENCY}, "
        f"{len(load.transport_errors)} transport errors; scores answered {len(answered)}, stored {len(stored)}, "
        f"still spooled {spooled}; resident memory {before / 2**20:.0f} MB before, {after / 2**20:.0f} MB after"
    )
    assert not warm.transport_errors and not load.transport_errors, load.transport_errors
    assert load.answered == REQUESTS and not load.unexpected(), load.unexpected()
    assert len(stored) == len(set(stored)) == len(answered) and set(stored) == set(answered)
    assert spooled == 0
    assert after <= 1.10 * before, f"resident memory grew from {before / 2**20:.0f} to {after / 2**20:.0f} MB"


def test_an_idle_connection_outlives_the_clients_reuse_of_it(settings: Settings, scorer: BandEnergyScorer) -> None:
    assert uvicorn_config(create_app(settings, scorer), settings).timeout_keep_alive > LOAD_BALANCER_IDLE_S
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    with serve_in_thread(create_app(settings, scorer), settings) as base:
        port = int(base.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
            connection.sendall(request)
            first = connection.recv(65536)
            time.sleep(HTTPX_KEEPALIVE_EXPIRY_S + 1)  # longer than httpx would wait before reusing it
            connection.sendall(request)
            second = connection.recv(65536)
    assert first.startswith(b"HTTP/1.1 200") and second.startswith(b"HTTP/1.1 200"), second
