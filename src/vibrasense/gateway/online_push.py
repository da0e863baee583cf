"""Fresh features in the Feast online store: each machine's latest snapshot, pushed in batches.

Featurising and writing every snapshot would cost more than scoring it, and the online store keeps only a
machine's latest row anyway. So the gateway hands each scored snapshot here, which keeps the newest per
machine and, every ``gateway.online_push_s``, featurises those (the columns the registered online view's
vectors hold) and writes them with Feast's ``write_to_online_store``, one call. A store that is missing
or down costs the gateway nothing: the rows wait (newest only) and :attr:`status` says why. Without a
feature repository in the work directory (no ``vibrasense store init``) pushing is off.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vibrasense.config import Settings
from vibrasense.errors import redact
from vibrasense.features.featurize import featurize
from vibrasense.features.spec import FeatureSpec
from vibrasense.store.definitions import ONLINE_VIEW, online_columns

log = logging.getLogger(__name__)

RETRY_S = 10.0
"""A store that failed is tried again after this."""


@dataclass(frozen=True)
class Snapshot:
    """A machine's samples (one channel) at a time."""

    samples: np.ndarray
    sample_rate: float
    at: datetime


class OnlinePusher:
    """Keeps each machine's newest snapshot and writes their features to the online store in the background."""

    def __init__(self, settings: Settings, on_push: Any = None) -> None:
        self.settings = settings
        self.interval_s = settings.gateway.online_push_s
        self.on_push = on_push
        self.status = "unknown: nothing pushed yet"
        self.pushed = 0
        self._pending: dict[str, Snapshot] = {}
        self._lock = threading.Lock()
        self._store: Any = None
        self._vectors: dict[str, tuple[str, ...]] = {}
        self._retry_at = 0.0
        self._repository = Path()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="online-push", daemon=True)

    def start(self) -> OnlinePusher:
        """Push every ``online_push_s`` until :meth:`stop`.

        Feast is imported here, in the caller's thread: imported by the pusher it would hold the interpreter
        for seconds while messages are scored (as :class:`~vibrasense.serving.online.OnlineFeatures` says).
        """
        from vibrasense.store.repository import CONFIG_FILE, repo_path

        self._repository = repo_path(self.settings) / CONFIG_FILE
        self._thread.start()
        return self

    def stop(self) -> None:
        """Push what is pending once more, then stop."""
        self._stop.set()
        self._thread.join(30)

    def add(self, machine_id: str, snapshot: Snapshot) -> None:
        """Queue a machine's snapshot, replacing an older one not yet pushed."""
        with self._lock:
            self._pending[machine_id] = snapshot

    @property
    def degraded(self) -> bool:
        """Whether the last push (or opening the store) failed."""
        return self.status.startswith("unavailable")

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.flush()
        self.flush()

    def flush(self) -> int:
        """Featurise and write what is pending now; returns the rows written (0 when the store is down)."""
        with self._lock:
            pending, self._pending = self._pending, {}
        if not self._repository.is_file():
            self.status = f"off: no feature repository {self._repository} (`vibrasense store init`)"
            return 0  # nothing to keep for a store that is not there
        if not pending or time.monotonic() < self._retry_at:
            self._requeue(pending)
            return 0
        try:
            store = self._open()
            frame = _frame(pending, self._vectors, FeatureSpec.from_settings(self.settings))
            store.write_to_online_store(ONLINE_VIEW, df=frame)
        except Exception as error:  # Feast and its stores raise many types; the gateway must go on
            self._requeue(pending)
            self._store, self._retry_at = None, time.monotonic() + RETRY_S
            status = f"unavailable: {type(error).__name__}: {redact(str(error).splitlines()[0] if str(error) else '')}"
            if status != self.status:
                log.warning("online feature store %s; features wait for it (newest per machine)", status)
            self.status = status
            self._count("failed", len(pending))
            return 0
        if self.status != "ok":
            log.info("online feature store: pushing features of the latest snapshots")
        self.status = "ok"
        self.pushed += len(pending)
        self._count("ok", len(pending))
        return len(pending)

    def _open(self) -> Any:
        if self._store is None:
            from vibrasense.store import open_store

            store = open_store(self.settings)
            self._vectors = online_columns(store.get_feature_view(ONLINE_VIEW))
            self._store = store
        return self._store

    def _requeue(self, pending: dict[str, Snapshot]) -> None:
        with self._lock:
            for machine_id, snapshot in pending.items():
                self._pending.setdefault(machine_id, snapshot)  # a newer snapshot that came meanwhile wins

    def _count(self, outcome: str, rows: int) -> None:
        if self.on_push is not None:
            self.on_push(outcome, rows)


def _frame(pending: dict[str, Snapshot], vectors: dict[str, tuple[str, ...]], spec: FeatureSpec) -> pd.DataFrame:
    """A row per machine: its snapshot's features as the online view's vectors (NaN where one cannot be had)."""
    columns = list(dict.fromkeys(c for names in vectors.values() for c in names))
    rows = []
    for machine_id, snapshot in pending.items():
        values = featurize(snapshot.samples, snapshot.sample_rate, spec, columns=columns, logmel=False, strict=False)
        features = values.values
        row = {field: [float(features.get(c, np.nan)) for c in names] for field, names in vectors.items()}
        rows.append({"machine_id": machine_id, "event_timestamp": pd.Timestamp(snapshot.at), **row})
    return pd.DataFrame(rows)
