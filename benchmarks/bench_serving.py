"""Benchmark of the scoring service over HTTP on loopback, against its floors measured in the same run.

    .venv/bin/python benchmarks/bench_serving.py [--requests 10000] [--model auto|registry|reference]
                                                 [--body wav|json] [--workdir W]

Starts the service in a subprocess the way ``vibrasense serve`` does (native pools at one thread, uvicorn
with uvloop, httptools and :mod:`vibrasense.serving.server`'s client guard), then drives it from a separate
load-generator process (httpx, one keep-alive client per thread), sending one 10-s 16 kHz clip as a WAV file
(``POST /v1/score/file``, the default) or as JSON samples (``POST /v1/score``, ``--body json``):

- latency p50 / p99 at concurrency 1 and throughput at concurrency 8, beside three floors:
  the model alone in-process (``scorer.score`` on the decoded clip), the whole scoring service in-process
  (``ScoringService.score``: decode, checks, alarms, score store; no HTTP), and an empty endpoint over HTTP
  (``POST /bench/empty``, added in the benchmark's server only: the same upload, its form parsed, nothing
  scored);
- the server's CPU time per clip at concurrency 8 (from ``/proc``), against the in-process service's: on a
  machine shared with other work, wall times move with the load, CPU per clip much less, and
  ``cores / CPU per clip`` bounds the throughput;
- ``--requests`` requests at concurrency 32, counting 5xx, other errors and failed connections.

Goals: p99 <= 20 ms at concurrency 1 (cnn-ae: 40 ms), >= 100 clips/s at concurrency 8, zero 5xx.

The model is the registry champion (``vibrasense.registry.load_scorer``) when training has registered one
in ``--workdir`` (``--model registry``), or else a reference detector defined here (log band energies of
the clip against healthy clips, mean |z|), whose cost is a full FFT of the clip. The clip is MIMII fan
id_00 (or the DCASE 2020 clips where MIMII is absent; synthetic hum where both are).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated

import numpy as np
import soundfile as sf
from fastapi import File, Form, UploadFile

from vibrasense.inference import Verdict
from vibrasense.signals.records import SignalContext

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("VIBRASENSE_SHARED_DATA", ROOT.parent / "shared" / "data"))
MIMII_NORMAL = DATA / "mimii" / "fan" / "id_00" / "normal"
DCASE_TRAIN = DATA / "dcase2020" / "unknown_machine" / "train"
GOAL_P99_MS = 20.0
GOAL_P99_AUTOENCODER_MS = 40.0
GOAL_CLIPS_PER_S = 100.0


class ReferenceScorer:
    """Mean |z| of 64 log band energies against healthy clips; threshold: max healthy score * 1.2."""

    name = "reference-band-energy"
    version = "bench"

    def __init__(self, bands: int = 64) -> None:
        self.bands = bands

    def _features(self, samples: np.ndarray, sample_rate: float) -> np.ndarray:
        power = np.abs(np.fft.rfft(samples)) ** 2
        edges = np.linspace(0, power.size, self.bands + 1).astype(int)
        energy = np.add.reduceat(power, edges[:-1]) / samples.size
        return np.log10(energy + 1e-12)

    def fit(self, clips: list[np.ndarray], sample_rate: float) -> ReferenceScorer:
        features = np.stack([self._features(clip, sample_rate) for clip in clips])
        self.mean_, self.std_ = features.mean(axis=0), features.std(axis=0) + 1e-3
        self.threshold_ = 1.2 * max(self._raw(clip, sample_rate) for clip in clips)
        return self

    def _raw(self, samples: np.ndarray, sample_rate: float) -> float:
        return float(np.mean(np.abs((self._features(samples, sample_rate) - self.mean_) / self.std_)))

    def score(
        self,
        samples: np.ndarray,
        sample_rate: float,
        context: SignalContext | None = None,
        *,
        machine_id: str | None = None,
    ) -> Verdict:
        value = self._raw(samples, sample_rate)
        return Verdict(value, self.threshold_, value > self.threshold_)


def healthy_clips() -> tuple[list[np.ndarray], float]:
    """The MIMII fan normal clips (10 s, 16 kHz), else DCASE 2020's, or synthetic hum where the data is absent."""
    files = sorted(MIMII_NORMAL.glob("*.wav")) or sorted(DCASE_TRAIN.glob("normal_*.wav"))[:20]
    if files:
        clips = [sf.read(f, dtype="float32")[0] for f in files]
        return clips, float(sf.info(files[0]).samplerate)
    rng = np.random.default_rng(0)
    t = np.arange(160_000) / 16_000
    hum = [0.3 * np.sin(2 * np.pi * 120 * t) + 0.05 * rng.standard_normal(t.size) for _ in range(8)]
    return [h.astype(np.float32) for h in hum], 16_000.0


