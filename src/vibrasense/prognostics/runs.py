"""A machine's time-ordered snapshots as a feature table, from raw recordings or from a per-snapshot table.

Accepted: a run folder or archive of recordings (FEMTO ``acc_*.csv``, an IMS test folder, …), a vibrasense
``features.parquet``, an IMS per-file feature table (``Bearing1_ch1_rms``, … with ``timestamp``) and the
merged IMS 2nd-test table (one column of mean absolute acceleration per bearing). The result has one row
per snapshot: ``machine_id``, ``event_timestamp`` (UTC) and numeric feature columns.

Recordings are featurised through the one featurizer. With a cache folder, each snapshot's features are kept
in a Parquet file per run, keyed by the snapshot file's fingerprint (size and time, or the archive member's
checksum) and the feature spec's hash: a past run is read once, and a growing run featurises only its new
snapshots. A snapshot that cannot be read is skipped with a warning naming it, as the features stage does.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from vibrasense.config import Settings
from vibrasense.errors import InputError
from vibrasense.features.featurize import featurize
from vibrasense.features.spec import FeatureSpec
from vibrasense.features.threads import limit_process_threads, one_native_thread
from vibrasense.signals.bearings import layout_context
from vibrasense.signals.layouts import discover
from vibrasense.signals.readers import read_signal
from vibrasense.signals.records import RecordingRef

log = logging.getLogger(__name__)

IMS_COLUMN = re.compile(r"^(Bearing\d+)_(ch\d+)_(\w+)$")
TABLE_SUFFIXES = (".csv", ".parquet")
PRIVATE = ("_recording_id", "_fingerprint")
PARALLEL_FROM = 200  # snapshots to featurise before worker processes pay for their start-up
CHUNK = 64


def load_run(
    path: Path | str,
    settings: Settings,
    *,
    columns: Sequence[str] | None = None,
    cache_dir: Path | None = None,
    workers: int = 1,
) -> pd.DataFrame:
    """Snapshots under ``path`` as a feature table sorted by machine and time.

    For recordings: ``columns`` are the feature columns to compute (default: every vibration feature of the
    configured spec), ``cache_dir`` keeps them between calls (see the module), ``workers`` processes share
    the snapshots still to featurise (0: every core).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "does not exist; give a run folder or archive, or a per-snapshot feature table")
    if path.is_file() and path.suffix.lower() in TABLE_SUFFIXES and not path.name.startswith("acc_"):
        table = _read_table(path)
    else:
        table = featurise_run(path, settings, columns=columns, cache_dir=cache_dir, workers=workers)
    table["event_timestamp"] = pd.to_datetime(table["event_timestamp"], utc=True)
    return table.sort_values(["machine_id", "event_timestamp"], kind="stable").reset_index(drop=True)


def _read_table(path: Path) -> pd.DataFrame:
    frame = pd.read_parquet(path) if path.suffix.lower() == ".parquet" else pd.read_csv(path)
    if {"machine_id", "event_timestamp"} <= set(frame.columns):
        return frame
    ims_columns = [c for c in frame.columns if IMS_COLUMN.match(str(c))]
    if ims_columns and "timestamp" in frame.columns:
        return _from_ims_per_file(frame, ims_columns)
    bearings = [c for c in frame.columns if re.fullmatch(r"Bearing \d+", str(c))]
    if bearings:
        stamps = frame.iloc[:, 0]
        return pd.concat(
            [
                pd.DataFrame({"machine_id": c.replace(" ", ""), "event_timestamp": stamps, "mean_abs": frame[c]})
                for c in bearings
            ],
            ignore_index=True,
        )
    raise InputError(
        path,
        "unrecognised feature table: expected machine_id + event_timestamp columns, IMS per-file columns "
        "(BearingN_chM_<feature> + timestamp) or the merged IMS table (Bearing 1..4)",
    )


