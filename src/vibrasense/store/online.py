"""Online lookups: a machine's latest features from the Feast online store, in well under a millisecond.

``OnlineFeatureClient.get`` reads each feature view through the configured Feast online store's own
``online_read`` (the call ``get_online_features`` makes underneath), with the entity key and the feature
views resolved once at start-up instead of per request. ``get_online_features`` is what Feast users call;
``benchmarks/bench_online_features.py`` measures both against a raw query of the same row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from vibrasense.config import Settings
from vibrasense.errors import StoreError
from vibrasense.store.definitions import JOIN_KEY, view_features
from vibrasense.store.operations import as_store_error, open_store
from vibrasense.store.repository import repo_path


class OnlineFeatureClient:
    """Latest online features of one machine, or ``None`` when it has none (never nulls that look like data)."""

    def __init__(self, settings: Settings) -> None:
        from feast.infra.online_stores.helpers import get_online_store_from_config

        self.settings = settings
        self.store = open_store(settings)
        with as_store_error(settings, "lookup"):
            registered = {view.name: view for view in self.store.list_feature_views()}
        missing = [name for name in view_features(settings) if name not in registered]
        if missing:
            raise StoreError(
                f"the feature store {repo_path(settings)} lacks the feature views {missing}; "
                "run `vibrasense store apply` and `vibrasense store materialize`"
            )
        self.views = [(registered[name], list(features)) for name, features in view_features(settings).items()]
        self.online_store = get_online_store_from_config(self.store.config.online_store)

    def get(self, machine_id: str) -> dict[str, Any] | None:
        """``{"machine_id", "event_timestamp", <feature>: value, ...}``, or ``None`` for a machine with no features."""
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey
        from feast.protos.feast.types.Value_pb2 import Value

        key = EntityKey(join_keys=[JOIN_KEY], entity_values=[Value(string_val=machine_id)])
        row: dict[str, Any] = {}
        latest: datetime | None = None
        for view, features in self.views:
            timestamp, values = self.online_store.online_read(self.store.config, view, [key], features)[0]
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

    def get_online_features(self, machine_id: str, service: str = "detector_features") -> dict[str, list[Any]]:
        """The same lookup through Feast's public ``get_online_features`` and a feature service."""
        return self.store.get_online_features(
            features=self.store.get_feature_service(service), entity_rows=[{JOIN_KEY: machine_id}]
        ).to_dict()


def _decode(value: Any) -> Any:
    """A Feast ``ValueProto`` as a Python value; a missing or empty one as ``None``."""
    from feast.type_map import feast_value_type_to_python_type

    return feast_value_type_to_python_type(value) if value is not None else None