def build_scorer(kind: str, workdir: Path):
    """The scorer to serve and to take the floor of: the registry champion or the reference detector."""
    if kind == "registry":
        from vibrasense.config import load_settings
        from vibrasense.serving.model import load_registered_scorer

        return load_registered_scorer(load_settings(None, workdir=workdir))
    clips, rate = healthy_clips()
    return ReferenceScorer().fit(clips[1:], rate)


def resolve_model(kind: str, workdir: Path) -> str:
    """``auto``: the registry when a champion loads from ``workdir``, else the reference detector."""
    if kind != "auto":
        return kind
    try:
        build_scorer("registry", workdir)
    except Exception as error:
        print(f"note: no registry champion in {workdir} ({str(error)[:160]}); using the reference detector")
        return "reference"
    return "registry"


# -- the server process ------------------------------------------------------------------------------


def serve(port: int, kind: str, workdir: Path) -> None:
    """Run the service as ``vibrasense serve`` does, plus ``POST /bench/empty`` (this is the benchmark's server)."""
    from vibrasense.features.threads import single_thread_environment

    single_thread_environment()
    from vibrasense.config import load_settings
    from vibrasense.serving.app import create_app
    from vibrasense.serving.server import serve as serve_app

    settings = load_settings(None, workdir=workdir, serving={"port": port})
    app = create_app(settings, build_scorer(kind, workdir))

    @app.post("/bench/empty")
    def empty(file: Annotated[UploadFile, File()], machine_id: Annotated[str, Form()] = "") -> dict:
        """The same upload and form as ``/v1/score/file``, nothing scored: the HTTP floor."""
        return {"machine_id": machine_id}

    serve_app(app, settings, log_level="warning", access_log=False)


# -- the load-generator process ----------------------------------------------------------------------


ENDPOINTS = {"wav": "/v1/score/file", "json": "/v1/score"}


def drive(url: str, clip: Path, concurrency: int, requests: int) -> dict:
    """Send ``requests`` copies of ``clip`` (a WAV upload, or JSON samples for ``.json``) with ``concurrency``
    threads; latencies and error counts."""
    import httpx

    payload = clip.read_bytes()
    as_json = clip.suffix == ".json"
    local = threading.local()
    counter = iter(range(requests))
    lock = threading.Lock()
    latencies: list[float] = []
    statuses: dict[str, int] = {}

    def one() -> None:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(timeout=30)
        while True:
            with lock:
                index = next(counter, None)
            if index is None:
                return
            began = time.perf_counter()
            try:
                if as_json:
                    headers = {"content-type": "application/json"}
                    response = client.post(url, content=payload, headers=headers)
                else:
                    response = client.post(
                        url,
                        files={"file": ("clip.wav", payload, "audio/wav")},
                        data={"machine_id": f"bench-{index % 16}"},
                    )
                key = str(response.status_code)
            except httpx.HTTPError as error:
                key = type(error).__name__
            elapsed = time.perf_counter() - began
            with lock:
                latencies.append(elapsed)
                statuses[key] = statuses.get(key, 0) + 1

    began = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        for future in [pool.submit(one) for _ in range(concurrency)]:
            future.result()
    wall = time.perf_counter() - began
    return {"latencies": latencies, "statuses": statuses, "wall_s": wall}


def run_load(url: str, clip: Path, concurrency: int, requests: int) -> dict:
    """Run :func:`drive` in a separate process so the load generator does not share the server's GIL."""
    command = [sys.executable, __file__, "--drive", url, "--clip", str(clip)]
    command += ["--concurrency", str(concurrency), "--requests", str(requests)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.splitlines()[-1])


