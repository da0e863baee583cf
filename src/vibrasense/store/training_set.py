"""Training sets by point-in-time retrieval: each row gets the features as they were at its own timestamp.

The entity frame holds ``machine_id`` and ``event_timestamp`` (plus any columns to carry along, such as
``recording_id`` or a label). Feast joins each row with the latest feature row of that machine at or before
the row's timestamp, within the views' TTL, so no feature from the future leaks into a training row.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from vibrasense.config import Settings
from vibrasense.errors import StoreError
from vibrasense.store.definitions import JOIN_KEY, SERVICES, TIMESTAMP
from vibrasense.store.operations import as_store_error, open_store, served_source


def build_training_set(
    settings: Settings,
    entities: pd.DataFrame,
    feature_service: str = "detector_features",
    source: Path | None = None,
) -> pd.DataFrame:
    """Point-in-time features for ``entities``: every row, in order, with its extra columns (NaN: no feature yet).

    With ``source`` given, raises :class:`StoreError` unless the store reads exactly that feature table, so a
    caller never trains on another data set than the one it names.
    """
    missing = [c for c in (JOIN_KEY, TIMESTAMP) if c not in entities.columns]
    if missing:
        raise StoreError(f"the entity frame lacks the columns {missing}; it needs {JOIN_KEY} and {TIMESTAMP}")
    if feature_service not in SERVICES:
        raise StoreError(f"unknown feature service {feature_service!r}; the store defines {sorted(SERVICES)}")
    store = open_store(settings)
    served_from = served_source(settings, store)
    if source is not None and served_from.resolve() != Path(source).resolve():
        raise StoreError(
            f"the feature store serves {served_from}, not {source}; run `vibrasense store init --features`"
        )
    frame = entities.copy()
    frame[TIMESTAMP] = pd.to_datetime(frame[TIMESTAMP], utc=True)
    frame["_row"] = range(len(frame))
    with as_store_error(settings, "historical retrieval"):
        service = store.get_feature_service(feature_service)
        joined = store.get_historical_features(entity_df=frame, features=service).to_df()
    features = [c for c in joined.columns if c not in frame.columns]
    # a row with no feature at or before its time stays, with NaN features, rather than vanish from the set
    kept = frame.merge(joined[["_row", *features]], on="_row", how="left")
    return kept.sort_values("_row").drop(columns="_row").reset_index(drop=True)
