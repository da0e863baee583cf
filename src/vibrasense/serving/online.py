"""Latest online features of a machine from the Feast online store, tolerating a store that is down.

The service must keep scoring uploaded recordings when the feature store is missing or unreachable, so
this adapter never raises for that: it reports ``None`` features and a status that readiness shows as
"degraded".
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Protocol

from vibrasense.config import Settings

log = logging.getLogger(__name__)

PROBE_MACHINE = "__vibrasense_readiness_probe__"


class FeatureClient(Protocol):
    """What the service needs of ``vibrasense.store.OnlineFeatureClient``."""

    def get(self, machine_id: str) -> dict[str, Any] | None:
        """Latest online features of a machine, or ``None`` when it has none."""
        ...


class OnlineFeatures:
    """Builds the store's client on first use and answers ``(features, status)`` without raising."""

    def __init__(self, settings: Settings, client: FeatureClient | None = None, status_ttl_s: float = 5.0) -> None:
        self.settings = settings
        self._client = client
        self._init_error: str | None = None
        self._lock = threading.Lock()
        self._status: tuple[float, str] | None = None
        self.status_ttl_s = status_ttl_s

    def _get_client(self) -> FeatureClient | None:
        if self._client is not None or self._init_error is not None:
            return self._client
        with self._lock:
            if self._client is None and self._init_error is None:
                try:
                    from vibrasense.store import OnlineFeatureClient

                    self._client = OnlineFeatureClient(self.settings)
                except ImportError as error:
                    self._init_error = f"unavailable: vibrasense.store cannot be imported ({error})"
                except Exception as error:  # Feast raises many types for a missing or broken repo
                    self._init_error = f"unavailable: {type(error).__name__}: {_short(error)}"
                if self._init_error:
                    log.warning("online feature store %s", self._init_error)
        return self._client

    def get(self, machine_id: str) -> tuple[dict[str, Any] | None, str]:
        """The latest features of a machine and a status: ``ok``, ``missing`` or why it is unavailable."""
        client = self._get_client()
        if client is None:
            return None, self._init_error or "unavailable"
        try:
            features = client.get(machine_id)
        except Exception as error:  # a down server surfaces as driver-specific errors
            status = f"unavailable: {type(error).__name__}: {_short(error)}"
            self._status = (time.monotonic(), status)
            return None, status
        if not features or all(value is None for key, value in features.items() if key != "machine_id"):
            return None, "missing"
        return _plain(features), "ok"

    def status(self) -> str:
        """``ok`` or why the feature store is unavailable; cached for ``status_ttl_s`` seconds."""
        cached = self._status
        if cached is not None and time.monotonic() - cached[0] < self.status_ttl_s:
            return cached[1]
        _, status = self.get(PROBE_MACHINE)
        status = "ok" if status == "missing" else status
        self._status = (time.monotonic(), status)
        return status


def _plain(features: dict[str, Any]) -> dict[str, Any]:
    """JSON-friendly values: numpy scalars become Python numbers, timestamps ISO strings."""
    plain: dict[str, Any] = {}
    for key, value in features.items():
        if hasattr(value, "item") and callable(value.item):
            value = value.item()
        elif hasattr(value, "isoformat"):
            value = value.isoformat()
        plain[str(key)] = value
    return plain


def _short(error: Exception) -> str:
    return (str(error).splitlines() or [""])[0][:200]
