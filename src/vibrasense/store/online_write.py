"""Feature rows into Feast's online store, through the store's own ``online_write_batch``.

Feast's stock ``materialize`` re-reads and sorts the whole source with Dask for every call and builds its
protobuf values through a type dispatch per value. Here one window of the source is read with PyArrow
(only its rows, only the view's columns), the latest row of each machine is kept (as Feast's
materialisation does: the newest event time wins), and each family's columns are made into the vector the
online view holds (the ``ValueProto`` Feast makes of an ``Array(Float64)``: ``double_list_val``; a missing
value is NaN) before Feast's online store writes them, in batches of :data:`WRITE_BATCH` rows.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from vibrasense.store.definitions import JOIN_KEY, TIMESTAMP, online_columns

WRITE_BATCH = 10_000
"""Machines per call of the online store's ``online_write_batch``: bounds the protobuf values held at once."""

FeastRow = tuple[Any, dict[str, Any], datetime, None]


@dataclass
class OnlineWriter:
    """Writes windows of one source table into the online store; counts the seconds the store itself takes."""

    store: Any
    source: Path
    write_seconds: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        self._dataset = ds.dataset(self.source, format="parquet")
        self._stamp_type = self._dataset.schema.field(TIMESTAMP).type
        self._provider = self.store._get_provider()

    def write(self, view: Any, start: datetime, end: datetime, progress: Callable[[int], Any] | None = None) -> int:
        """Write each machine's latest row with event time in ``[start, end]`` (Feast's bounds); returns machines."""
        vectors = online_columns(view)
        table = self._dataset.to_table(
            columns=[JOIN_KEY, TIMESTAMP, *dict.fromkeys(c for columns in vectors.values() for c in columns)],
            filter=(ds.field(TIMESTAMP) >= self._scalar(start)) & (ds.field(TIMESTAMP) <= self._scalar(end)),
        )
        latest = latest_per_machine(table)
        for rows in feast_rows(latest, vectors):
            started = time.perf_counter()
            self._provider.online_write_batch(self.store.config, view, rows, progress)
            self.write_seconds += time.perf_counter() - started
        return latest.num_rows

    def _scalar(self, moment: datetime) -> pa.Scalar:
        """``moment`` as a scalar of the source's timestamp type (a zone-less column holds UTC)."""
        moment = moment.astimezone(UTC)
        return pa.scalar(moment if self._stamp_type.tz else moment.replace(tzinfo=None), type=self._stamp_type)


def latest_per_machine(table: pa.Table) -> pa.Table:
    """The row of ``table`` with the newest event time of each machine (the last one in the table on a tie)."""
    if table.num_rows == 0:
        return table
    order = pc.sort_indices(table, sort_keys=[(JOIN_KEY, "ascending"), (TIMESTAMP, "ascending")])
    machines = table.column(JOIN_KEY).take(order).to_numpy(zero_copy_only=False)
    last = np.ones(len(machines), dtype=bool)
    last[:-1] = machines[1:] != machines[:-1]
    return table.take(order.filter(pa.array(last)))


def feast_rows(table: pa.Table, vectors: dict[str, tuple[str, ...]]) -> Iterator[list[FeastRow]]:
    """``(EntityKey, {field: Value}, event time, None)`` per row, in batches of :data:`WRITE_BATCH`.

    Each field's value is the vector of its columns, as Feast's own conversion makes an ``Array(Float64)``
    (``double_list_val``), with NaN for a missing value.
    """
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import DoubleList, Value

    for batch in table.to_batches(max_chunksize=WRITE_BATCH):
        machines = batch.column(JOIN_KEY).to_pylist()
        stamps = pc.cast(batch.column(TIMESTAMP), pa.timestamp("us", tz="UTC")).to_pylist()
        fields = {field: _matrix(batch, columns).tolist() for field, columns in vectors.items()}
        rows = []
        for i, (machine, stamp) in enumerate(zip(machines, stamps, strict=True)):
            key = EntityKey(join_keys=[JOIN_KEY], entity_values=[Value(string_val=str(machine))])
            values = {field: Value(double_list_val=DoubleList(val=matrix[i])) for field, matrix in fields.items()}
            rows.append((key, values, stamp, None))
        yield rows


def _matrix(batch: pa.RecordBatch, columns: tuple[str, ...]) -> np.ndarray:
    """The ``columns`` of ``batch`` as a float64 matrix, a row per machine; a null as NaN."""
    matrix = np.empty((batch.num_rows, len(columns)))
    for j, name in enumerate(columns):
        matrix[:, j] = pc.cast(batch.column(name), pa.float64()).to_numpy(zero_copy_only=False)
    return matrix
