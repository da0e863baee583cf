"""Throwaway Redis and PostgreSQL servers on free loopback ports, for tests that stop, freeze or restart them.

The shared servers (6379, 5432) are never touched: these are started from the installed binaries
(``redis-server``, ``/usr/lib/postgresql/*/bin``) in a temporary folder, and a test that lacks them skips.
``freeze`` (SIGSTOP) makes a server accept connections and answer nothing, as a hung host does.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from vibrasense.serving.server import free_port


def _wait_listening(port: int, process: subprocess.Popen, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode} before listening on {port}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port} within {timeout} s")


class _Server:
    """A server process that can be stopped, started again on the same port, frozen and thawed."""

    name = "server"
    stop_signal = signal.SIGTERM

    def __init__(self, port: int) -> None:
        self.port = port
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        self.process = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_listening(self.port, self.process, self.name)
        self.ready()

    def ready(self) -> None:
        """Wait until the server answers its protocol (listening may come first)."""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.thaw()
            os.kill(self.server_pid(), self.stop_signal)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None

    def server_pid(self) -> int:
        """The server's own process (not a wrapper such as ``runuser``)."""
        assert self.process is not None
        return self.process.pid

    def freeze(self) -> None:
        os.kill(self.server_pid(), signal.SIGSTOP)

    def thaw(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.server_pid(), signal.SIGCONT)
            os.kill(self.process.pid, signal.SIGCONT)  # runuser stops itself when its child is stopped


class RedisServer(_Server):
    """``redis-server`` without persistence: a restart comes back empty, as a Redis that lost its data."""

    name = "redis-server"

    def command(self) -> list[str]:
        return ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]

    def ready(self) -> None:
        import redis

        client = redis.Redis(port=self.port, socket_timeout=1)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
            finally:
                client.close()


class PostgresServer(_Server):
    """A PostgreSQL cluster with password (SCRAM) logins: user ``postgres``, password :attr:`password`."""

    name = "postgres"
    stop_signal = signal.SIGINT  # "fast" shutdown: clients still connected do not hold it up
    password = "throwaway-pw"

    def __init__(self, port: int, root: Path, binaries: Path) -> None:
        super().__init__(port)
        self.root, self.binaries = root, binaries
        self.data = root / "data"
        as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self._as = as_postgres
        password_file = root / "pw"
        password_file.write_text(self.password + "\n")
        if as_postgres:
            shutil.chown(root, "postgres")
            shutil.chown(password_file, "postgres")
        initdb = [str(binaries / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=scram-sha-256"]
        subprocess.run(
            [*as_postgres, *initdb, f"--pwfile={password_file}"],
            check=True,
            capture_output=True,
        )

    def command(self) -> list[str]:
        return [
            *self._as,
            str(self.binaries / "postgres"),
            "-D",
            str(self.data),
            "-p",
            str(self.port),
            "-k",
            str(self.root),
            "-c",
            "listen_addresses=127.0.0.1",
        ]

    def ready(self) -> None:
        import psycopg

        deadline = time.monotonic() + 15
        while True:
            try:
                psycopg.connect(self.dsn(), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def server_pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def dsn(self, database: str = "postgres", password: str | None = None) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres password={password or self.password} dbname={database}"

    def url(self, database: str = "postgres", password: str | None = None) -> str:
        return f"postgresql+psycopg://postgres:{password or self.password}@127.0.0.1:{self.port}/{database}"


def start_redis() -> RedisServer:
    if shutil.which("redis-server") is None:
        _missing("redis-server is not installed: no throwaway Redis")
    server = RedisServer(free_port())
    server.start()
    return server


def start_postgres(root: Path) -> PostgresServer:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found or (os.geteuid() == 0 and shutil.which("runuser") is None):
        _missing("PostgreSQL binaries (/usr/lib/postgresql/*/bin) are not installed: no throwaway PostgreSQL")
    server = PostgresServer(free_port(), root, Path(found[-1]).parent)
    server.start()
    return server


def _missing(reason: str) -> None:
    """Skip, saying why; in CI (``VIBRASENSE_REQUIRE_SERVERS=1``) fail instead."""
    if os.environ.get("VIBRASENSE_REQUIRE_SERVERS", "") not in ("", "0"):
        pytest.fail(f"{reason} (VIBRASENSE_REQUIRE_SERVERS is set)")
    pytest.skip(reason)
