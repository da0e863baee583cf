"""The demo's stages after feature extraction: each runs the real component and prints what it did."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
from rich.console import Console
from rich.table import Table

from vibrasense.config import Settings
from vibrasense.errors import VibrasenseError, redact
from vibrasense.features.pipeline import FeatureRun

CHALLENGER_MODEL = "mahalanobis"
SERVER_START_TIMEOUT_S = 120.0
LIVE_SITE = "demo-plant"
LIVE_SNAPSHOTS = 40
"""Snapshots per sensor in the live-plant stage, published as fast as the gateway takes them."""


def feature_store(settings: Settings, run: FeatureRun, console: Console) -> None:
    """Generate and apply the Feast repository, materialise it, and look one machine up online."""
    from vibrasense.store import OnlineFeatureClient, apply, materialize, write_repo

    root = write_repo(settings, run.features_path)
    names = apply(settings)
    result = materialize(settings)
    console.print(
        f"repository {root}: {len(names)} definitions applied; {result.rows} rows of {result.machines} machines "
        f"materialised to the {settings.store.online_store.type} online store in {result.seconds:.1f} s",
        highlight=False,
    )
    machine = str(pd.read_parquet(run.features_path, columns=["machine_id"])["machine_id"].iloc[0])
    client = OnlineFeatureClient(settings)
    client.get(machine)
    started = time.perf_counter()
    features = client.get(machine) or {}
    elapsed_ms = (time.perf_counter() - started) * 1000
    shown = ", ".join(f"{k} {features[k]:.4g}" for k in ("rms_mean", "spectral_centroid", "mfcc_0") if k in features)
    console.print(f"online lookup of {machine} in {elapsed_ms:.2f} ms: {shown}", highlight=False)


def train_models(settings: Settings, features_dir: Path, console: Console) -> None:
    """Train the configured model (champion) and a challenger, then promote the challenger only if better."""
    from vibrasense.training import promote, train_and_register

    table = Table("model", "version", "alias", "auc", "pauc", "f1", "precision", "recall", "accuracy", "run")
    for model in dict.fromkeys((settings.training.model.name, CHALLENGER_MODEL)):
        with console.status(f"training {model}"):
            result = train_and_register(settings, features_dir, model)
        metrics = result.metrics
        table.add_row(
            result.model_name,
            result.model_version,
            result.alias,
            *(f"{metrics[k]:.3f}" if k in metrics else "-" for k in ("auc", "pauc", "f1", "precision", "recall")),
            f"{metrics['accuracy']:.3f}" if "accuracy" in metrics else "-",
            result.run_id[:12],
        )
    console.print(table)
    promotion = promote(settings, features_dir)
    console.print(("promoted: " if promotion.promoted else "not promoted: ") + promotion.reason, highlight=False)


def serve_and_score(settings: Settings, audio_root: Path, console: Console) -> None:
    """Start ``vibrasense serve`` on a free port, score the held-out clips over HTTP, stop the server."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = os.environ | {"VIBRASENSE_WORKDIR": str(settings.workdir.resolve())}
    command = [sys.executable, "-m", "vibrasense", "serve", "--host", "127.0.0.1", "--port", str(port)]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_ready(server, base)
        clips = sorted(p for p in audio_root.rglob("*.wav") if p.parent.name == "test")
        verdicts = []
        with httpx.Client(base_url=base, timeout=30) as client:
            for clip in clips:
                machine = f"{clip.parents[1].name}_id_{clip.stem.split('_')[2]}"
                response = client.post(
                    "/v1/score/file",
                    files={"file": (clip.name, clip.read_bytes(), "audio/wav")},
                    data={"machine_id": machine},
                )
                response.raise_for_status()
                body = response.json()
                truth = "anomaly" if clip.name.startswith("anomaly") else "normal"
                verdicts.append((machine, truth, bool(body["is_anomaly"]), float(body["processing_ms"])))
        frame = pd.DataFrame(verdicts, columns=["machine", "truth", "flagged", "ms"])
        table = Table("machine", "anomalies flagged", "normal clips passed", "median ms")
        for machine, group in frame.groupby("machine"):
            anomalies, normals = group[group.truth == "anomaly"], group[group.truth == "normal"]
            table.add_row(
                machine,
                f"{int(anomalies.flagged.sum())} of {len(anomalies)}",
                f"{int((~normals.flagged).sum())} of {len(normals)}",
                f"{group.ms.median():.1f}",
            )
        console.print(table)
        console.print(
            f"{len(clips)} held-out clips scored over HTTP by the champion; the dashboard was at {base}/ "
            f"(`vibrasense serve` keeps it up)",
            highlight=False,
        )
    finally:
        server.terminate()
        server.wait(timeout=30)


