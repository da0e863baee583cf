"""The server against slow, idle and departing clients, over real sockets to 127.0.0.1 (serving.server).

Each test serves the app under uvicorn as ``vibrasense serve`` does, with limits of a second or so, and plays
the client byte by byte: a slowloris, a slow body, a flood of idle connections, an upload given up half-way.
"""

from __future__ import annotations

import logging
import select
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest
from synthetic_machines import RATE, BandEnergyScorer, healthy_clip, wav_bytes

from vibrasense.config import Settings
from vibrasense.inference import Verdict
from vibrasense.serving.app import create_app
from vibrasense.serving.server import serve_in_thread
from vibrasense.signals.records import SignalContext


@pytest.fixture
def strict(settings: Settings) -> Settings:
    """Limits short enough to see within a test."""
    for name, value in (
        ("header_timeout_s", 1.0),
        ("body_timeout_s", 1.0),
        ("keep_alive_s", 1.0),
        ("max_connections", 20),
        ("max_header_kb", 4),
    ):
        setattr(settings.serving, name, value)
    return settings


@contextmanager
def served(settings: Settings, scorer: BandEnergyScorer) -> Iterator[tuple[str, tuple[str, int]]]:
    with serve_in_thread(create_app(settings, scorer), settings, log_config=None) as base:
        parts = urlsplit(base)
        yield base, (parts.hostname or "127.0.0.1", parts.port or 80)


def answer_or_close(connection: socket.socket, trickle: bytes = b"", every_s: float = 0.2, limit_s: float = 6.0):
    """Send ``trickle`` a byte every ``every_s`` until the server answers or closes: ``(bytes read, seconds)``."""
    started = time.monotonic()
    position = 0
    while time.monotonic() - started < limit_s:
        readable, _, _ = select.select([connection], [], [], every_s)
        if readable:
            try:
                data = connection.recv(65536)
            except ConnectionResetError:
                data = b""
            return data, time.monotonic() - started
        if position < len(trickle):
            try:
                connection.send(trickle[position : position + 1])
            except (BrokenPipeError, ConnectionResetError):
                return b"", time.monotonic() - started
            position += 1
    raise AssertionError(f"the server neither answered nor closed within {limit_s} s")


def test_a_slowloris_sending_headers_byte_by_byte_is_cut_off(strict: Settings, scorer: BandEnergyScorer) -> None:
    with served(strict, scorer) as (_, address), socket.create_connection(address) as slow:
        slow.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        data, seconds = answer_or_close(slow, b"X-Slow: " + b"a" * 200)
    assert 0.9 < seconds < 2.5, seconds
    assert data.startswith(b"HTTP/1.1 408"), data


def test_a_connection_that_sends_nothing_is_closed(strict: Settings, scorer: BandEnergyScorer) -> None:
    with served(strict, scorer) as (_, address), socket.create_connection(address) as silent:
        data, seconds = answer_or_close(silent)
    assert data == b"" and 0.9 < seconds < 2.5, (data, seconds)


def test_a_slow_body_is_answered_408_naming_the_setting(strict: Settings, scorer: BandEnergyScorer) -> None:
    head = b"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    with served(strict, scorer) as (_, address), socket.create_connection(address) as slow:
        slow.send(head + b'{"sample_rate": 16000, "samples": [')
        data, seconds = answer_or_close(slow, b"0," * 400)
        rest, _ = answer_or_close(slow)
    assert 0.9 < seconds < 2.5, seconds
    assert data.startswith(b"HTTP/1.1 408") and b"connection: close" in data.lower(), data
    assert b'"field":"body"' in data + rest and b"serving.body_timeout_s=1" in data + rest


def test_headers_above_the_limit_are_refused_431(strict: Settings, scorer: BandEnergyScorer) -> None:
    with served(strict, scorer) as (_, address), socket.create_connection(address) as greedy:
        greedy.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 6000)
        data, seconds = answer_or_close(greedy)
    assert data.startswith(b"HTTP/1.1 431") and seconds < 1, (data, seconds)


def test_an_idle_keep_alive_connection_is_closed(strict: Settings, scorer: BandEnergyScorer) -> None:
    with served(strict, scorer) as (_, address), socket.create_connection(address) as kept:
        kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        data, _ = answer_or_close(kept)
        assert data.startswith(b"HTTP/1.1 200")
        closed, seconds = answer_or_close(kept)
    assert closed == b"" and 0.8 < seconds < 2.5, seconds


