"""Latest online features of a machine from the Feast online store, tolerating a store that is down.

The service must keep scoring uploaded recordings when the feature store is missing or unreachable, so
this adapter never raises for that: it reports ``None`` features and a status that readiness shows as
"degraded".

A store that fails (its client cannot be built, or a lookup errs) is not asked again by lookups, which
answer its failure at once: with the background probe running (:meth:`OnlineFeatures.start`, the service)
until a probe, every ``probe_interval_s``, finds it back; without it, until a backoff that doubles from
:data:`BACKOFF_FIRST_S` to :data:`BACKOFF_MAX_S` ends. So a store that was down when the service started,
or went down, costs requests nothing and is used again within seconds of coming back, without a restart.
Readiness reads the probe's last answer and never waits on the store; the probe looks up a machine the store
should hold (the last one a lookup found, else the first of the table it serves), so a store that came back
empty says ``empty``, not ``ok``.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Protocol

from vibrasense.config import Settings
from vibrasense.errors import redact

log = logging.getLogger(__name__)

PROBE_MACHINE = "__vibrasense_readiness_probe__"
BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 30.0


class FeatureClient(Protocol):
    """What the service needs of ``vibrasense.store.OnlineFeatureClient`` (``known_machine`` is optional)."""

    def get(self, machine_id: str) -> dict[str, Any] | None:
        """Latest online features of a machine, or ``None`` when it has none."""
        ...


class OnlineFeatures:
    """Builds the store's client when needed and answers ``(features, status)`` without raising (see the module)."""

    def __init__(
        self,
        settings: Settings,
        client: FeatureClient | None = None,
        status_ttl_s: float = 5.0,
        probe_interval_s: float = 2.0,
        probe_timeout_s: float = 5.0,
    ) -> None:
        self.settings = settings
        self.status_ttl_s = status_ttl_s
        self.probe_interval_s = probe_interval_s
        self.probe_timeout_s = probe_timeout_s
        self._client = client
        self._known: str | None = None
        self._witness: str | None = None
        self._lock = threading.Lock()
        self._failures = 0
        self._failure: str | None = None
        self._retry_at = 0.0
        self._status: tuple[float, str] | None = None
        self._probe_started: float | None = None
        self._stop = threading.Event()
        self._prober: threading.Thread | None = None

    # -- lookups ---------------------------------------------------------------------------------------

    def get(self, machine_id: str) -> tuple[dict[str, Any] | None, str]:
        """The latest features of a machine and a status: ``ok``, ``missing`` or why it is unavailable."""
        return self._lookup(machine_id, force=False)

    def _lookup(self, machine_id: str, force: bool) -> tuple[dict[str, Any] | None, str]:
        client = self._available_client(force)
        if isinstance(client, str):
            return None, client
        try:
            features = client.get(machine_id)
        except Exception as error:  # a down server surfaces as driver-specific errors
            return None, self._failed(f"unavailable: {type(error).__name__}: {_short(error)}")
        self._recovered()
        if not features or all(value is None for key, value in features.items() if key != "machine_id"):
            return None, "missing"
        self._witness = machine_id
        return _plain(features), "ok"

    def _available_client(self, force: bool) -> FeatureClient | str:
        """The client, or the failure to answer while the backoff lasts (``force``: try anyway)."""
        if not force and self._backing_off():
            return self._failure  # type: ignore[return-value]
        if self._client is not None:
            return self._client
        with self._lock:
            if self._client is not None:
                return self._client
            if not force and self._backing_off():
                return self._failure  # type: ignore[return-value]
            try:
                from vibrasense.store import OnlineFeatureClient

                client = OnlineFeatureClient(self.settings)
            except ImportError as error:
                return self._failed(f"unavailable: vibrasense.store cannot be imported ({error})", locked=True)
            except Exception as error:  # Feast raises many types for a missing or broken repo
                return self._failed(f"unavailable: {type(error).__name__}: {_short(error)}", locked=True)
            self._known = getattr(client, "known_machine", lambda: None)()
            self._client = client
        return client

    def _backing_off(self) -> bool:
        """Lookups answer the last failure: until the probe succeeds (started), else until the backoff ends."""
        if self._failure is None:
            return False
        return self._prober is not None or time.monotonic() < self._retry_at

    def _failed(self, status: str, locked: bool = False) -> str:
        """Note a failure: the backoff doubles; the status is logged when it changes."""
        if not locked:
            with self._lock:
                return self._failed(status, locked=True)
        self._failures += 1
        delay = min(BACKOFF_FIRST_S * 2 ** (self._failures - 1), BACKOFF_MAX_S)
        self._retry_at = time.monotonic() + delay
        if status != self._failure:
            log.warning("online feature store %s (next try in %.0f s)", status, delay)
        self._failure = status
        return status

    def _recovered(self) -> None:
        if self._failure is None:
            return
        with self._lock:
            if self._failure is not None:
                log.warning("online feature store is back after %d failed tries", self._failures)
            self._failures, self._failure, self._retry_at = 0, None, 0.0

    # -- readiness -------------------------------------------------------------------------------------

    def probe(self) -> str:
        """Look the store up now, whatever the backoff: ``ok``, ``empty: ...`` or why it is ``unavailable``."""
        self._available_client(force=True)
        expected = self._witness or self._known
        _, status = self._lookup(expected or PROBE_MACHINE, force=True)
        if status == "missing":
            if expected is None:
                return "ok"  # it answers; nothing says which machine it should know
            return (
                f"empty: no online features for machine {expected!r}, which it had; run `vibrasense store "
                "materialize` to load them again"
            )
        return status

    def status(self) -> str:
        """``ok``, ``empty: ...`` or why the feature store is unavailable, at once.

        Started (:meth:`start`): the background probe's last answer, or ``unavailable`` when a probe has been
        waiting on the store for over ``probe_timeout_s``. Not started: a probe, cached ``status_ttl_s``.
        """
        if self._prober is None:
            cached = self._status
            if cached is None or time.monotonic() - cached[0] >= self.status_ttl_s:
                cached = (time.monotonic(), self.probe())
                self._status = cached
            return cached[1]
        started, cached = self._probe_started, self._status
        if started is not None and time.monotonic() - started > self.probe_timeout_s:
            return f"unavailable: no answer to a probe for {time.monotonic() - started:.0f} s"
        return cached[1] if cached is not None else "unknown: the first probe has not finished"

    def start(self) -> OnlineFeatures:
        """Probe once now, then in a background thread every ``probe_interval_s``.

        The first probe runs in the caller's thread because it builds the client, and Feast's import brings
        torch: done in the background it would hold the interpreter for seconds while requests are served,
        and race the caller's limit on torch's thread pool (which the caller sets again afterwards).
        """
        if self._prober is None:
            self._record(self._safe_probe())
            self._stop.clear()
            self._prober = threading.Thread(target=self._probe_loop, name="online-probe", daemon=True)
            self._prober.start()
        return self

    def stop(self) -> None:
        """Stop the background probe (a probe stuck on the store is left to end by itself)."""
        self._stop.set()
        self._prober = None

    def _probe_loop(self) -> None:
        while not self._stop.wait(self.probe_interval_s):
            self._probe_started = time.monotonic()
            self._record(self._safe_probe())

    def _safe_probe(self) -> str:
        try:
            return self.probe()
        except Exception as error:  # the probe must outlive any surprise
            return f"unavailable: {type(error).__name__}: {_short(error)}"

    def _record(self, status: str) -> None:
        self._status, self._probe_started = (time.monotonic(), status), None


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
    return redact((str(error).splitlines() or [""])[0][:200])