# -- the benchmark -----------------------------------------------------------------------------------


def percentile_ms(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000, q))


def timed_calls(call, repeats: int) -> tuple[list[float], float]:
    """Wall times of ``repeats`` calls (after 10 to warm up), and this process's CPU seconds per call."""
    for _ in range(10):
        call()
    times = []
    cpu = time.process_time()
    for _ in range(repeats):
        began = time.perf_counter()
        call()
        times.append(time.perf_counter() - began)
    return times, (time.process_time() - cpu) / repeats


def service_floor(scorer, wav: bytes, workdir: Path, repeats: int) -> tuple[list[float], float]:
    """``ScoringService.score`` on the WAV upload in this process: decode, checks, alarms and score store, no HTTP.

    Its own work directory (its score spool and store), so the server's stays its own.
    """
    from vibrasense.config import load_settings
    from vibrasense.serving.service import ScoringService, Upload

    service = ScoringService(load_settings(None, workdir=workdir / "in-process"), scorer)
    service.start()
    try:
        cpu = time.process_time()
        times, _ = timed_calls(lambda: service.score(Upload(io.BytesIO(wav), machine_id="bench-0")), repeats)
        service.store.flush()  # the score writer's CPU counts too
        return times, (time.process_time() - cpu) / (repeats + 10)
    finally:
        service.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_ready(base: str, server: subprocess.Popen, timeout: float = 600) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"server exited with {server.returncode}")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("server did not become ready")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=10_000, help="Requests at concurrency 32.")
    parser.add_argument("--latency-requests", type=int, default=500, help="Requests at concurrency 1.")
    parser.add_argument("--throughput-requests", type=int, default=2_000, help="Requests at concurrency 8.")
    parser.add_argument("--model", choices=("auto", "registry", "reference"), default="auto")
    parser.add_argument("--body", choices=tuple(ENDPOINTS), default="wav", help="WAV upload or JSON samples.")
    parser.add_argument("--workdir", type=Path, default=None, help="Work directory (registry, scores.db).")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--drive", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--clip", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.drive:
        print(json.dumps(drive(args.drive, args.clip, args.concurrency, args.requests)))
        return
    if args.serve:
        serve(args.port, args.model, args.workdir)
        return
    if args.workdir is None:
        with tempfile.TemporaryDirectory(prefix="bench-serving-") as scratch:
            benchmark(args, Path(scratch))
    else:
        benchmark(args, args.workdir)


