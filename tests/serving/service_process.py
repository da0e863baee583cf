"""The service in a process of its own, served as ``vibrasense serve`` serves it, with the test detector.

``python service_process.py WORKDIR PORT`` runs it (settings from the environment, ``VIBRASENSE_*``);
:func:`service_process` starts it on a free loopback port and stops it with SIGTERM, as a supervisor does, so
its lifespan writes what is queued before it exits.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent


@dataclass
class ServiceProcess:
    """A running service: its base URL and process."""

    base: str
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid


@contextmanager
def service_process(workdir: Path, port: int, env: dict[str, str] | None = None) -> Iterator[ServiceProcess]:
    """Start the service, wait until it answers ``/healthz``, and stop it (SIGTERM) when the block ends."""
    log = (workdir / "service.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), str(workdir), str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
        cwd=workdir,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the service exited with {process.returncode}: {_tail(workdir)}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the service did not answer within 60 s: {_tail(workdir)}")
            time.sleep(0.1)
        yield ServiceProcess(base, process)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        log.close()


def _tail(workdir: Path) -> str:
    return (workdir / "service.log").read_text(errors="replace")[-2000:]


def main() -> None:
    sys.path.insert(0, str(HERE))
    from synthetic_machines import fitted_scorer

    from vibrasense.config import load_settings
    from vibrasense.serving.app import create_app
    from vibrasense.serving.server import serve

    workdir, port = Path(sys.argv[1]), int(sys.argv[2])
    settings = load_settings(None, workdir=workdir, serving={"host": "127.0.0.1", "port": port})
    serve(create_app(settings, fitted_scorer()), settings, access_log=False, log_level="warning")


if __name__ == "__main__":
    main()
