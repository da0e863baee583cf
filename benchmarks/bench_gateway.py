"""Benchmark of the MQTT gateway: sustained snapshots per second and publish-to-status latency, against the
in-process scoring rate (``ScoringService.score`` in a loop) measured in the same run.

    .venv/bin/python benchmarks/bench_gateway.py [--workdir DIR] [--messages 300] [--machines 3]

The champion is the registry's in ``--workdir``; without one, a small one is trained there first, as the
gateway tests do (synthetic pumps, a Mahalanobis detector). Snapshots are 1-s 16 kHz int16 binary waveforms
of :class:`vibrasense.gateway.Scenario`, generated before any timing. The broker is the one at
``gateway.host:gateway.port`` (Mosquitto), or an embedded one when none answers. The gateway runs as
``vibrasense gateway``, a process of its own, as deployed; this process publishes and watches the statuses.

- in-process: ``ScoringService.score`` on the same snapshots, one after the other (the ceiling);
- throughput: ``--messages`` snapshots published at once (QoS 1), until the last status arrives;
- latency: snapshots published in real time at half the measured throughput; from each snapshot's
  publication to its machine's status (retained, QoS 1) at this client, p50 and p99.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import paho.mqtt.client as mqtt

from vibrasense.config import Settings, load_settings
from vibrasense.gateway import EmbeddedBroker, Plant, Scenario, broker_reachable, use_embedded
from vibrasense.gateway.codec import decode_waveform
from vibrasense.gateway.connection import connect_options, new_client
from vibrasense.serving.schemas import ScoreRequest


def champion_settings(workdir: Path) -> Settings:
    """Settings on ``workdir``, with a registered champion (trained here when there is none)."""
    settings = load_settings(None, workdir=workdir, training={"model": "mahalanobis"})
    if not (workdir / "mlflow.db").exists():
        from vibrasense.features.pipeline import extract_features
        from vibrasense.signals.synthetic import write_audio_plant
        from vibrasense.training import train_and_register

        print(f"training a small champion in {workdir} ...", flush=True)
        plant = write_audio_plant(workdir / "plant", n_machines=3, n_normal_train=24, seconds=1.0, seed=7)
        run = extract_features([plant], workdir / "features", settings)
        train_and_register(settings, run.out_dir)
    return settings


def in_process_rate(settings: Settings, payloads: list[bytes]) -> float:
    """Snapshots per second through ``ScoringService.score``, as the gateway calls it (decoding included)."""
    from vibrasense.serving.model import load_registered_scorer
    from vibrasense.serving.service import ScoringService

    local = settings.model_copy(
        update={
            "workdir": Path(tempfile.mkdtemp(prefix="bench-gw-ref-")),
            "serving": settings.serving.model_copy(update={"score_store_url": None}),
        }
    )
    service = ScoringService(local, load_registered_scorer(settings)).start()
    try:
        started = time.perf_counter()
        for index, payload in enumerate(payloads):
            waveform = decode_waveform(payload, local.serving.max_samples)
            body = {
                "sample_rate": waveform.sample_rate,
                "pcm_base64": base64.b64encode(waveform.pcm).decode(),
                "dtype": waveform.dtype,
                "machine_id": f"pump_id_0{index % 3}",
                "sensor": "mic",
            }
            request = ScoreRequest.model_validate(body, context=service.validation_context)
            service.score(request, score_id=uuid.uuid4().hex, scored_at=waveform.timestamp)
        return len(payloads) / (time.perf_counter() - started)
    finally:
        service.close()


def snapshot_key(unix_s: float) -> float:
    """A snapshot's time as both ends see it: the publisher's float, the status's ISO text (``Z`` or ``+00:00``)."""
    return round(unix_s, 3)