def test_many_idle_connections_do_not_stop_healthz(strict: Settings, scorer: BandEnergyScorer) -> None:
    # deadlines far beyond the answer expected: without room made for it, /healthz would wait about 5 s for the
    # idle connections to time out (or get a 503); with room made it answers at once, give or take a busy machine
    strict.serving.header_timeout_s = strict.serving.keep_alive_s = 5.0
    with served(strict, scorer) as (base, address):
        idle = [socket.create_connection(address) for _ in range(60)]  # three times serving.max_connections
        for half_sent in idle[::2]:
            half_sent.send(b"GET /healthz HTTP/1.1\r\n")
        try:
            time.sleep(0.2)
            started = time.monotonic()
            response = httpx.get(f"{base}/healthz", timeout=2)
            seconds = time.monotonic() - started
            closed = sum(1 for connection in idle if select.select([connection], [], [], 0.5)[0])
        finally:
            for connection in idle:
                connection.close()
    assert response.status_code == 200 and seconds < 2.5, (response.status_code, seconds)
    assert closed >= 40, f"only {closed} of 60 idle connections were closed to make room"


def test_a_client_leaving_during_its_upload_is_counted_499_and_logged_in_a_line(
    settings: Settings, scorer: BandEnergyScorer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    uploads = (
        (b"/v1/score/file", b"multipart/form-data; boundary=xyz", b'--xyz\r\nContent-Disposition: form-data; name="f'),
        (b"/v1/score", b"application/json", b'{"sample_rate": 16000, "samples": [0.1, 0.2'),
    )
    with served(settings, scorer) as (base, address):
        for path, kind, start in uploads:
            with socket.create_connection(address) as leaving:
                leaving.sendall(
                    b"POST "
                    + path
                    + b" HTTP/1.1\r\nHost: x\r\nContent-Type: "
                    + kind
                    + b"\r\nContent-Length: 200000\r\n\r\n"
                    + start
                )
                time.sleep(0.3)
        time.sleep(0.5)
        metrics = httpx.get(f"{base}/metrics").text
    for endpoint in ("/v1/score/file", "/v1/score"):
        assert f'endpoint="{endpoint}",method="POST",status="499"}} 1.0' in metrics, metrics
    assert 'status="500"' not in metrics and 'status="400"' not in metrics
    assert "Traceback" not in caplog.text and "Exception in ASGI application" not in caplog.text
    assert "client closed the connection after" in caplog.text


class HeldScorer(BandEnergyScorer):
    """The test detector, held inside ``score`` until released: every worker thread busy scoring."""

    def __init__(self) -> None:
        super().__init__()
        self.fit([healthy_clip(seed) for seed in range(8)], RATE)
        self.release = threading.Event()
        self.release.set()
        self.inside = 0
        self.lock = threading.Lock()

    def score(
        self,
        samples: np.ndarray,
        sample_rate: float,
        context: SignalContext | None = None,
        *,
        machine_id: str | None = None,
    ) -> Verdict:
        if not self.release.is_set():
            with self.lock:
                self.inside += 1
            self.release.wait(20)
        return super().score(samples, sample_rate, context)


def test_liveness_readiness_and_reads_answer_while_every_scoring_thread_scores(settings: Settings) -> None:
    threads = 4
    settings = settings.model_copy(update={"serving": settings.serving.model_copy(update={"scoring_threads": threads})})
    held = HeldScorer()
    clip = wav_bytes(healthy_clip(1, seconds=0.2))
    with served(settings, held) as (base, _):
        held.release.clear()  # released while the app warmed the model up
        with ThreadPoolExecutor(48) as pool:
            futures = [
                pool.submit(httpx.post, f"{base}/v1/score/file", files={"file": ("a.wav", clip)}, timeout=30)
                for _ in range(48)
            ]
            deadline = time.monotonic() + 10
            while held.inside < threads and time.monotonic() < deadline:
                time.sleep(0.05)
            timings = {}
            for path in ("/healthz", "/readyz", "/v1/machines"):  # the last in FastAPI's own worker threads
                started = time.monotonic()
                status = httpx.get(f"{base}{path}", timeout=5).status_code
                timings[path] = (status, time.monotonic() - started)
            blocked = held.inside
            held.release.set()
            answered = [future.result().status_code for future in futures]
    assert blocked == threads, f"{blocked} requests were scoring at once, not serving.scoring_threads={threads}"
    assert timings["/healthz"][0] == 200 and timings["/healthz"][1] < 0.5, timings
    assert timings["/readyz"][0] == 200 and timings["/readyz"][1] < 1.0, timings
    assert timings["/v1/machines"][0] == 200 and timings["/v1/machines"][1] < 1.0, timings
    assert answered == [200] * 48
