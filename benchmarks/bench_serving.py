"""Benchmark of the scoring service over HTTP on loopback, against the in-process model call (the floor).

    .venv/bin/python benchmarks/bench_serving.py [--requests 10000] [--model auto|registry|reference]
                                                 [--body wav|json]

Starts ``uvicorn`` in a subprocess with the service, then drives it from a separate load-generator process
(httpx, one keep-alive client per thread), sending one 10-s 16 kHz MIMII fan clip as a WAV file
(``POST /v1/score/file``, the default) or as JSON samples (``POST /v1/score``, ``--body json``):

- latency p50 / p99 at concurrency 1, and the in-process ``scorer.score`` on the same clip (the floor);
- throughput at concurrency 8, against the floor's single-thread throughput;
- ``--requests`` requests at concurrency 32, counting 5xx, other errors and failed connections.

Goals: p99 <= 20 ms at concurrency 1, >= 100 clips/s at concurrency 8, zero 5xx.

The model is the registry champion (``vibrasense.registry.load_scorer``) when training has registered one
in ``--workdir`` (``--model registry``), or else a reference detector defined here (log band energies of
the clip against healthy MIMII clips, mean |z|), whose cost is a full FFT of the clip.
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

import numpy as np
import soundfile as sf

from vibrasense.inference import Verdict
from vibrasense.signals.records import SignalContext

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("VIBRASENSE_SHARED_DATA", ROOT.parent / "shared" / "data"))
MIMII_NORMAL = DATA / "mimii" / "fan" / "id_00" / "normal"
GOAL_P99_MS = 20.0
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

    def score(self, samples: np.ndarray, sample_rate: float, context: SignalContext | None = None) -> Verdict:
        value = self._raw(samples, sample_rate)
        return Verdict(value, self.threshold_, value > self.threshold_)


def healthy_clips() -> tuple[list[np.ndarray], float]:
    """The MIMII fan normal clips (10 s, 16 kHz), or synthetic hum where the data is absent."""
    files = sorted(MIMII_NORMAL.glob("*.wav"))
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
    """Run the service under uvicorn (this is the subprocess the benchmark starts)."""
    import uvicorn

    from vibrasense.config import load_settings
    from vibrasense.serving.app import create_app

    settings = load_settings(None, workdir=workdir)
    app = create_app(settings, build_scorer(kind, workdir))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


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


def floor(scorer, samples: np.ndarray, rate: float, repeats: int) -> list[float]:
    """In-process ``scorer.score`` times on the clip (no HTTP, no decoding)."""
    for _ in range(10):
        scorer.score(samples, rate)
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        scorer.score(samples, rate)
        times.append(time.perf_counter() - began)
    return times


def wait_ready(base: str, server: subprocess.Popen, timeout: float = 120) -> None:
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
    """Measure the floor, start the server, drive it at concurrency 1, 8 and 32, print the table."""
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
    floor_times = floor(scorer, decoded, rate, 300)
    print(f"model: {scorer.name} v{scorer.version} ({kind}); cores: {os.cpu_count()}")

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
        run_load(url, clip_path, 4, 100)  # warm the server's paths and connection handling
        c1 = run_load(url, clip_path, 1, args.latency_requests)
        c8 = run_load(url, clip_path, 8, args.throughput_requests)
        c32 = run_load(url, clip_path, 32, args.requests)
    finally:
        server.terminate()
        server.wait(30)

    floor_p50, floor_p99 = percentile_ms(floor_times, 50), percentile_ms(floor_times, 99)
    floor_rate = 1 / statistics.fmean(floor_times)
    p50, p99 = percentile_ms(c1["latencies"], 50), percentile_ms(c1["latencies"], 99)
    rate8 = len(c8["latencies"]) / c8["wall_s"]
    rate32 = len(c32["latencies"]) / c32["wall_s"]
    fivexx = sum(n for code, n in c32["statuses"].items() if code.isdigit() and int(code) >= 500)
    other = sum(n for code, n in c32["statuses"].items() if code != "200")
    print()
    print(f"{'':34}{'service (HTTP)':>16}{'floor (in-process)':>20}{'ratio':>8}")
    print(f"{'latency p50, concurrency 1 (ms)':34}{p50:16.2f}{floor_p50:20.2f}{p50 / floor_p50:8.2f}")
    print(f"{'latency p99, concurrency 1 (ms)':34}{p99:16.2f}{floor_p99:20.2f}{p99 / floor_p99:8.2f}")
    print(f"{'throughput, concurrency 8 (clip/s)':34}{rate8:16.1f}{floor_rate:20.1f}{rate8 / floor_rate:8.2f}")
    print(
        f"{'latency p50 / p99, concurrency 8':34}{percentile_ms(c8['latencies'], 50):7.1f} /"
        f"{percentile_ms(c8['latencies'], 99):7.1f} ms"
    )
    print(
        f"concurrency 32: {len(c32['latencies'])} requests in {c32['wall_s']:.1f} s ({rate32:.1f} clip/s), "
        f"p99 {percentile_ms(c32['latencies'], 99):.1f} ms; statuses {c32['statuses']}; "
        f"5xx: {fivexx}, non-200: {other}"
    )
    verdict = [
        f"p99 <= {GOAL_P99_MS:g} ms: {'met' if p99 <= GOAL_P99_MS else 'NOT met'}",
        f">= {GOAL_CLIPS_PER_S:g} clip/s: {'met' if rate8 >= GOAL_CLIPS_PER_S else 'NOT met'}",
        f"zero 5xx: {'met' if fivexx == 0 else 'NOT met'}",
    ]
    print("goals: " + "; ".join(verdict))


if __name__ == "__main__":
    main()
