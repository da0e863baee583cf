"""Prognostics throughput in snapshots per second, each figure beside a reference measured in the same run.

1. Featurising a run (FEMTO Bearing3_1, 515 snapshots, every vibration feature): the uncached path (the
   reference: what ``prognose --past`` did on every call) against the feature cache read back, and against a
   grown run of which only the new tenth is featurised.
2. RUL at every snapshot, with and without past runs (FEMTO Bearing1_2 and Bearing2_1): ``estimate_rul`` asked
   at each snapshot (the reference: each call refits every earlier point) against ``rul_series`` (one pass,
   running sums); the two must agree. By similarity each snapshot costs one best guess, whose 400 trial
   estimates are now scored in one matrix product: against scoring them one at a time, as before.

    .venv/bin/python benchmarks/bench_prognostics.py [--data ../shared/data] [--workers 1]

Data: FEMTO-ST PRONOSTIA (Nectoux et al., PHM 2012).
"""

from __future__ import annotations

import argparse
import logging
import math
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

from vibrasense.config import load_settings
from vibrasense.prognostics.health import health_index
from vibrasense.prognostics.rul import SIMILARITY_SPREAD, PastRuns, best_guess, estimate_rul, rul_series
from vibrasense.prognostics.runs import load_run

CURRENT = "Bearing3_1"
PAST = ("Bearing1_2", "Bearing2_1")


def timed(work):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    value = work()
    return value, time.perf_counter() - started


def featurising(data: Path, workers: int) -> None:
    settings = load_settings()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / CURRENT
        folder.mkdir()
        with zipfile.ZipFile(data / "femto" / f"{CURRENT}.zip") as archive:
            members = sorted(n for n in archive.namelist() if Path(n).name.startswith("acc_"))
            for name in members:
                (folder / Path(name).name).write_bytes(archive.read(name))
        count = len(members)
        cache = Path(scratch) / "cache"
        reference, uncached = timed(lambda: load_run(folder, settings, workers=workers))
        first, filling = timed(lambda: load_run(folder, settings, cache_dir=cache, workers=workers))
        again, cached = timed(lambda: load_run(folder, settings, cache_dir=cache, workers=workers))
        assert again.equals(first) and again.equals(reference)
        newest = sorted(folder.iterdir())[-count // 10 :]  # the run as it was a tenth of its life ago, then grown
        for path in newest:
            path.rename(path.with_suffix(".held"))
        load_run(folder, settings, cache_dir=cache, workers=workers)
        for path in newest:
            path.with_suffix(".held").rename(path)
        grown, incremental = timed(lambda: load_run(folder, settings, cache_dir=cache, workers=workers))
        assert grown.equals(reference)
    print(f"\n# Featurising {CURRENT} ({count} snapshots, {len(reference.columns) - 2} vibration features)")
    print(f"{'path':<44}{'seconds':>9}{'snapshots/s':>13}{'vs reference':>14}")
    for label, seconds in (
        ("uncached (reference: every call before)", uncached),
        ("first call, filling the cache", filling),
        ("cached: the run read back", cached),
        (f"grown run: {len(newest)} new snapshots featurised", incremental),
    ):
        print(f"{label:<44}{seconds:>9.2f}{count / seconds:>13.0f}{uncached / seconds:>13.1f}x")


def rul(data: Path, workers: int) -> None:
    settings = load_settings()
    columns = ("vib_rms", "vib_peak")
    runs = {
        name: load_run(data / "femto" / f"{name}.zip", settings, columns=columns, workers=workers)
        for name in (CURRENT, *PAST)
    }
    result = health_index(runs[CURRENT])
    past = PastRuns.learn([health_index(runs[name]) for name in PAST])
    times = result.table["event_timestamp"]
    count = len(times)
    print(f"\n# RUL at every snapshot of {CURRENT} ({count} snapshots)")
    print(f"{'estimate':<34}{'reference s':>12}{'series s':>10}{'snapshots/s':>13}{'vs reference':>14}")
    for label, history in (("exponential trend (no past runs)", None), ("by similarity to 2 past runs", past)):
        reference, before = timed(lambda h=history: [estimate_rul(result, at, past=h) for at in times])
        series, after = timed(lambda h=history: rul_series(result, past=h))
        for one, other in zip(reference, series, strict=True):
            assert other is not None and one.method == other.method
            assert math.isclose(one.hours, other.hours, rel_tol=1e-6) or (np.isnan(one.hours) and np.isnan(other.hours))
        print(f"{label:<34}{before:>12.2f}{after:>10.3f}{count / after:>13.0f}{before / after:>13.1f}x")
    candidates = [0.4, 0.9, 1.3]
    assert best_guess(candidates) == one_guess_at_a_time(candidates)
    _, loop = timed(lambda: [one_guess_at_a_time(candidates) for _ in range(200)])
    _, matrix = timed(lambda: [best_guess(candidates) for _ in range(200)])
    print(
        f"{'best guess of 3 candidates':<34}{loop / 200 * 1e3:>10.2f}ms{matrix / 200 * 1e3:>8.2f}ms"
        f"{200 / matrix:>13.0f}{loop / matrix:>13.1f}x   (reference: one guess at a time, as before)"
    )


def one_guess_at_a_time(candidates: list[float], spread: float = SIMILARITY_SPREAD) -> float:
    """The reference: ``best_guess`` scoring its 400 guesses one at a time."""
    values = np.asarray([c for c in candidates if c > 0], dtype=float)
    z = np.linspace(-2.0, 2.0, 9)
    weights = np.tile(np.exp(-(z**2) / 2), len(values))
    truths = (values[:, None] * np.exp(spread * z)[None, :]).ravel()
    guesses = np.linspace(0.0, float(values.max()), 401)[1:]
    error = [100 * (truths - guess) / truths for guess in guesses]
    expected = [np.where(e <= 0, np.exp(-np.log(0.5) * e / 5), np.exp(np.log(0.5) * e / 20)) @ weights for e in error]
    return float(guesses[int(np.argmax(expected))])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--workers", type=int, default=1, help="featurising processes (0: every core)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    featurising(args.data, args.workers)
    rul(args.data, args.workers)


if __name__ == "__main__":
    main()