class StatusClock:
    """Receives the site's statuses; notes when each snapshot's status arrived (by its scored_at, to the ms)."""

    def __init__(self, settings: Settings, site: str) -> None:
        self.arrivals: dict[tuple[str, float], float] = {}
        self.lock = threading.Lock()
        self.client = new_client(settings.gateway, f"bench-watch-{uuid.uuid4().hex[:8]}", persistent=False)
        self.client.on_message = self._on_message
        self.client.connect(**connect_options(settings.gateway, persistent=False))
        self.client.loop_start()
        self.client.subscribe(f"vibrasense/{site}/+/status", qos=1)

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        now = time.time()
        status = json.loads(message.payload)
        stamp = snapshot_key(datetime.fromisoformat(status["sensors"]["mic"]["scored_at"]).timestamp())
        with self.lock:
            self.arrivals.setdefault((status["machine_id"], stamp), now)

    def count(self) -> int:
        with self.lock:
            return len(self.arrivals)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def start_gateway(settings: Settings, site: str) -> subprocess.Popen[bytes]:
    """``vibrasense gateway`` for ``site`` on the champion, ready (connected) when this returns."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gateway = settings.gateway
    env = os.environ | {
        "VIBRASENSE_GATEWAY__SITE": site,
        "VIBRASENSE_GATEWAY__CLIENT_ID": f"bench-{site}"[:23],
        "VIBRASENSE_GATEWAY__HOST": gateway.host,
        "VIBRASENSE_GATEWAY__PORT": str(gateway.port),
        "VIBRASENSE_GATEWAY__PROTOCOL": gateway.protocol,
        "VIBRASENSE_GATEWAY__REGISTRY_POLL_S": "0",
        "VIBRASENSE_SERVING__SCORE_STORE_URL": f"sqlite:///{Path(tempfile.mkdtemp(prefix='bench-gw-')) / 's.db'}",
    }
    if gateway.user:
        env["VIBRASENSE_GATEWAY__USER"] = gateway.user
    command = [sys.executable, "-m", "vibrasense", "--workdir", str(settings.workdir), "gateway"]
    process = subprocess.Popen([*command, "--metrics-port", str(port)], env=env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            raise SystemExit(f"vibrasense gateway exited with {process.returncode}")
        time.sleep(0.2)
    raise SystemExit("vibrasense gateway did not connect within 180 s")


def publisher(settings: Settings) -> mqtt.Client:
    client = new_client(settings.gateway, f"bench-pub-{uuid.uuid4().hex[:8]}", persistent=False)
    client.connect(**connect_options(settings.gateway, persistent=False))
    client.loop_start()
    return client


def throughput(settings: Settings, site: str, messages: int, machines: int) -> float:
    """Snapshots per second from the first publication to the last status."""
    scenario = Scenario(site=site, sound_machines=machines, duration_s=messages / machines)
    batch = list(Plant(scenario, start=datetime(2026, 1, 5, tzinfo=UTC)).messages())
    clock, client = StatusClock(settings, site), publisher(settings)
    time.sleep(0.5)
    started = time.time()
    for message in batch:
        client.publish(message.topic, message.payload, qos=1)
    deadline = time.monotonic() + 600
    while clock.count() < len(batch) and time.monotonic() < deadline:
        time.sleep(0.05)
    last = max(clock.arrivals.values())
    clock.close()
    client.disconnect()
    client.loop_stop()
    return len(batch) / (last - started)


def latency(settings: Settings, site: str, rate: float, machines: int, seconds: float) -> np.ndarray:
    """Publish-to-status seconds of snapshots sent in real time at ``rate`` snapshots per second."""
    interval = machines / rate
    start = datetime.now(UTC).timestamp() + 3.0
    scenario = Scenario(site=site, sound_machines=machines, duration_s=seconds, interval_s=interval)
    batch = list(Plant(scenario, start=datetime.fromtimestamp(start, UTC)).messages())
    clock, client = StatusClock(settings, site), publisher(settings)
    sent: dict[tuple[str, float], float] = {}
    for index, message in enumerate(batch):
        due = start + message.at_s + (index % machines) * interval / machines
        time.sleep(max(0.0, due - time.time()))
        sent[(message.topic.split("/")[2], snapshot_key(start + message.at_s))] = time.time()
        client.publish(message.topic, message.payload, qos=1)
    deadline = time.monotonic() + 120
    while clock.count() < len(batch) and time.monotonic() < deadline:
        time.sleep(0.05)
    clock.close()
    client.disconnect()
    client.loop_stop()
    return np.array([clock.arrivals[key] - at for key, at in sent.items() if key in clock.arrivals])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "vibrasense-bench-gateway")
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--machines", type=int, default=3)
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    args = parser.parse_args()
    settings = champion_settings(args.workdir)
    broker = None
    if not broker_reachable(settings.gateway.host, settings.gateway.port):
        broker = EmbeddedBroker(settings.gateway.host, settings.gateway.port).start()
        settings = settings.model_copy(update={"gateway": use_embedded(settings.gateway)})
    site = f"bench-{uuid.uuid4().hex[:8]}"
    reference = list(Plant(Scenario(site=site, sound_machines=3, duration_s=40)).messages())
    in_process = in_process_rate(settings, [message.payload for message in reference])
    gateway = start_gateway(settings, site)
    try:
        sustained = throughput(settings, site, args.messages, args.machines)
        delays = latency(settings, site, sustained / 2, args.machines, args.latency_seconds) * 1000
    finally:
        gateway.send_signal(signal.SIGTERM)
        gateway.wait(60)
        if broker is not None:
            broker.stop()
    where = "embedded broker" if broker else f"broker {settings.gateway.host}:{settings.gateway.port}"
    print(f"broker: {where}; {os.cpu_count()} CPUs; 1-s 16 kHz int16 binary snapshots")
    print(f"in-process ScoringService.score:  {in_process:8.1f} snapshots/s")
    print(f"through the gateway (sustained):  {sustained:8.1f} snapshots/s  ratio {sustained / in_process:.2f}")
    print(
        f"publish-to-status latency at {sustained / 2:.1f} snapshots/s ({len(delays)} snapshots): "
        f"p50 {np.percentile(delays, 50):.1f} ms, p99 {np.percentile(delays, 99):.1f} ms"
    )


if __name__ == "__main__":
    main()
