"""A machine's health (index, alarm, remaining useful life) from the tables ``vibrasense prognose`` writes.

``vibrasense prognose <run>`` writes ``<workdir>/prognostics/<machine>_prognosis.csv``, one row per snapshot.
``PrognosisReader`` finds the table of a machine (the file named after it, else any table whose
``machine_id`` column names it), parses it once per version of the file (modification time and size), and
answers the latest usable snapshot with the series to plot. A table that cannot be read is the server's
data at fault, not the request: ``PrognosisUnreadable`` (503).
"""

from __future__ import annotations

import logging
import math
import threading
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from vibrasense.errors import StoreError
from vibrasense.prognostics.health import HealthSettings
from vibrasense.serving.schemas import HealthSeries, HealthSnapshot, MachineHealth

log = logging.getLogger(__name__)

SUFFIX = "_prognosis.csv"
MAX_POINTS = 500
"""Points of the plotted series, at most."""
REQUIRED = (
    "machine_id",
    "event_timestamp",
    "sensor_fault",
    "health_index",
    "smoothed",
    "alarm",
    "rul_hours",
    "rul_low_hours",
    "rul_high_hours",
    "rul_method",
)
NUMERIC = ("health_index", "smoothed", "threshold", "rul_hours", "rul_low_hours", "rul_high_hours")
FLAGS = ("sensor_fault", "above", "alarm", "above_alert", "alert")

FileVersion = tuple[int, int]  # (mtime_ns, size)


class PrognosisUnreadable(StoreError):
    """A machine's prognosis table exists but cannot be used (503, as every store error)."""


class PrognosisReader:
    """Latest health of a machine from ``folder/*_prognosis.csv``; each file is parsed once per version."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()
        self._parsed: dict[Path, tuple[FileVersion, MachineHealth | PrognosisUnreadable]] = {}
        self._owners: dict[Path, tuple[FileVersion, str | None]] = {}

    def health(self, machine_id: str) -> MachineHealth | None:
        """The machine's health, or None when no table names it; raises ``PrognosisUnreadable``."""
        named = self.folder / f"{machine_id.replace('/', '_')}{SUFFIX}"
        if named.is_file():
            health = self._parse(named)
            if health.machine_id == machine_id:
                return health
        for path in sorted(self.folder.glob(f"*{SUFFIX}")) if self.folder.is_dir() else []:
            if path != named and self._owner(path) == machine_id:
                return self._parse(path)
        return None

    def _parse(self, path: Path) -> MachineHealth:
        version = _version(path)
        with self._lock:
            cached = self._parsed.get(path)
        if cached is None or cached[0] != version:
            try:
                result: MachineHealth | PrognosisUnreadable = read_health(path)
            except PrognosisUnreadable as error:
                log.warning("%s", error)
                result = error
            with self._lock:
                self._parsed[path] = (version, result)
            cached = (version, result)
        if isinstance(cached[1], PrognosisUnreadable):
            raise cached[1]
        return cached[1]

    def _owner(self, path: Path) -> str | None:
        """The machine a table is about (its first row), or None if it cannot be read."""
        try:
            version = _version(path)
        except PrognosisUnreadable:
            return None
        with self._lock:
            cached = self._owners.get(path)
        if cached is not None and cached[0] == version:
            return cached[1]
        try:
            first = pd.read_csv(path, usecols=["machine_id"], nrows=1, dtype=str)["machine_id"]
            owner = str(first.iloc[0]) if len(first) else None
        except (OSError, UnicodeDecodeError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError):
            owner = None
        with self._lock:
            self._owners[path] = (version, owner)
        return owner


def _version(path: Path) -> FileVersion:
    try:
        stat = path.stat()
    except OSError as error:
        raise PrognosisUnreadable(f"prognosis table {path.name} cannot be read: {error}") from None
    return stat.st_mtime_ns, stat.st_size


