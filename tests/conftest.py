"""Shared fixtures: where the real data lives, the servers the integration tests use, throwaway ones, and a
headless browser."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from throwaway_servers import PostgresServer, RedisServer, start_postgres, start_redis

SHARED_DATA = Path(
    os.environ.get("VIBRASENSE_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
).resolve()
POSTGRES = ("127.0.0.1", 5432)
REDIS = ("127.0.0.1", 6379)
MQTT = ("127.0.0.1", 1883)
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


def _reachable(address: tuple[str, int]) -> bool:
    try:
        socket.create_connection(address, timeout=1).close()
    except OSError:
        return False
    return True


def _require(flag: str) -> bool:
    return os.environ.get(flag, "") not in ("", "0")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real recordings in ../shared/data (skips where that folder is absent)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (set VIBRASENSE_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture
def dcase_subset(tmp_path: Path, shared_data: Path) -> Path:
    """A DCASE-layout folder under ``tmp_path / "recordings"`` linking the shared DCASE 2020 clips: the first 16
    normal training clips and one anomalous test clip; returns that anomalous clip (in the shared data)."""
    dcase = shared_data / "dcase2020" / "unknown_machine"
    recordings = tmp_path / "recordings" / "unknown_machine"
    (recordings / "train").mkdir(parents=True)
    (recordings / "test").mkdir()
    for clip in sorted((dcase / "train").glob("*.wav"))[:16]:
        (recordings / "train" / clip.name).symlink_to(clip)
    anomaly = next((dcase / "test").glob("anomaly_*.wav"))
    (recordings / "test" / anomaly.name).symlink_to(anomaly)
    return anomaly


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip server tests, with the reason, where no server runs; in CI (strict) they run and fail."""
    if _require("VIBRASENSE_REQUIRE_SERVERS"):
        return
    for marker, address in (("postgres", POSTGRES), ("redis", REDIS), ("mqtt", MQTT)):
        if _reachable(address):
            continue
        reason = f"needs the {marker} server at {address[0]}:{address[1]}, which is not reachable here"
        for item in items:
            if marker in item.keywords:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture
def throwaway_redis() -> Iterator[RedisServer]:
    """A Redis of the test's own on a free port, to stop, freeze and restart (never the shared one)."""
    server = start_redis()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def throwaway_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL of the module's own on a free port, with password logins, to freeze or stop."""
    root = Path(tempfile.mkdtemp(prefix="vibrasense-pg-"))  # not under pytest's tmp: the postgres user reads it
    try:
        server = start_postgres(root)
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    """Headless Chromium driven by selenium; skips (or fails where the browser is required) when absent."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        reason = f"{', '.join(missing)} absent: run scripts/install-system-deps.sh as root"
        if _require("VIBRASENSE_REQUIRE_BROWSER"):
            pytest.fail(reason)
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(tmp_path / "chromium-profile", ignore_errors=True)
