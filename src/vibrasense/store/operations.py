"""Open, apply and materialise the feature store.

``materialize`` with no range is incremental: each feature view continues from the end of its last
materialisation, and a view never materialised starts at the earliest row of the source. Feast writes the
online store by upsert on the entity key, so a re-run (after a crash, say) leaves no duplicate. Rows whose
event time lies before a view's last end time (an archive of old recordings ingested late) are loaded with an
explicit range: ``materialize --start``.

A long materialisation runs in windows of event time, oldest first, under a progress bar; each window leaves
the view's end time where a re-run continues. Feast writes a machine once per window it has rows in, so the
windows (about :data:`WINDOW_ROWS` source rows each) are only as many as add at most
:data:`WINDOW_EXTRA_WRITES` to the writes: an archive of many machines gets many, a few machines recorded
over and over get one.

Each window is written through the configured Feast online store's own ``online_write_batch`` (what Feast's
``materialize`` and ``write_to_online_store`` call), with the rows read and deduplicated by
:class:`~vibrasense.store.online_write.OnlineWriter` instead of Feast's Dask job, and the window recorded in
the registry with Feast's ``apply_materialization``, as Feast's ``materialize`` records it.
``benchmarks/bench_materialize.py`` measures both paths on the same table.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from vibrasense.config import Settings
from vibrasense.errors import StoreError
from vibrasense.store.definitions import JOIN_KEY, SOURCE, TIMESTAMP, Definitions, online_columns
from vibrasense.store.online_write import OnlineWriter
from vibrasense.store.repository import (
    CONFIG_FILE,
    check_servers,
    describe_online_store,
    feast_repo_config,
    redact,
    repo_path,
)

log = logging.getLogger(__name__)

WINDOW_ROWS = 10_000
"""Source rows per materialisation window at most: one progress step, and the most work a crash can undo."""
WINDOW_EXTRA_WRITES = 0.1
"""How many more online writes (as a fraction) cutting a materialisation into windows may cost."""


@dataclass(frozen=True)
class Materialization:
    """What one ``materialize`` call loaded into the online store."""

    start: datetime
    end: datetime
    rows: int
    machines: int
    seconds: float
    write_seconds: float
    """Of ``seconds``, those spent inside the online store's own ``online_write_batch``."""

    @property
    def rows_per_second(self) -> float:
        """Source rows in the interval per second of materialisation."""
        return self.rows / self.seconds if self.seconds > 0 else float("inf")


def open_store(settings: Settings) -> Any:
    """A ``feast.FeatureStore`` on the generated repository, with the passwords from the settings."""
    from feast import FeatureStore

    root = repo_path(settings)
    if not (root / CONFIG_FILE).is_file():
        raise StoreError(f"no feature repository at {root}; run `vibrasense store init` and `vibrasense store apply`")
    check_servers(settings)
    try:
        return FeatureStore(repo_path=str(root), config=feast_repo_config(settings, reveal_password=True))
    except Exception as error:  # Feast raises many types for a bad configuration
        raise StoreError(redact(f"cannot open the feature store at {root}: {error}", settings)) from None


def served_source(settings: Settings, store: Any) -> Path:
    """The Parquet file the registered source reads: what the store serves, as its registry says."""
    from feast.errors import DataSourceObjectNotFoundException

    with as_store_error(settings, "registry lookup"):
        try:
            source = store.get_data_source(SOURCE)
        except DataSourceObjectNotFoundException:
            raise StoreError(
                f"the feature store {repo_path(settings)} has no source {SOURCE!r}; run `vibrasense store apply`"
            ) from None
    return Path(source.path)


def registered_views(settings: Settings, store: Any) -> dict[str, Any]:
    """The registered feature views by name."""
    with as_store_error(settings, "registry lookup"):
        return {view.name: view for view in store.list_feature_views()}


def check_source(parquet: Path, columns: Sequence[str]) -> pd.DataFrame:
    """Check the Parquet schema against the feature ``columns``; returns its machine ids and UTC event timestamps.

    Raises :class:`StoreError` naming the file and every missing or non-numeric column.
    """
    if not parquet.is_file():
        raise StoreError(f"{parquet}: the feature table does not exist; run `vibrasense features <recordings>` first")
    try:
        schema = pq.read_schema(parquet)
    except Exception as error:
        raise StoreError(f"{parquet}: not a readable Parquet file ({error})") from None
    missing = [c for c in (JOIN_KEY, TIMESTAMP, *columns) if c not in schema.names]
    if missing:
        raise StoreError(
            f"{parquet}: the feature table lacks columns {missing} that the feature definitions need; re-run "
            "`vibrasense features` with the same features configuration, then `vibrasense store apply`"
        )
    wrong = [
        f"{c} ({schema.field(c).type})"
        for c in columns
        if not (pa.types.is_floating(schema.field(c).type) or pa.types.is_integer(schema.field(c).type))
    ]
    if not pa.types.is_timestamp(schema.field(TIMESTAMP).type):
        wrong.append(f"{TIMESTAMP} ({schema.field(TIMESTAMP).type}, not a timestamp)")
    if wrong:
        raise StoreError(f"{parquet}: columns of the wrong type for the feature definitions: {wrong}")
    keys = pd.read_parquet(parquet, columns=[JOIN_KEY, TIMESTAMP])
    keys[TIMESTAMP] = pd.to_datetime(keys[TIMESTAMP], utc=True)
    return keys


