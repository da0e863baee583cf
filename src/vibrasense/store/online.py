"""Online lookups: a machine's latest features from the Feast online store, in well under a millisecond.

``OnlineFeatureClient.get`` reads each feature view through the configured Feast online store's own
``online_read`` (the call ``get_online_features`` makes underneath), with the entity key and the feature
views resolved once at start-up instead of per request. ``get_online_features`` is what Feast users call;
``benchmarks/bench_online_features.py`` measures both against a raw query of the same row.

This reads below Feast's public API (its online store objects, Redis client and key layout, protobuf types),
which is why ``pyproject.toml`` pins Feast to one minor version; the store tests check every answer
against ``get_online_features``.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from vibrasense.config import Settings
from vibrasense.errors import StoreError
from vibrasense.store.definitions import JOIN_KEY, SERVICES
from vibrasense.store.operations import as_store_error, open_store, registered_views, served_source
from vibrasense.store.repository import CONNECT_TIMEOUT_S, repo_path

LOOKUP_TIMEOUT_S = 1.0
"""A Redis lookup (connect, send, answer) fails after this: a down or frozen server costs a request little."""


class OnlineFeatureClient:
    """Latest online features of one machine, or ``None`` when it has none (never nulls that look like data)."""

    def __init__(self, settings: Settings) -> None:
        from feast.infra.online_stores.helpers import get_online_store_from_config

        self.settings = settings
        if settings.store.online_store.type == "postgres":
            # Feast's PostgreSQL online store passes no connect timeout; libpq reads this one from the environment
            os.environ.setdefault("PGCONNECT_TIMEOUT", str(int(CONNECT_TIMEOUT_S)))
        self.store = open_store(settings)
        registered = registered_views(settings, self.store)
        wanted = list(dict.fromkeys(name for members in SERVICES.values() for name in members))
        missing = [name for name in wanted if name not in registered]
        if missing:
            raise StoreError(
                f"the feature store {repo_path(settings)} lacks the feature views {missing}; "
                "run `vibrasense store apply` and `vibrasense store materialize`"
            )
        self.views = [(registered[name], [feature.name for feature in registered[name].features]) for name in wanted]
        self.online_store = get_online_store_from_config(self.store.config.online_store)
        self._services: dict[str, Any] = {}
        self._redis = None
        if settings.store.online_store.type == "redis":
            with as_store_error(settings, "lookup"):
                self._redis = _RedisReader(self.store.config, self.online_store, self.views)

    def get(self, machine_id: str) -> dict[str, Any] | None:
        """``{"machine_id", "event_timestamp", <feature>: value, ...}``, or ``None`` for a machine with no features."""
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey
        from feast.protos.feast.types.Value_pb2 import Value

        key = EntityKey(join_keys=[JOIN_KEY], entity_values=[Value(string_val=machine_id)])
        row: dict[str, Any] = {}
        latest: datetime | None = None
        with as_store_error(self.settings, "lookup"):
            read = self._redis.read(key) if self._redis else self._read_each_view(key)
        for (_, features), (timestamp, values) in zip(self.views, read, strict=True):
            if values is None:
                continue
            decoded = {name: _decode(values.get(name)) for name in features}
            if all(value is None for value in decoded.values()):
                continue  # Redis answers an unknown key with empty values and an epoch timestamp
            row |= decoded
            if timestamp is not None and (latest is None or timestamp > latest):
                latest = timestamp
        if not row:
            return None
        return {JOIN_KEY: machine_id, "event_timestamp": latest.isoformat() if latest else None, **row}

    def known_machine(self) -> str | None:
        """A machine of the table the store serves (its first row), for probing whether the store holds features."""
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(served_source(self.settings, self.store), columns=[JOIN_KEY])
        except (StoreError, OSError, ValueError):
            return None
        return str(table.column(0)[0]) if table.num_rows else None

    def _read_each_view(self, key: Any) -> list[tuple[datetime | None, dict[str, Any] | None]]:
        return [self.online_store.online_read(self.store.config, view, [key], names)[0] for view, names in self.views]

    def get_online_features(self, machine_id: str, service: str = "detector_features") -> dict[str, list[Any]]:
        """The same lookup through Feast's public ``get_online_features`` and a feature service."""
        if service not in self._services:
            self._services[service] = self.store.get_feature_service(service)
        return self.store.get_online_features(
            features=self._services[service], entity_rows=[{JOIN_KEY: machine_id}]
        ).to_dict()


class _RedisReader:
    """Every feature view of one machine in a single ``HMGET``: Feast keeps them all in one hash per entity.

    Key and field names are Feast's own (``_redis_key``, ``_mmh3`` of ``view:feature``, ``_ts:view``), and so
    is the client: the one Feast's Redis store makes from the whole connection string (password, ``ssl``,
    ``db``); a ``PING`` at start-up turns a wrong password into an error here rather than at the first lookup.
    Its connections time out after :data:`LOOKUP_TIMEOUT_S` (unless the connection string says otherwise,
    ``socket_timeout=...``), and a broken connection (a restarted server) is retried once, at once; redis-py's
    default retries with backoff made a lookup on a down server take 2-6 s.
    """

    def __init__(self, config: Any, online_store: Any, views: list[tuple[Any, list[str]]]) -> None:
        from feast.infra.online_stores.helpers import _mmh3, _redis_key
        from feast.protos.feast.types.Value_pb2 import Value
        from google.protobuf.timestamp_pb2 import Timestamp

        self._redis_key, self._value, self._timestamp = _redis_key, Value, Timestamp  # resolved once, off the hot path

        self.config = config
        self.client = online_store._get_client(config.online_store)
        _bound_redis_calls(self.client)
        self.client.ping()
        self.fields: list[bytes] = []
        self.layout: list[tuple[int, list[str]]] = []
        for view, names in views:
            self.layout.append((len(self.fields), names))
            self.fields += [_mmh3(f"{view.name}:{name}") for name in names] + [f"_ts:{view.name}".encode()]

    def read(self, key: Any) -> list[tuple[datetime | None, dict[str, Any] | None]]:
        raw = self.client.hmget(self._redis_key(self.config.project, key, 3), self.fields)
        result: list[tuple[datetime | None, dict[str, Any] | None]] = []
        for start, names in self.layout:
            stamp = raw[start + len(names)]
            if stamp is None:
                result.append((None, None))
                continue
            values = {name: self._value.FromString(raw[start + i]) for i, name in enumerate(names) if raw[start + i]}
            moment = self._timestamp.FromString(stamp).ToDatetime(tzinfo=UTC)
            result.append((moment, values))
        return result


def _bound_redis_calls(client: Any) -> None:
    """Short socket timeouts and one immediate retry on every connection ``client``'s pool makes."""
    from redis.backoff import NoBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.retry import Retry

    pool = getattr(client, "connection_pool", None)
    if pool is None:  # a cluster client: its nodes are configured by the connection string alone
        return
    options = pool.connection_kwargs
    for name in ("socket_timeout", "socket_connect_timeout"):
        if options.get(name) is None:  # redis-py's default: wait for ever
            options[name] = LOOKUP_TIMEOUT_S
    client.set_retry(Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)))  # a timeout is not retried


def _decode(value: Any) -> Any:
    """A Feast ``ValueProto`` as a Python value; a missing or empty one as ``None``."""
    kind = value.WhichOneof("val") if value is not None else None
    if kind is None or kind == "null_val":
        return None
    decoded = getattr(value, kind)
    return list(decoded.val) if kind.endswith("_list_val") else decoded