def read_health(path: Path, max_points: int = MAX_POINTS) -> MachineHealth:
    """Parse one prognosis table; raises ``PrognosisUnreadable`` naming what is wrong with it."""

    def unreadable(reason: str) -> PrognosisUnreadable:
        return PrognosisUnreadable(
            f"prognosis table {path.name} is unusable ({reason}); rerun `vibrasense prognose <run>` to rewrite it"
        )

    version = _version(path)
    try:
        table = pd.read_csv(path, dtype={"machine_id": str, "rul_method": str})
    except (OSError, UnicodeDecodeError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise unreadable(f"not a readable CSV: {str(error).strip()[:200]}") from None
    missing = [c for c in REQUIRED if c not in table.columns]
    if missing:
        raise unreadable(f"missing columns {', '.join(missing)}")
    if table.empty:
        raise unreadable("no snapshot")
    machines = table["machine_id"].dropna().unique()
    if len(machines) != 1:
        raise unreadable(f"expected one machine_id, found {len(machines)}")
    parsers = {"event_timestamp": lambda v: pd.to_datetime(v, utc=True, format="ISO8601")}
    parsers |= {column: lambda v: pd.to_numeric(v, errors="raise").astype(float) for column in NUMERIC}
    parsers |= {column: _flags for column in FLAGS}
    for column, parse in parsers.items():
        if column not in table.columns:
            continue
        try:
            table[column] = parse(table[column])
        except (ValueError, TypeError) as error:
            message = str(error).strip().splitlines()[0].split(". You might")[0]  # pandas' hints are noise here
            raise unreadable(f"column {column}: {message[:160]}") from None
    if table["event_timestamp"].isna().any():
        raise unreadable("a snapshot has no event_timestamp")
    table = table.sort_values("event_timestamp", kind="stable").reset_index(drop=True)
    usable = table[~table["sensor_fault"] & np.isfinite(table["smoothed"]) & np.isfinite(table["health_index"])]
    if usable.empty:
        raise unreadable("no snapshot without a sensor fault")
    last = usable.iloc[-1]
    alarms = usable.index[usable["alarm"].to_numpy()]
    return MachineHealth(
        machine_id=str(machines[0]),
        latest=HealthSnapshot(
            event_timestamp=last["event_timestamp"].to_pydatetime(),
            health_index=float(last["health_index"]),
            smoothed=float(last["smoothed"]),
            threshold=_finite(last["threshold"]) if "threshold" in table.columns else None,
            alarm=bool(last["alarm"]),
            sensor_fault=bool(last["sensor_fault"]),
            rul_hours=_finite(last["rul_hours"]),
            rul_low_hours=_finite(last["rul_low_hours"]),
            rul_high_hours=_finite(last["rul_high_hours"]),
            rul_method=str(last["rul_method"]) if pd.notna(last["rul_method"]) else "unknown",
        ),
        sensor_fault_now=bool(table["sensor_fault"].iloc[-1]),
        onset=_onset(usable),
        first_alarm=usable.loc[alarms[0], "event_timestamp"].to_pydatetime() if len(alarms) else None,
        snapshots=len(table),
        sensor_faults=int(table["sensor_fault"].sum()),
        series=_series(table, max_points),
        source=path.name,
        updated_at=datetime.fromtimestamp(version[0] / 1e9, UTC),
    )


def _flags(values: pd.Series) -> pd.Series:
    """True/False columns as bool; anything else is a corrupt table."""
    if values.dtype == bool:
        return values
    words = values.astype(str).str.strip().str.lower()
    known = {"true": True, "1": True, "1.0": True, "false": False, "0": False, "0.0": False}
    if not words.isin(list(known)).all():
        bad = values[~words.isin(list(known))].iloc[0]
        raise ValueError(f"{bad!r} is not True or False")
    return words.map(known).astype(bool)


def _finite(value: object) -> float | None:
    number = float(value)  # type: ignore[arg-type]
    return number if math.isfinite(number) else None


def _onset(usable: pd.DataFrame) -> datetime | None:
    """First above-threshold snapshot of the window that raised the first alert (``prognostics.health``), or of
    the first alarm in a table without alerts."""
    state, over = ("alert", "above_alert") if "alert" in usable.columns else ("alarm", "above")
    alarm = usable[state].to_numpy()
    if not alarm.any():
        return None
    first = int(np.argmax(alarm))
    above = usable[over].to_numpy() if over in usable.columns else alarm
    start = max(0, first - HealthSettings().alarm_n + 1)
    window = np.flatnonzero(above[start : first + 1])
    position = start + int(window[0]) if window.size else first
    return usable["event_timestamp"].iloc[position].to_pydatetime()


def _series(table: pd.DataFrame, max_points: int) -> HealthSeries:
    """Every snapshot, or at most ``max_points`` buckets: each the bucket's last point, alarm if any was."""
    ends = np.linspace(0, len(table), min(len(table), max_points) + 1).astype(int)
    rows = ends[1:] - 1
    alarm = np.maximum.reduceat(table["alarm"].to_numpy(), ends[:-1]) if len(table) else np.array([], bool)
    smoothed = table["smoothed"].to_numpy()[rows]
    return HealthSeries(
        timestamps=[t.to_pydatetime() for t in table["event_timestamp"].iloc[rows]],
        smoothed=[float(v) if math.isfinite(v) else None for v in smoothed],
        alarm=[bool(a) for a in alarm],
    )
