"""A mixed load on the service over loopback: every endpoint, good and refused requests, many clients at once.

Each client thread has its own keep-alive connection pool (httpx's defaults, as a gateway would) and takes
the next request of the mix until ``requests`` have been sent. What comes back is tallied per kind and
status; a request that got no HTTP answer is a transport error, named by its exception. The score ids of
every answered verdict are kept, to compare with what the score store holds.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
from synthetic_machines import RATE, faulty_clip, healthy_clip, wav_bytes

WAV = wav_bytes(healthy_clip(1))
FAULTY_WAV = wav_bytes(faulty_clip(2))
SAMPLES = healthy_clip(3).tolist()
PLAIN_TEXT = {"content-type": "text/plain"}
OVERSIZE = b"\0" * (3 * 1024 * 1024)  # above serving.max_upload_mb=2: refused from its declared length

Request = Callable[[httpx.Client, str, int], httpx.Response]


def _file(client: httpx.Client, base: str, i: int) -> httpx.Response:
    files = {"file": ("clip.wav", WAV if i % 3 else FAULTY_WAV, "audio/wav")}
    return client.post(f"{base}/v1/score/file", files=files, data={"machine_id": f"fan-{i // len(MIX) % 8}"})


def _json(client: httpx.Client, base: str, i: int) -> httpx.Response:
    body = {"sample_rate": RATE, "samples": SAMPLES, "machine_id": f"pump-{i // len(MIX) % 4}"}
    return client.post(f"{base}/v1/score", json=body)


def _batch(client: httpx.Client, base: str, i: int) -> httpx.Response:
    recording = {"sample_rate": RATE, "samples": SAMPLES[:8000], "machine_id": f"line-{i % 2}"}
    return client.post(f"{base}/v1/score/batch", json={"recordings": [recording, recording]})


def _batch_files(client: httpx.Client, base: str, i: int) -> httpx.Response:
    files = [("files", ("a.wav", WAV, "audio/wav")), ("files", ("b.wav", FAULTY_WAV, "audio/wav"))]
    return client.post(f"{base}/v1/score/batch/files", files=files, data={"machine_id": "press-1"})


MIX: dict[str, tuple[Request, int]] = {
    "score file": (_file, 200),
    "score json": (_json, 200),
    "score batch": (_batch, 200),
    "score batch files": (_batch_files, 200),
    "empty samples": (lambda c, b, i: c.post(f"{b}/v1/score", json={"sample_rate": RATE, "samples": []}), 422),
    "oversize upload": (lambda c, b, i: c.post(f"{b}/v1/score/file", files={"file": ("x.wav", OVERSIZE)}), 413),
    "wrong media type": (
        lambda c, b, i: c.post(f"{b}/v1/score", content=b"x", headers={"content-type": "text/plain"}),
        415,
    ),
    "machine id with newline": (
        lambda c, b, i: c.post(f"{b}/v1/score/file", files={"file": ("a.wav", WAV)}, data={"machine_id": "m\n"}),
        422,
    ),
    "machines": (lambda c, b, i: c.get(f"{b}/v1/machines"), 200),
    "machine": (lambda c, b, i: c.get(f"{b}/v1/machines/fan-0"), 200),
    "unknown machine": (lambda c, b, i: c.get(f"{b}/v1/machines/never-seen-{i}"), 404),
    "dashboard": (lambda c, b, i: c.get(f"{b}/v1/dashboard"), 200),
    "model": (lambda c, b, i: c.get(f"{b}/v1/model"), 200),
    "readyz": (lambda c, b, i: c.get(f"{b}/readyz"), 200),
    "healthz": (lambda c, b, i: c.get(f"{b}/healthz"), 200),
    "metrics": (lambda c, b, i: c.get(f"{b}/metrics"), 200),
}
"""Each kind of request: how to send it and the status it must get."""
SCORING = ("score file", "score json", "score batch", "score batch files")


@dataclass
class LoadResult:
    """What a load run got back."""

    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    transport_errors: Counter[tuple[str, str]] = field(default_factory=Counter)
    score_ids: list[str] = field(default_factory=list)

    @property
    def answered(self) -> int:
        return sum(self.statuses.values())

    def unexpected(self) -> dict[tuple[str, int], int]:
        """Answers whose status is not the one their kind must get."""
        return {key: count for key, count in self.statuses.items() if key[1] != MIX[key[0]][1]}


def mixed_load(base: str, requests: int, concurrency: int, kinds: tuple[str, ...] = tuple(MIX)) -> LoadResult:
    """Send ``requests`` requests of the mix (round robin over ``kinds``) from ``concurrency`` clients."""
    result = LoadResult()
    lock = threading.Lock()
    numbers = itertools.count()

    def client_thread() -> None:
        with httpx.Client(timeout=60) as client:
            while (i := next(numbers)) < requests:
                kind = kinds[i % len(kinds)]
                send, _ = MIX[kind]
                try:
                    response = send(client, base, i)
                except httpx.TransportError as error:
                    with lock:
                        result.transport_errors[(kind, f"{type(error).__name__}: {error}")] += 1
                    continue
                ids = _score_ids(response) if kind in SCORING else []
                with lock:
                    result.statuses[(kind, response.status_code)] += 1
                    result.score_ids.extend(ids)

    with ThreadPoolExecutor(concurrency) as pool:
        for future in [pool.submit(client_thread) for _ in range(concurrency)]:
            future.result()
    return result


def _score_ids(response: httpx.Response) -> list[str]:
    if response.status_code != 200:
        return []
    body = response.json()
    return [item["score_id"] for item in body["results"]] if "results" in body else [body["score_id"]]
