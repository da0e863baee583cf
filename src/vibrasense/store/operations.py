"""Open, apply and materialise the feature store.

``materialize`` with no range is incremental: each feature view continues from the end of its last
materialisation, and a view never materialised starts at the earliest row of the source. Feast writes the
online store by upsert on the entity key, so a re-run (after a crash, say) leaves no duplicate. Rows whose
event time lies before a view's last end time (an archive of old recordings ingested late) are loaded with an
explicit range: ``materialize --start``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from vibrasense.config import Settings
from vibrasense.errors import StoreError
from vibrasense.store.definitions import JOIN_KEY, TIMESTAMP, view_features
from vibrasense.store.repository import (
    CONFIG_FILE,
    DEFINITIONS_FILE,
    check_servers,
    describe_online_store,
    redact,
    repo_config,
    repo_path,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Materialization:
    """What one ``materialize`` call loaded into the online store."""

    start: datetime
    end: datetime
    rows: int
    machines: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        """Source rows in the interval per second of materialisation."""
        return self.rows / self.seconds if self.seconds > 0 else float("inf")


def open_store(settings: Settings) -> Any:
    """A ``feast.FeatureStore`` on the generated repository, with the password from the settings."""
    from feast import FeatureStore, RepoConfig

    root = repo_path(settings)
    if not (root / CONFIG_FILE).is_file():
        raise StoreError(f"no feature repository at {root}; run `vibrasense store init` and `vibrasense store apply`")
    check_servers(settings)
    try:
        config = RepoConfig(repo_path=root, **repo_config(settings, reveal_password=True))
        return FeatureStore(repo_path=str(root), config=config)
    except Exception as error:  # Feast raises many types for a bad configuration
        raise StoreError(redact(f"cannot open the feature store at {root}: {error}", settings)) from None


def source_path(settings: Settings) -> Path:
    """The Parquet file the generated definitions read."""
    definitions = _load_definitions(repo_path(settings) / DEFINITIONS_FILE)
    return Path(definitions.recording_features.path)


def check_source(settings: Settings, parquet: Path) -> pd.DataFrame:
    """Check the Parquet schema against the definitions; returns its machine ids and UTC event timestamps.

    Raises :class:`StoreError` naming the file and every missing or non-numeric column.
    """
    if not parquet.is_file():
        raise StoreError(f"{parquet}: the feature table does not exist; run `vibrasense features <recordings>` first")
    try:
        schema = pq.read_schema(parquet)
    except Exception as error:
        raise StoreError(f"{parquet}: not a readable Parquet file ({error})") from None
    expected = [JOIN_KEY, TIMESTAMP, *(f for features in view_features(settings).values() for f in features)]
    missing = [c for c in expected if c not in schema.names]
    if missing:
        raise StoreError(
            f"{parquet}: the feature table lacks columns {missing} that the feature definitions need; re-run "
            "`vibrasense features` with the same features configuration, then `vibrasense store apply`"
        )
    import pyarrow as pa

    wrong = [
        f"{c} ({schema.field(c).type})"
        for features in view_features(settings).values()
        for c in features
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
    """Register the generated definitions (entity, source, views, services); returns their names."""
    root = repo_path(settings)
    definitions = _load_definitions(root / DEFINITIONS_FILE)
    check_source(settings, Path(definitions.recording_features.path))
    from feast import Entity, FeatureService, FeatureView, FileSource

    objects = [
        value
        for value in vars(definitions).values()
        if isinstance(value, Entity | FeatureView | FeatureService | FileSource)
    ]
    store = open_store(settings)
    with _quiet(), as_store_error(settings, "apply"):
        store.apply(objects)
    return [getattr(o, "name", "") for o in objects]


def materialize(settings: Settings, start: datetime | None = None, end: datetime | None = None) -> Materialization:
    """Load the latest features of every machine into the online store; incremental without ``start``."""
    store = open_store(settings)
    with as_store_error(settings, "materialize"):
        views = [v.name for v in store.list_feature_views()]
    if not views:
        raise StoreError(f"the feature store {repo_path(settings)} has no feature views; run `vibrasense store apply`")
    parquet = source_path(settings)
    keys = check_source(settings, parquet)
    if keys.empty:
        raise StoreError(f"{parquet}: the feature table has no rows; nothing to materialise")
    stamps = keys[TIMESTAMP]
    end = _aware(end) if end else max(datetime.now(UTC), stamps.max().to_pydatetime() + timedelta(seconds=1))
    started = time.perf_counter()
    first_start = end
    with _quiet(), as_store_error(settings, "materialize"):
        for name in views:
            view = store.get_feature_view(name)
            view_start = _aware(start or view.most_recent_end_time or stamps.min().to_pydatetime())
            first_start = min(first_start, view_start)
            if view_start < end:
                store.materialize(start_date=view_start, end_date=end, feature_views=[name])
    seconds = time.perf_counter() - started
    in_range = keys[(stamps >= first_start) & (stamps < end)]
    result = Materialization(first_start, end, len(in_range), in_range[JOIN_KEY].nunique(), seconds)
    log.info(
        "materialised %d rows of %d machines into the %s in %.2f s",
        result.rows,
        result.machines,
        describe_online_store(settings),
        seconds,
    )
    return result


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _load_definitions(path: Path) -> Any:
    """Import the generated definitions file as a module."""
    if not path.is_file():
        raise StoreError(f"{path} does not exist; run `vibrasense store init`")
    spec = importlib.util.spec_from_file_location(f"vibrasense_feature_repo_{abs(hash(path))}", path)
    if spec is None or spec.loader is None:
        raise StoreError(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        raise StoreError(f"{path}: the feature definitions do not load ({type(error).__name__}: {error})") from None
    return module


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