def prognose_run(settings: Settings, run_root: Path, console: Console, history: int = 2) -> None:
    """Health index, alarm and RUL of the synthetic run to failure, knowing ``history`` earlier runs; to MLflow."""
    from vibrasense.prognostics.health import health_index
    from vibrasense.prognostics.report import log_to_mlflow, prognose
    from vibrasense.prognostics.rul import PastRuns
    from vibrasense.prognostics.runs import load_run
    from vibrasense.signals.synthetic import write_run_to_failure

    with console.status(f"learning from {history} earlier runs to failure"):
        past_runs = [
            load_run(
                write_run_to_failure(run_root.parent / "history", f"earlier_bearing_{k}", n, seed=100 + k), settings
            )
            for k, n in enumerate((120, 180)[:history])
        ]
        past = PastRuns.learn([health_index(run) for run in past_runs])
    console.print(
        f"earlier runs: mean life {past.mean_life_hours * 60:.1f} min, alarm {past.alarm_lead_hours * 60:.1f} min "
        f"before failure (median)",
        highlight=False,
    )
    results = prognose(load_run(run_root, settings), settings.workdir / "prognostics", past=past)
    log_to_mlflow(settings, str(run_root), results)
    for result in results:
        times = result.table["event_timestamp"]
        start, end = times.iloc[0], times.iloc[-1]
        alarm = result.health.first_alarm
        if alarm is None:
            console.print(f"{result.machine_id}: no alarm over {len(times)} snapshots", highlight=False)
            continue
        console.print(
            f"{result.machine_id}: alarm at {(alarm - start) / (end - start):.0%} of life, "
            f"{(end - alarm).total_seconds() / 60:.1f} min before failure; plot {result.files[2]}",
            highlight=False,
        )
        estimates = result.table[(times >= alarm) & result.table["rul_hours"].notna()]
        for _, row in estimates.iloc[:: max(1, len(estimates) // 4)].iterrows():
            actual = (end - row["event_timestamp"]).total_seconds() / 60
            console.print(
                f"  at {(row['event_timestamp'] - start) / (end - start):.0%} of life: RUL "
                f"{row['rul_hours'] * 60:.1f} min ({row['rul_low_hours'] * 60:.1f}-{row['rul_high_hours'] * 60:.1f}, "
                f"{row['rul_method']}), actual {actual:.1f} min",
                highlight=False,
            )


def live_plant(
    settings: Settings, console: Console, machine_type: str = "pump", machines: int = 3, snapshot_s: float = 10.0
) -> None:
    """Simulator -> MQTT -> gateway -> statuses: a plant streaming snapshots, one machine failing, one switched off.

    Each snapshot lasts ``snapshot_s``, the length of the clips the champion was trained on (a model sees the
    inputs it was trained on: features of shorter clips scatter more and would raise false warnings).

    Uses the broker at gateway.host:gateway.port, or an embedded one started there when none answers.
    """
    from vibrasense.gateway import (
        AnomalySpan,
        EmbeddedBroker,
        Gateway,
        Plant,
        Scenario,
        broker_reachable,
        discard_session,
        publish,
        use_embedded,
    )
    from vibrasense.gateway.watch import StatusWatcher
    from vibrasense.serving.model import load_registered_scorer
    from vibrasense.serving.service import ScoringService

    config = settings.gateway.model_copy(
        update={"site": LIVE_SITE, "client_id": "vibrasense-demo-gw", "metrics_port": 0, "registry_poll_s": 0}
    )
    broker = None
    if not broker_reachable(config.host, config.port):
        broker = EmbeddedBroker(config.host, config.port).start()
        config = use_embedded(config)
    where = f"{'embedded broker (amqtt)' if broker else 'MQTT broker'} {config.host}:{config.port}"
    settings = settings.model_copy(update={"gateway": config})
    failing, stopped = f"{machine_type}_id_01", f"{machine_type}_id_02"
    duration = LIVE_SNAPSHOTS * snapshot_s
    scenario = Scenario(
        site=LIVE_SITE,
        machine_type=machine_type,
        sound_machines=machines,
        summary_only=1,
        duration_s=duration,
        interval_s=snapshot_s,
        snapshot_s=snapshot_s,
        anomalies={failing: AnomalySpan("bearing", duration / 4)},
        off={stopped: (duration / 2, float("inf"))},
        ramp_s=duration / 3,
    )
    plant = Plant(scenario)
    discard_session(config, config.client_id)  # a fresh plant: nothing an earlier demo left queued at the broker
    service = ScoringService(settings, load_registered_scorer(settings)).start()
    try:
        with StatusWatcher(config, LIVE_SITE) as watcher:
            gateway = Gateway(settings, service).start()
            try:
                if not gateway.wait_connected(15):
                    raise VibrasenseError(f"the gateway could not connect to the {where}")
                before = gateway.health()["handled"]  # the work directory's record counts earlier runs too
                carried = sorted({alarm.machine_id for alarm in service.alarms.open_alarms()})
                published = publish(config, plant, speed=0)
                deadline = time.monotonic() + 120
                while gateway.health()["handled"] - before < published.messages and time.monotonic() < deadline:
                    time.sleep(0.1)
                time.sleep(0.5)  # the last statuses on their way to the watcher
                handled = gateway.health()["handled"] - before
            finally:
                gateway.stop()
    finally:
        service.close()
        if broker is not None:
            broker.stop()
    console.print(
        f"{published.messages} messages ({snapshot_s:g}-s snapshots) of {duration:.0f} simulated seconds through "
        f"the {where}: {handled} handled; {failing} develops a bearing fault from {duration / 4:.0f} s, "
        f"{stopped} is switched off at {duration / 2:.0f} s",
        highlight=False,
    )
    if carried:
        console.print(
            f"alarms still open from an earlier run, taken over until the machine clears them: {', '.join(carried)}",
            highlight=False,
        )
    table = Table("machine", "state transitions on vibrasense/" + LIVE_SITE + "/<machine>/status (simulated time)")
    for machine_id, transitions in sorted(watcher.transitions.items()):
        steps = [f"{state} ({(moment - plant.start).total_seconds():.0f} s)" for state, moment in transitions]
        table.add_row(machine_id, " -> ".join(steps))
    console.print(table)
    console.print(
        f"the scores and alarms are in {redact(settings.score_store_url)}: `vibrasense serve` shows them on the "
        "dashboard; `vibrasense gateway` and `vibrasense simulate --mqtt` run the same plant for real",
        highlight=False,
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_ready(server: subprocess.Popen, base: str) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise VibrasenseError(f"vibrasense serve exited with {server.returncode}: {server.stderr.read()[-2000:]}")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise VibrasenseError(f"vibrasense serve did not become ready at {base} within {SERVER_START_TIMEOUT_S:.0f} s")