def apply(settings: Settings) -> list[str]:
    """Register the repository's definitions (entity, source, views, services); returns their names."""
    definitions = Definitions.load(repo_path(settings))
    check_source(definitions.source, definitions.feature_columns)
    objects = definitions.feast_objects()
    store = open_store(settings)
    with _quiet(), as_store_error(settings, "apply"):
        store.apply(objects)
    return [o.name for o in objects]


def materialize(
    settings: Settings, start: datetime | None = None, end: datetime | None = None, progress: bool | None = None
) -> Materialization:
    """Load the latest features of every machine into the online store; incremental without ``start``.

    ``progress``: show a progress bar (``None``: when stderr is a terminal).
    """
    store = open_store(settings)
    views = {name: view for name, view in registered_views(settings, store).items() if view.online}
    if not views:
        raise StoreError(f"the feature store {repo_path(settings)} has no online views; run `vibrasense store apply`")
    parquet = served_source(settings, store)
    columns = [c for view in views.values() for vector in online_columns(view).values() for c in vector]
    keys = check_source(parquet, list(dict.fromkeys(columns)))
    if keys.empty:
        raise StoreError(f"{parquet}: the feature table has no rows; nothing to materialise")
    stamps = keys[TIMESTAMP]
    end = _aware(end) if end else max(datetime.now(UTC), stamps.max().to_pydatetime() + timedelta(seconds=1))
    ordered = keys.assign(**{TIMESTAMP: stamps.dt.tz_convert(None)}).sort_values(TIMESTAMP, kind="stable")
    times, machines = ordered[TIMESTAMP].to_numpy(), ordered[JOIN_KEY].to_numpy()
    earliest = stamps.min().to_pydatetime()
    plan = [
        (name, _windows(times, machines, _aware(start or view.most_recent_end_time or earliest), end))
        for name, view in views.items()
    ]
    first_start = min([end, *(windows[0][0] for _, windows in plan if windows)])
    started = time.perf_counter()
    total = sum(rows for _, windows in plan for *_, rows in windows)
    writer = OnlineWriter(store, parquet)
    with tqdm(total=total, unit="row", desc="materialise", disable=None if progress is None else not progress) as bar:
        for name, windows in plan:
            for window_start, window_end, rows in windows:
                with as_store_error(settings, "materialize"):
                    writer.write(views[name], window_start, window_end)
                    store.registry.apply_materialization(views[name], store.project, window_start, window_end)
                bar.update(rows)
    seconds = time.perf_counter() - started
    in_range = keys[(stamps >= first_start) & (stamps < end)]
    result = Materialization(
        first_start, end, len(in_range), in_range[JOIN_KEY].nunique(), seconds, writer.write_seconds
    )
    log.info(
        "materialised %d rows of %d machines into the %s in %.2f s (%.2f s in the online store's write)",
        result.rows,
        result.machines,
        describe_online_store(settings),
        seconds,
        result.write_seconds,
    )
    return result


def _windows(
    times: np.ndarray, machines: np.ndarray, start: datetime, end: datetime
) -> list[tuple[datetime, datetime, int]]:
    """``[start, end)`` as windows ``(start, end, rows)`` over the sorted UTC event ``times`` of ``machines``."""
    if start >= end:
        return []
    lo, hi = np.searchsorted(times, [np.datetime64(_naive(start)), np.datetime64(_naive(end))])
    in_range, owners = times[lo:hi], machines[lo:hi]
    if not len(in_range):
        return [(start, end, 0)]  # no row, but the view's end time still moves on
    writes_at_once = len(set(owners))
    count = max(1, len(in_range) // WINDOW_ROWS)
    while True:
        cuts = sorted({in_range[len(in_range) * i // count] for i in range(1, count)} - {in_range[0]})
        window = np.searchsorted(np.array(cuts, dtype=in_range.dtype), in_range, side="right")
        writes = len(set(zip(window.tolist(), owners.tolist(), strict=True)))
        if count == 1 or writes <= writes_at_once * (1 + WINDOW_EXTRA_WRITES):
            break
        count //= 2
    edges = [start, *(pd.Timestamp(cut).tz_localize(UTC).to_pydatetime() for cut in cuts), end]
    rows = np.bincount(window, minlength=len(edges) - 1)
    return [(a, b, int(n)) for (a, b), n in zip(itertools.pairwise(edges), rows, strict=True)]


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _naive(moment: datetime) -> datetime:
    """UTC without a zone, as numpy compares times."""
    return moment.astimezone(UTC).replace(tzinfo=None)


@contextlib.contextmanager
def _quiet() -> Any:
    """Keep Feast's progress prints and bars off the console; they go to the debug log."""
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        yield
    if sink.getvalue().strip():
        log.debug("feast: %s", sink.getvalue().strip())


@contextlib.contextmanager
def as_store_error(settings: Settings, action: str) -> Any:
    """Feast's many error types as one :class:`StoreError` naming the store, with passwords redacted."""
    try:
        yield
    except StoreError:
        raise
    except Exception as error:
        raise StoreError(
            redact(f"feature store {action} failed on the {describe_online_store(settings)}: {error}", settings)
        ) from None