def _from_ims_per_file(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """One machine per bearing, from its first channel (test 1 has two channels per bearing)."""
    parts = []
    for bearing in sorted({IMS_COLUMN.match(c).group(1) for c in columns}):  # type: ignore[union-attr]
        chosen = {IMS_COLUMN.match(c).group(3): c for c in columns if c.startswith(f"{bearing}_ch1_")}  # type: ignore[union-attr]
        part = frame[list(chosen.values())].rename(columns={v: k for k, v in chosen.items()})
        part.insert(0, "event_timestamp", frame["timestamp"])
        part.insert(0, "machine_id", bearing)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def featurise_run(
    path: Path,
    settings: Settings,
    *,
    columns: Sequence[str] | None = None,
    cache_dir: Path | None = None,
    workers: int = 1,
) -> pd.DataFrame:
    """Vibration features of each snapshot under ``path``, from the cache where its fingerprint still holds."""
    spec = FeatureSpec.from_settings(settings)
    wanted = tuple(columns or spec.vibration_columns)
    refs = discover(path)
    cache = _cache_file(path, spec, wanted, cache_dir) if cache_dir is not None else None
    known = _read_cache(cache, wanted) if cache is not None else {}
    rows: dict[str, dict[str, Any]] = {}
    pending: list[RecordingRef] = []
    for ref in refs:
        row = known.get(ref.recording_id)
        if row is not None and row["_fingerprint"] == _fingerprint(ref, spec):
            rows[ref.recording_id] = row
        else:
            pending.append(ref)
    if pending:
        log.info("%s: %d snapshots to featurise, %d from the cache", path, len(pending), len(rows))
    for found, skipped in _featurise(pending, spec, wanted, workers):
        rows.update((row["_recording_id"], row) for row in found)
        for source, reason in skipped:
            log.warning("skipped %s: %s", source, reason)
    if not rows:
        raise InputError(path, "no snapshot could be read (see the warnings)")
    table = pd.DataFrame([rows[ref.recording_id] for ref in refs if ref.recording_id in rows])
    if cache is not None and (pending or len(known) != len(rows)):  # new, changed or gone snapshots
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = cache.with_name(f".{cache.name}.partial")
        table.to_parquet(partial, index=False)
        os.replace(partial, cache)
    return table.drop(columns=list(PRIVATE))


def _featurise(
    refs: list[RecordingRef], spec: FeatureSpec, columns: tuple[str, ...], workers: int
) -> Iterator[tuple[list[dict[str, Any]], list[tuple[str, str]]]]:
    """Yield (rows, skipped) per chunk of snapshots, in order, in this process or in worker processes."""
    chunks = [refs[i : i + CHUNK] for i in range(0, len(refs), CHUNK)]
    count = min(workers or os.cpu_count() or 1, len(chunks))
    with tqdm(total=len(refs), desc="snapshots", unit="snap", disable=None if refs else True) as bar:
        if count <= 1 or len(refs) < PARALLEL_FROM:
            with one_native_thread():
                for chunk in chunks:
                    bar.update(len(chunk))
                    yield featurise_snapshots(chunk, spec, columns)
            return
        context = get_context("spawn")
        with ProcessPoolExecutor(count, mp_context=context, initializer=limit_process_threads) as pool:
            for chunk, result in zip(
                chunks,
                pool.map(featurise_snapshots, chunks, [spec] * len(chunks), [columns] * len(chunks)),
                strict=True,
            ):
                bar.update(len(chunk))
                yield result


def featurise_snapshots(
    refs: list[RecordingRef], spec: FeatureSpec, columns: tuple[str, ...]
) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """One feature row per readable snapshot (with its id and fingerprint), and (source, reason) of the others."""
    rows, skipped = [], []
    for ref in refs:
        try:
            signal = read_signal(ref)
            features = featurize(
                signal.samples,
                signal.sample_rate,
                spec,
                layout_context(ref),
                columns=columns,
                logmel=False,
                strict=False,
            )
        except InputError as error:
            skipped.append((ref.source, error.reason))
            continue
        rows.append(
            {
                "machine_id": ref.machine_id,
                "event_timestamp": ref.event_timestamp,
                **features.values,
                "_recording_id": ref.recording_id,
                "_fingerprint": _fingerprint(ref, spec),
            }
        )
    return rows, skipped


def _fingerprint(ref: RecordingRef, spec: FeatureSpec) -> str:
    return f"{ref.fingerprint}/{spec.hash}"


def _cache_file(path: Path, spec: FeatureSpec, columns: tuple[str, ...], cache_dir: Path) -> Path:
    """One Parquet file per run folder or archive, feature spec and column set."""
    key = hashlib.sha256("|".join([str(path.resolve()), spec.hash, *columns]).encode()).hexdigest()[:16]
    return cache_dir / f"{path.name.split('.')[0]}-{key}.parquet"


def _read_cache(cache: Path, columns: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """Cached rows by recording id; an unreadable or outdated cache is ignored (and rewritten)."""
    if not cache.is_file():
        return {}
    try:
        table = pd.read_parquet(cache)
    except (OSError, ValueError) as error:
        log.warning("feature cache %s unreadable (%s): featurising again", cache, error)
        return {}
    if not {*PRIVATE, "machine_id", "event_timestamp", *columns} <= set(table.columns):
        return {}
    return {row["_recording_id"]: row for row in table.to_dict("records")}


def numeric_features(table: pd.DataFrame) -> list[str]:
    """Feature columns usable for a health index: numeric, not all missing, not constant."""
    candidates = table.drop(columns=["machine_id", "event_timestamp"], errors="ignore").select_dtypes("number")
    return [c for c in candidates if candidates[c].notna().any() and np.nanstd(candidates[c]) > 0]
