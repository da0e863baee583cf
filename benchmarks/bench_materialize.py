"""Materialisation benchmark: N distinct machines (one recording each) into each online store, two paths.

For each online store (SQLite; Redis and PostgreSQL where their servers answer on 127.0.0.1), the same feature
table goes into two fresh stores, in the same run, as the online view's two vectors per machine:

- ``vibrasense materialize``: one PyArrow read per window, latest row per machine, vectors made once, then the
  store's own ``online_write_batch`` (:mod:`vibrasense.store.online_write`);
- ``feast write_to_online_store`` (the reference): Feast's public push of the same rows as a DataFrame of
  vectors (its own Arrow-to-protobuf conversion), the way a Feast user loads features that are not in the
  view's source columns.

It prints wall seconds, the seconds spent inside Feast's ``online_write_batch`` (the floor of any path that
writes through Feast: its loop over values), the ratio to the reference, and checks that both stores give the
same online answer for sample machines. On a shared machine the wall seconds move with the load; the CPU
seconds of this process are printed beside them.

    .venv/bin/python benchmarks/bench_materialize.py [--machines 100000] [--stores sqlite,redis,postgres]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from bench_online_features import feature_table, reachable
from vibrasense.config import Settings, load_settings
from vibrasense.store import OnlineFeatureClient, apply, materialize, open_store, write_repo
from vibrasense.store.definitions import ONLINE_VIEW, online_columns

GOALS_S = {"sqlite": 30.0, "redis": 15.0, "postgres": None}
GOAL_MACHINES = 100_000
"""The goals are for this many machines."""
SERVERS = {"redis": ("127.0.0.1", 6379), "postgres": ("127.0.0.1", 5432)}


@contextmanager
def fresh_store(kind: str, root: Path, table: pd.DataFrame) -> Iterator[Settings]:
    """An applied, empty store of ``kind`` over ``table``; torn down (and its PostgreSQL database dropped) after."""
    project = f"bench_{uuid.uuid4().hex[:8]}"
    store: dict = {"project": project, "online_store": kind}
    if kind == "postgres":
        import psycopg

        with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{project}"')
        store["online_store"] = {"type": "postgres", "database": project, "sslmode": "disable"}
    settings = load_settings(None, workdir=root / project, store=store)
    path = settings.workdir / "features" / "features.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_parquet(path, index=False)
    write_repo(settings)
    apply(settings)
    try:
        yield settings
    finally:
        open_store(settings).teardown()
        if kind == "postgres":
            import psycopg

            with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE "{project}" WITH (FORCE)')


def timed(call: Callable[[], object]) -> tuple[float, float, object]:
    """``(wall s, CPU s of this process, result)``."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = call()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def feast_write_seconds() -> tuple[Callable[[], float], Callable[[], None]]:
    """Count the seconds inside every online store's ``online_write_batch`` (for the reference path)."""
    from feast.infra.online_stores.online_store import OnlineStore

    patched = {cls: cls.online_write_batch for cls in _subclasses(OnlineStore) if "online_write_batch" in vars(cls)}
    spent = [0.0]

    def wrap(original: Callable) -> Callable:
        def counted(*args: object, **kwargs: object) -> object:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                spent[0] += time.perf_counter() - started

        return counted

    for cls, original in patched.items():
        cls.online_write_batch = wrap(original)

    def restore() -> None:
        for cls, original in patched.items():
            cls.online_write_batch = original

    return lambda: spent[0], restore


def _subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub, *_subclasses(sub)}
    return found


def feast_push(settings: Settings, table: pd.DataFrame) -> None:
    """The table's rows as the online view's vectors, through Feast's public ``write_to_online_store``."""
    store = open_store(settings)
    vectors = online_columns(store.get_feature_view(ONLINE_VIEW))
    frame = table[["machine_id", "event_timestamp"]].copy()
    for field, columns in vectors.items():
        frame[field] = list(table[list(columns)].to_numpy(dtype=float))
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):  # Feast's prints
        store.write_to_online_store(ONLINE_VIEW, df=frame)


def online_answers(settings: Settings, machines: list[str]) -> list[dict | None]:
    client = OnlineFeatureClient(settings)
    return [client.get(machine) for machine in machines]


def same(a: list[dict | None], b: list[dict | None]) -> bool:
    def equal(x: object, y: object) -> bool:
        return x == y or (isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y))

    return all(
        (x is None and y is None)
        or (x is not None and y is not None and x.keys() == y.keys() and all(equal(x[k], y[k]) for k in x))
        for x, y in zip(a, b, strict=True)
    )


def run(kind: str, machines: int, root: Path, reference: bool) -> None:
    table = feature_table(load_settings(None, workdir=root), machines, machines, seed=2)
    sample = [f"machine-{i:06d}" for i in (0, machines // 3, machines - 1)] + ["no_such_machine"]
    end = table["event_timestamp"].max().to_pydatetime() + pd.Timedelta(seconds=1)
    with fresh_store(kind, root, table) as settings:
        wall, cpu, result = timed(lambda: materialize(settings, end=end, progress=False))
        ours = online_answers(settings, sample)
    row = f"{kind:<10}{'vibrasense materialize':<26}{wall:>9.1f}{cpu:>9.1f}{result.write_seconds:>16.1f}"
    print(row, end="", flush=True)
    goal = GOALS_S[kind]
    verdict = (
        f"  goal <= {goal:g} s: {'met' if wall <= goal else 'not met'}" if goal and machines >= GOAL_MACHINES else ""
    )
    if not reference:
        print(verdict)
        return
    with fresh_store(kind, root, table) as settings:
        spent, restore = feast_write_seconds()
        try:
            ref_wall, ref_cpu, _ = timed(lambda: feast_push(settings, table))
        finally:
            restore()
        theirs = online_answers(settings, sample)
    print(f"{ref_wall / wall:>9.1f}x{verdict}")
    print(f"{kind:<10}{'feast push (reference)':<26}{ref_wall:>9.1f}{ref_cpu:>9.1f}{spent():>16.1f}")
    print(f"{'':<10}online answers for {len(sample)} sample machines identical: {same(ours, theirs)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machines", type=int, default=100_000, help="distinct machines, one row each")
    parser.add_argument("--stores", default="sqlite,redis", help="comma-separated: sqlite, redis, postgres")
    parser.add_argument("--no-reference", action="store_true", help="skip Feast's write_to_online_store")
    args = parser.parse_args()
    print(f"# {args.machines:,} distinct machines materialised into each online store (two vectors each)")
    print(f"{'store':<10}{'path':<26}{'wall s':>9}{'CPU s':>9}{'in Feast write':>16}{'speed-up':>10}")
    with tempfile.TemporaryDirectory() as scratch:
        for kind in args.stores.split(","):
            if kind in SERVERS and not reachable(*SERVERS[kind]):
                print(f"{kind}: no server on {':'.join(map(str, SERVERS[kind]))}, skipped")
                continue
            run(kind, args.machines, Path(scratch), not args.no_reference)


if __name__ == "__main__":
    main()
