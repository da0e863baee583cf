"""Online lookups: a machine's latest features from the Feast online store, in well under a millisecond.

``OnlineFeatureClient.get`` reads the online view through the configured Feast online store's own
``online_read`` (the call ``get_online_features`` makes underneath), with the entity key and the view
resolved once at start-up instead of per request, and names each value of the view's vectors by the
columns its tags list. ``get_online_features`` is what Feast users call; ``benchmarks/bench_online_features.py``
measures both against a raw query of the same row.

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
from vibrasense.store.definitions import JOIN_KEY, ONLINE_SERVICE, ONLINE_VIEW, online_columns
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
        view = registered_views(settings, self.store).get(ONLINE_VIEW)
        if view is None:
            raise StoreError(
                f"the feature store {repo_path(settings)} lacks the feature view {ONLINE_VIEW!r}; "
                "run `vibrasense store apply` and `vibrasense store materialize`"
            )
        self.view = view
        self.vectors = online_columns(view)
        self.online_store = get_online_store_from_config(self.store.config.online_store)
        self._service: Any = None
        self._redis = None
        if settings.store.online_store.type == "redis":
            with as_store_error(settings, "lookup"):
                self._redis = _RedisReader(self.store.config, self.online_store, view, list(self.vectors))

    def get(self, machine_id: str) -> dict[str, Any] | None:
        """``{"machine_id", "event_timestamp", <feature>: value, ...}``, or ``None`` for a machine with no features."""
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey
        from feast.protos.feast.types.Value_pb2 import Value

        key = EntityKey(join_keys=[JOIN_KEY], entity_values=[Value(string_val=machine_id)])
        with as_store_error(self.settings, "lookup"):
            if self._redis:
                timestamp, values = self._redis.read(key)
            else:
                timestamp, values = self.online_store.online_read(
                    self.store.config, self.view, [key], list(self.vectors)
                )[0]
        if not values:
            return None  # Redis answers an unknown key with no values
        row: dict[str, Any] = {}
        for field, columns in self.vectors.items():
            vector = values.get(field)
            numbers = list(vector.double_list_val.val) if vector is not None else []
            if len(numbers) != len(columns):  # never written, or written by other definitions
                numbers = [float("nan")] * len(columns)
            row |= {name: None if number != number else number for name, number in zip(columns, numbers, strict=True)}
        if all(value is None for value in row.values()):
            return None
        stamp = timestamp.isoformat() if timestamp is not None else None
        return {JOIN_KEY: machine_id, "event_timestamp": stamp, **row}

    def known_machine(self) -> str | None:
        """A machine of the table the store serves (its first row), for probing whether the store holds features."""
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(served_source(self.settings, self.store), columns=[JOIN_KEY])
        except (StoreError, OSError, ValueError):
            return None
        return str(table.column(0)[0]) if table.num_rows else None

    def _read(self, key: Any) -> tuple[datetime | None, dict[str, Any] | None]:
        return self.online_store.online_read(self.store.config, self.view, [key], list(self.vectors))[0]

    def get_online_features(self, machine_id: str) -> dict[str, list[Any]]:
        """The same lookup through Feast's public ``get_online_features`` (the online service), vectors named."""
        if self._service is None:
            self._service = self.store.get_feature_service(ONLINE_SERVICE)
        answer = self.store.get_online_features(features=self._service, entity_rows=[{JOIN_KEY: machine_id}]).to_dict()
        named: dict[str, list[Any]] = {JOIN_KEY: answer[JOIN_KEY]}
        for field, columns in self.vectors.items():
            vectors = [vector if vector is not None else [None] * len(columns) for vector in answer[field]]
            named |= {name: [vector[i] for vector in vectors] for i, name in enumerate(columns)}
        return named


class _RedisReader:
    """The online view of one machine in a single ``HMGET``: Feast keeps it in one hash per entity.

    Key and field names are Feast's own (``_redis_key``, ``_mmh3`` of ``view:feature``, ``_ts:view``), and so
    is the client: the one Feast's Redis store makes from the whole connection string (password, ``ssl``,
    ``db``); a ``PING`` at start-up turns a wrong password into an error here rather than at the first lookup.
    Its connections time out after :data:`LOOKUP_TIMEOUT_S` (unless the connection string says otherwise,
    ``socket_timeout=...``), and a broken connection (a restarted server) is retried once, at once; redis-py's
    default retries with backoff made a lookup on a down server take 2-6 s.
    """

    def __init__(self, config: Any, online_store: Any, view: Any, names: list[str]) -> None:
        from feast.infra.online_stores.helpers import _mmh3, _redis_key
        from feast.protos.feast.types.Value_pb2 import Value
        from google.protobuf.timestamp_pb2 import Timestamp

        self._redis_key, self._value, self._timestamp = _redis_key, Value, Timestamp  # resolved once, off the hot path

        self.config = config
        self.client = online_store._get_client(config.online_store)
        _bound_redis_calls(self.client)
        self.client.ping()
        self.names = names
        self.fields = [_mmh3(f"{view.name}:{name}") for name in names] + [f"_ts:{view.name}".encode()]

    def read(self, key: Any) -> tuple[datetime | None, dict[str, Any] | None]:
        raw = self.client.hmget(self._redis_key(self.config.project, key, 3), self.fields)
        if raw[-1] is None:
            return None, None
        values = {name: self._value.FromString(value) for name, value in zip(self.names, raw, strict=False) if value}
        return self._timestamp.FromString(raw[-1]).ToDatetime(tzinfo=UTC), values


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