def benchmark(args: argparse.Namespace, workdir: Path) -> None:
    """Measure the floors, start the server, drive it at concurrency 1, 8 and 32, print the table."""
    from vibrasense.inference import limit_process_threads

    limit_process_threads()  # the floors run under the server's thread limits
    kind = resolve_model(args.model, workdir)
    clips, rate = healthy_clips()
    samples = clips[0]
    clip_path = workdir / "clip.wav"
    buffer = io.BytesIO()
    sf.write(buffer, samples, int(rate), format="WAV", subtype="PCM_16")
    clip_path.write_bytes(buffer.getvalue())
    print(f"clip: {len(samples) / rate:.1f} s at {rate:g} Hz ({clip_path.stat().st_size / 1024:.0f} KiB WAV)")
    decoded = sf.read(clip_path, dtype="float32")[0]
    if args.body == "json":
        clip_path = workdir / "clip.json"
        clip_path.write_text(json.dumps({"sample_rate": rate, "samples": decoded.tolist(), "machine_id": "bench-0"}))
        print(f"sent as JSON samples ({clip_path.stat().st_size / 1024:.0f} KiB)")

    scorer = build_scorer(kind, workdir)
    model_times, model_cpu = timed_calls(lambda: scorer.score(decoded, rate), 300)
    service_times, service_cpu = service_floor(scorer, buffer.getvalue(), workdir, 300)
    autoencoder = "ae" in scorer.name
    goal_p99 = GOAL_P99_AUTOENCODER_MS if autoencoder else GOAL_P99_MS
    cores = os.cpu_count() or 1
    print(f"model: {scorer.name} v{scorer.version} ({kind}); cores: {cores}")

    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", args.port))
        port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--port", str(port), "--model", kind, "--workdir", str(workdir)]
    )
    try:
        wait_ready(base, server)
        url = f"{base}{ENDPOINTS[args.body]}"
        empty = f"{base}/bench/empty"
        run_load(url, clip_path, 4, 100)  # warm the server's paths and connection handling
        c1 = run_load(url, clip_path, 1, args.latency_requests)
        before = cpu_seconds(server.pid)
        c8 = run_load(url, clip_path, 8, args.throughput_requests)
        server_cpu = (cpu_seconds(server.pid) - before) / len(c8["latencies"])
        empty_c1 = empty_c8 = None
        if args.body == "wav":
            empty_c1 = run_load(empty, clip_path, 1, args.latency_requests)
            empty_c8 = run_load(empty, clip_path, 8, args.throughput_requests)
        c32 = run_load(url, clip_path, 32, args.requests)
    finally:
        server.terminate()
        server.wait(30)

    p50, p99 = percentile_ms(c1["latencies"], 50), percentile_ms(c1["latencies"], 99)
    rate8 = len(c8["latencies"]) / c8["wall_s"]
    rate32 = len(c32["latencies"]) / c32["wall_s"]
    fivexx = sum(n for code, n in c32["statuses"].items() if code.isdigit() and int(code) >= 500)
    other = sum(n for code, n in c32["statuses"].items() if code != "200")
    print()
    print(f"{'':38}{'p50 ms':>9}{'p99 ms':>9}{'clips/s':>10}{'CPU ms/clip':>13}")
    print(f"{'service over HTTP (c=1; clips/s c=8)':38}{p50:9.2f}{p99:9.2f}{rate8:10.1f}{server_cpu * 1000:13.2f}")
    if empty_c1 and empty_c8:
        e50, e99 = percentile_ms(empty_c1["latencies"], 50), percentile_ms(empty_c1["latencies"], 99)
        erate = len(empty_c8["latencies"]) / empty_c8["wall_s"]
        print(f"{'floor: empty endpoint over HTTP':38}{e50:9.2f}{e99:9.2f}{erate:10.1f}{'':>13}")
        if set(empty_c1["statuses"]) | set(empty_c8["statuses"]) != {"200"}:
            print(f"  (empty endpoint statuses: {empty_c1['statuses']}, {empty_c8['statuses']})")
    s50, s99 = percentile_ms(service_times, 50), percentile_ms(service_times, 99)
    srate = 1 / statistics.fmean(service_times)
    print(f"{'floor: service in-process (1 thread)':38}{s50:9.2f}{s99:9.2f}{srate:10.1f}{service_cpu * 1000:13.2f}")
    m50, m99 = percentile_ms(model_times, 50), percentile_ms(model_times, 99)
    mrate = 1 / statistics.fmean(model_times)
    print(f"{'floor: model alone in-process (1 thread)':38}{m50:9.2f}{m99:9.2f}{mrate:10.1f}{model_cpu * 1000:13.2f}")
    print(
        f"HTTP adds {p50 - s50:.2f} ms at p50 over the in-process service; the server spends "
        f"{server_cpu * 1000:.2f} ms CPU per clip ({service_cpu * 1000:.2f} in-process), so {cores} cores bound "
        f"it to {cores / server_cpu:.0f} clips/s; at concurrency 8: p50 {percentile_ms(c8['latencies'], 50):.1f} / "
        f"p99 {percentile_ms(c8['latencies'], 99):.1f} ms"
    )
    print(
        f"concurrency 32: {len(c32['latencies'])} requests in {c32['wall_s']:.1f} s ({rate32:.1f} clip/s), "
        f"p99 {percentile_ms(c32['latencies'], 99):.1f} ms; statuses {c32['statuses']}; "
        f"5xx: {fivexx}, non-200: {other}"
    )
    verdict = [
        f"p99 <= {goal_p99:g} ms: {'met' if p99 <= goal_p99 else 'NOT met'}",
        f">= {GOAL_CLIPS_PER_S:g} clip/s: {'met' if rate8 >= GOAL_CLIPS_PER_S else 'NOT met'}",
        f"zero 5xx: {'met' if fivexx == 0 else 'NOT met'}",
    ]
    print("goals: " + "; ".join(verdict))


if __name__ == "__main__":
    main()
