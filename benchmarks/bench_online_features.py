"""Feature-store benchmark: online lookup latency per store, and materialisation throughput.

For each online store (SQLite; PostgreSQL and Redis where their servers answer on 127.0.0.1), one machine's
features (the online view: 30 values in two vectors) are read N times three ways, in the same run:

- ``feast get_online_features``: Feast's public call with the ``online_features`` service (its vectors named);
- ``vibrasense OnlineFeatureClient.get``: the store's own ``online_read`` with the view resolved once, values named;
- ``raw query`` (the floor): the same rows with a plain SQL ``SELECT`` / Redis ``HGETALL``, no decoding.

Then the materialisation of M rows (one per machine) into SQLite, in rows per second.

    .venv/bin/python benchmarks/bench_online_features.py [--lookups 2000] [--machines 1000] [--rows 100000]
"""

from __future__ import annotations

import argparse
import socket
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from vibrasense.config import Settings, load_settings
from vibrasense.features.names import feature_names
from vibrasense.signals.records import RECORD_COLUMNS
from vibrasense.store import OnlineFeatureClient, apply, materialize, open_store, repo_path, write_repo
from vibrasense.store.definitions import ONLINE_VIEW

T0 = datetime(2026, 1, 1, tzinfo=UTC)
GOALS_MS = {"sqlite": 1.0, "postgres": 5.0, "redis": 1.0}


def feature_table(settings: Settings, machines: int, rows: int | None = None, seed: int = 0) -> pd.DataFrame:
    """``rows`` recordings (default: one per machine) spread over the machines in turn, random feature values."""
    rng = np.random.default_rng(seed)
    rows = rows or machines
    names = feature_names(settings.features.vibration)
    frame = pd.DataFrame(rng.normal(size=(rows, len(names))), columns=list(names))
    meta = pd.DataFrame(
        {
            "recording_id": [f"rec-{i}" for i in range(rows)],
            "machine_id": [f"machine-{i % machines:06d}" for i in range(rows)],
            "machine_type": "pump",
            "event_timestamp": pd.to_datetime([T0 + timedelta(seconds=i) for i in range(rows)], utc=True),
            "label": "normal",
            "split": "train",
            "source": "synthetic",
            "kind": "audio",
            "sample_rate": 16000,
            "channels": 1,
            "duration": 10.0,
            "bearing": None,
            "shaft_hz": float("nan"),
        }
    )
    return pd.concat([meta[list(RECORD_COLUMNS)], frame], axis=1)


def prepare(settings: Settings, machines: int) -> None:
    path = settings.workdir / "features" / "features.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    feature_table(settings, machines).to_parquet(path, index=False)
    write_repo(settings)
    apply(settings)
    materialize(settings)


def percentiles(call: Callable[[], object], n: int) -> tuple[float, float]:
    for _ in range(min(50, n)):
        call()
    times = np.empty(n)
    for i in range(n):
        started = time.perf_counter()
        call()
        times[i] = time.perf_counter() - started
    return float(np.percentile(times, 50) * 1000), float(np.percentile(times, 99) * 1000)


def raw_reader(settings: Settings, machine: str) -> Callable[[], object]:
    """A plain query of the rows Feast stored for ``machine``: the floor."""
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.infra.online_stores.helpers import _redis_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    key = EntityKey(join_keys=["machine_id"], entity_values=[Value(string_val=machine)])
    project = settings.store.project
    tables = [f"{project}_{ONLINE_VIEW}"]
    kind = settings.store.online_store.type
    if kind == "sqlite":
        conn = sqlite3.connect(repo_path(settings) / "data" / "online_store.db", check_same_thread=False)
        blob = serialize_entity_key(key, 3)
        queries = [f'SELECT feature_name, value, event_ts FROM "{t}" WHERE entity_key = ?' for t in tables]
        return lambda: [conn.execute(q, (blob,)).fetchall() for q in queries]
    if kind == "postgres":
        import psycopg

        pg = settings.store.online_store
        conn = psycopg.connect(f"host={pg.host} port={pg.port} user={pg.user} dbname={pg.database}", autocommit=True)
        blob = serialize_entity_key(key, 3)
        queries = [f'SELECT feature_name, value, event_ts FROM "{t}" WHERE entity_key = %s' for t in tables]
        return lambda: [conn.execute(q, (blob,), prepare=True).fetchall() for q in queries]
    import redis

    (host, port), *_ = settings.store.online_store.servers()
    client = redis.Redis(host=host, port=port)
    redis_key = _redis_key(project, key, 3)
    return lambda: client.hgetall(redis_key)


def reachable(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return False
    return True


def lookups(kind: str, machines: int, n: int, root: Path) -> list[tuple[str, str, float, float]] | None:
    store: dict = {"project": f"bench_{uuid.uuid4().hex[:8]}", "online_store": kind}
    database = None
    if kind == "postgres":
        if not reachable("127.0.0.1", 5432):
            print("postgres: no server on 127.0.0.1:5432, skipped")
            return None
        import psycopg

        database = store["project"]
        with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{database}"')
        store["online_store"] = {"type": "postgres", "database": database, "sslmode": "disable"}
    if kind == "redis" and not reachable("127.0.0.1", 6379):
        print("redis: no server on 127.0.0.1:6379, skipped")
        return None
    settings = load_settings(None, workdir=root / kind, store=store)
    try:
        prepare(settings, machines)
        client = OnlineFeatureClient(settings)
        machine = f"machine-{machines // 2:06d}"
        assert client.get(machine) is not None
        results = [
            (kind, "feast get_online_features", *percentiles(lambda: client.get_online_features(machine), n)),
            (kind, "vibrasense OnlineFeatureClient.get", *percentiles(lambda: client.get(machine), n)),
            (kind, "raw query (floor)", *percentiles(raw_reader(settings, machine), n)),
        ]
        open_store(settings).teardown()
        return results
    finally:
        if database:
            import psycopg

            with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE "{database}" WITH (FORCE)')


def materialization(rows: int, machines: int, root: Path) -> tuple[float, float]:
    settings = load_settings(None, workdir=root / f"throughput-{machines}")
    path = settings.workdir / "features" / "features.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    feature_table(settings, machines, rows, seed=1).to_parquet(path, index=False)
    write_repo(settings)
    apply(settings)
    result = materialize(settings)
    assert result.rows == rows, result
    return result.seconds, result.rows_per_second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--machines", type=int, default=1000, help="machines in the online store")
    parser.add_argument("--rows", type=int, default=100_000, help="rows materialised for the throughput")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        print(f"# one machine's 30 online features (two vectors), {args.lookups} lookups, {args.machines} machines")
        print(f"{'store':<10}{'path':<38}{'p50 ms':>9}{'p99 ms':>9}{'p99 / floor':>13}")
        for kind in ("sqlite", "postgres", "redis"):
            results = lookups(kind, args.machines, args.lookups, root)
            if not results:
                continue
            floor = results[-1][3]
            for store, path, p50, p99 in results:
                print(f"{store:<10}{path:<38}{p50:>9.3f}{p99:>9.3f}{p99 / floor:>13.1f}")
            print(f"{'':<10}goal: p99 <= {GOALS_MS[kind]:g} ms")
        print(f"\n# materialisation of {args.rows} source rows into SQLite (goal: < 30 s)")
        print(f"{'machines (rows written)':<26}{'seconds':>9}{'source rows/s':>15}")
        for machines in (args.machines, args.rows):
            seconds, rate = materialization(args.rows, machines, root)
            print(f"{machines:<26}{seconds:>9.1f}{rate:>15,.0f}")


if __name__ == "__main__":
    main()
