"""The features stage: recordings in, validated features out, incremental, resumable and parallel.

A run discovers the recordings under each input, skips those already processed with the same fingerprint,
and extracts the rest in batches, on local processes or on a Dask cluster. Every finished batch is written
at once as a log-mel shard plus a Parquet part, so a run killed half-way loses at most the batches in flight
and the next run resumes where it stopped. At the end the parts are consolidated into
``features.parquet`` and the log-mel index, and ``ingest_report.json`` lists every recording skipped and why,
and every file ignored as no recording (another format, or no known layout). What a killed run leaves behind
(``*.partial`` files, shards no part refers to) is removed by the next; its local workers exit with it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
from tqdm import tqdm

from vibrasense.config import Settings
from vibrasense.errors import InputError, LayoutError, VibrasenseError
from vibrasense.features import logmel_store
from vibrasense.features.extract import BatchResult, extract_batch, extract_batch_on_worker, file_fingerprint
from vibrasense.features.spec import SPEC_FILE, FeatureSpec
from vibrasense.features.threads import limit_process_threads
from vibrasense.signals.layouts import discover
from vibrasense.signals.records import RECORD_COLUMNS, RecordingRef

log = logging.getLogger(__name__)

FEATURES_FILE = "features.parquet"
REPORT_FILE = "ingest_report.json"
SPECS_DIR = "specs"  # the same recordings extracted under other specs (features_under_spec)
PARTS_DIR = "parts"
LOGMEL_DIR = "logmel"
_PART_COLUMNS = ("_fingerprint", "_shard", "_start", "_n_frames")
ORPHAN_CHECK_S = 0.5
"""How often a local worker checks that the run that started it is still alive."""


@dataclass(frozen=True)
class SkippedRecording:
    """A recording that could not be used, and why."""

    source: str
    recording_id: str
    reason: str


@dataclass(frozen=True)
class IgnoredFile:
    """A file under the inputs that is no recording vibrasense reads (another format, or no known layout)."""

    source: str
    reason: str


@dataclass
class FeatureRun:
    """What one run of the features stage did."""

    out_dir: Path
    discovered: int = 0
    processed: int = 0
    unchanged: int = 0
    skipped: list[SkippedRecording] = field(default_factory=list)
    ignored: list[IgnoredFile] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def features_path(self) -> Path:
        """The consolidated feature table."""
        return self.out_dir / FEATURES_FILE

    @property
    def logmel_dir(self) -> Path:
        """The memory-mapped log-mel store."""
        return self.out_dir / LOGMEL_DIR

    @property
    def report_path(self) -> Path:
        """The ingest report (JSON)."""
        return self.out_dir / REPORT_FILE


def extract_features(
    inputs: Path | str | Sequence[Path | str],
    out_dir: Path | str,
    settings: Settings,
    *,
    progress: bool | None = None,
) -> FeatureRun:
    """Extract features of every recording under ``inputs`` into ``out_dir``; see the module docstring."""
    started = time.perf_counter()
    paths = [Path(inputs)] if isinstance(inputs, str | Path) else [Path(p) for p in inputs]
    if not paths:
        raise InputError("<inputs>", "no input path given")
    out = Path(out_dir)
    run = FeatureRun(out_dir=out)
    spec = FeatureSpec.from_settings(settings)
    ignored: list[tuple[str, str]] = []
    try:
        refs = _unique_refs(ref for path in paths for ref in discover(path, ignored, settings.ingest))
    except LayoutError:  # no recording at all: the report still names every file and why it was ignored
        run.ignored = [IgnoredFile(*item) for item in ignored]
        out.mkdir(parents=True, exist_ok=True)
        _write_report(run, paths, settings)
        raise
    run.ignored = [IgnoredFile(*item) for item in ignored]
    run.discovered = len(refs)
    _start_spec(out, spec)
    _remove_partials(out, out / PARTS_DIR, out / LOGMEL_DIR)

    done = _processed_fingerprints(out / PARTS_DIR)
    pending = [ref for ref in refs if done.get(ref.recording_id) != file_fingerprint(ref, spec)]
    run.unchanged = len(refs) - len(pending)
    if run.unchanged:
        log.info("%d recordings unchanged since the last run, %d to process", run.unchanged, len(pending))

    batches = [
        pending[i : i + settings.features.batch_size] for i in range(0, len(pending), settings.features.batch_size)
    ]
    with tqdm(
        total=len(pending), unit="rec", desc="features", disable=None if progress is None else not progress
    ) as bar:
        for batch_number, result in _run_batches(batches, settings):
            _write_part(out, batch_number, result)
            run.processed += len(result.rows)
            run.skipped.extend(SkippedRecording(*item) for item in result.skipped)
            bar.update(len(result.rows) + len(result.skipped))

    _consolidate(out, {ref.recording_id for ref in refs}, settings)
    run.seconds = time.perf_counter() - started
    _write_report(run, paths, settings)
    return run


def _start_spec(out: Path, spec: FeatureSpec) -> None:
    """Record the spec of this run; features of another spec are removed first, so none is ever mixed in."""
    if (out / SPEC_FILE).is_file():
        try:
            previous = FeatureSpec.load(out)
        except InputError as error:
            previous, changes = None, [f"the previous spec is unreadable ({error.reason})"]
        else:
            changes = previous.differences(spec)
        if changes:
            log.warning(
                "feature spec changed since the last run in %s (%s): every recording is extracted again",
                out,
                "; ".join(f"{change} (before vs now)" for change in changes) if previous else changes[0],
            )
            shutil.rmtree(out / PARTS_DIR, ignore_errors=True)
            shutil.rmtree(out / LOGMEL_DIR, ignore_errors=True)
    elif (out / PARTS_DIR).is_dir():
        log.warning(
            "%s holds features without a feature spec (an older version): every recording is extracted again", out
        )
        shutil.rmtree(out / PARTS_DIR, ignore_errors=True)
        shutil.rmtree(out / LOGMEL_DIR, ignore_errors=True)
    (out / PARTS_DIR).mkdir(parents=True, exist_ok=True)
    spec.save(out)


def _unique_refs(refs: Iterator[RecordingRef]) -> list[RecordingRef]:
    unique: dict[str, RecordingRef] = {}
    for ref in refs:
        if ref.recording_id in unique and unique[ref.recording_id].source != ref.source:
            raise InputError(
                ref.source,
                f"recording_id {ref.recording_id!r} is also used by {unique[ref.recording_id].source}; "
                "pass the two inputs to separate --out folders",
            )
        unique[ref.recording_id] = ref
    return list(unique.values())


def _run_batches(batches: list[list[RecordingRef]], settings: Settings) -> Iterator[tuple[int, BatchResult]]:
    """Yield (batch number, result) as batches finish, on Dask, on local processes, or in-process."""
    if not batches:
        return
    if settings.features.dask_scheduler:
        yield from _run_on_dask(batches, settings)
        return
    workers = min(settings.features.workers or os.cpu_count() or 1, len(batches))
    if workers <= 1:
        for number, batch in enumerate(batches):
            yield number, extract_batch(batch, settings)
        return
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=get_context("spawn"), initializer=_start_worker, initargs=(os.getpid(),)
    ) as pool:
        yield from _bounded(
            lambda batch: pool.submit(extract_batch, batch, settings), _first_done_local, batches, 2 * workers
        )


def _start_worker(parent: int) -> None:
    """A local worker: native pools on one thread, and an exit as soon as the run's process is gone.

    A run killed with SIGKILL cannot stop its pool: without this its workers (a few hundred MB each) would
    finish their batch and then wait on the pool's queue for ever.
    """
    limit_process_threads()
    threading.Thread(target=_exit_without, args=(parent,), name="orphan-watch", daemon=True).start()


def _exit_without(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(ORPHAN_CHECK_S)
    os._exit(1)


def _remove_partials(*folders: Path) -> None:
    """Remove the ``*.partial`` files a run killed half-way left (nothing refers to them)."""
    for folder in folders:
        for leftover in folder.glob(".*.partial") if folder.is_dir() else []:
            leftover.unlink(missing_ok=True)
            log.info("removed %s, left by an interrupted run", leftover)


def _run_on_dask(batches: list[list[RecordingRef]], settings: Settings) -> Iterator[tuple[int, BatchResult]]:
    from dask.distributed import Client
    from dask.distributed import wait as wait_dask

    address = settings.features.dask_scheduler
    try:
        client = Client(address, timeout="10s")
    except (OSError, TimeoutError) as error:
        raise VibrasenseError(
            f"cannot reach the Dask scheduler at {address} ({error}); check features.dask_scheduler"
        ) from None
    with client:
        workers = max(len(client.scheduler_info().get("workers", {})), 1)
        yield from _bounded(
            lambda batch: client.submit(extract_batch_on_worker, batch, settings, pure=False),
            lambda running: wait_dask(running, return_when="FIRST_COMPLETED").done,
            batches,
            2 * workers,
        )


def _first_done_local(running: list[Future]) -> set[Future]:
    return wait(running, return_when=FIRST_COMPLETED).done


def _bounded(
    submit: Callable[[list[RecordingRef]], Any],
    first_done: Callable[[list[Any]], set[Any]],
    batches: list[list[RecordingRef]],
    in_flight: int,
) -> Iterator[tuple[int, BatchResult]]:
    """Keep at most ``in_flight`` batches submitted, so memory stays flat however many there are."""
    queue = list(enumerate(batches))
    running: dict[object, int] = {}
    while queue or running:
        while queue and len(running) < in_flight:
            number, batch = queue.pop(0)
            running[submit(batch)] = number
        for future in first_done(list(running)):
            yield running.pop(future), future.result()


def _write_part(out: Path, batch_number: int, result: BatchResult) -> None:
    """Write one finished batch: its log-mel shard first, then the part that refers to it."""
    if not result.rows:
        return
    ids = [row["recording_id"] for row in result.rows]
    name = f"{time.time_ns():x}-{batch_number:05d}-{hashlib.sha1('|'.join(ids).encode()).hexdigest()[:8]}"
    index = logmel_store.write_shard(out / LOGMEL_DIR, name, result.logmels)
    part = pd.DataFrame(result.rows)
    part = part.merge(index.rename(columns=lambda c: c if c == "recording_id" else f"_{c}"), on="recording_id")
    partial = out / PARTS_DIR / f".part-{name}.parquet.partial"
    part.to_parquet(partial, index=False)
    os.replace(partial, out / PARTS_DIR / f"part-{name}.parquet")


def _part_files(parts_dir: Path) -> list[Path]:
    return sorted(parts_dir.glob("part-*.parquet"))


def _processed_fingerprints(parts_dir: Path) -> dict[str, str]:
    """Fingerprint of each processed recording; the windows of a segmented one count as the recording."""
    done: dict[str, str] = {}
    for path in _part_files(parts_dir):
        windows = "_recording" in pq.read_schema(path).names
        part = pd.read_parquet(path, columns=["recording_id", "_fingerprint", *(["_recording"] if windows else [])])
        done.update(zip(_recording(part), part["_fingerprint"], strict=True))
    return done


def _recording(table: pd.DataFrame) -> pd.Series:
    """The recording each row comes from: itself, or the recording a window was cut from."""
    return table["_recording"].fillna(table["recording_id"]) if "_recording" in table else table["recording_id"]


def _consolidate(out: Path, current_ids: set[str], settings: Settings) -> None:
    """Merge the parts into features.parquet and the log-mel index; the latest part wins per recording."""
    parts = [pd.read_parquet(path) for path in _part_files(out / PARTS_DIR)]
    columns = [*RECORD_COLUMNS, *FeatureSpec.from_settings(settings).columns]
    if parts:
        table = pd.concat([part.assign(_part=number) for number, part in enumerate(parts)], ignore_index=True)
        latest = table.groupby(_recording(table))["_part"].transform("max")  # a re-cut recording: no stale window
        table = table[table["_part"] == latest].drop_duplicates("recording_id", keep="last")
    else:
        table = pd.DataFrame(columns=[*columns, *_PART_COLUMNS])
    previous = table[~_recording(table).isin(current_ids)]
    if len(previous):
        log.info("%d recordings from earlier runs on other inputs are kept in %s", len(previous), out)
    table = table.sort_values(["machine_id", "event_timestamp", "recording_id"], kind="stable")
    index = table[["recording_id", "_shard", "_start", "_n_frames"]].rename(columns=lambda c: c.lstrip("_"))
    logmel_store.write_index(out / LOGMEL_DIR, [index])
    removed = logmel_store.remove_unindexed_shards(out / LOGMEL_DIR)
    if removed:
        log.info("removed %d log-mel shards no recording refers to any more from %s", len(removed), out / LOGMEL_DIR)
    features = table[columns].reset_index(drop=True)
    features["event_timestamp"] = pd.to_datetime(features["event_timestamp"], utc=True)
    partial = out / f".{FEATURES_FILE}.partial"
    features.to_parquet(partial, index=False)
    os.replace(partial, out / FEATURES_FILE)


def _write_report(run: FeatureRun, inputs: list[Path], settings: Settings) -> None:
    spec = FeatureSpec.from_settings(settings)
    report = {
        "inputs": [str(p) for p in inputs],
        "finished_at": datetime.now(UTC).isoformat(),
        "seconds": round(run.seconds, 3),
        "discovered": run.discovered,
        "processed": run.processed,
        "unchanged": run.unchanged,
        "skipped": [asdict(item) for item in run.skipped],
        "ignored": [asdict(item) for item in run.ignored],
        "features": str(run.features_path),
        "logmel": str(run.logmel_dir),
        "feature_spec": {"hash": spec.hash, **spec.model_dump(mode="json")},
    }
    partial = run.out_dir / f".{REPORT_FILE}.partial"
    partial.write_text(json.dumps(report, indent=2))
    os.replace(partial, run.report_path)


def features_under_spec(features_dir: Path | str, spec: FeatureSpec, settings: Settings) -> Path:
    """A features folder of the recordings of ``features_dir`` under ``spec``: the folder itself when its spec is
    that one, else the recordings of its ingest report extracted again under ``spec`` into
    ``<features_dir>/specs/<spec hash>`` (incremental: only what changed is extracted on later calls)."""
    folder = Path(features_dir)
    if read_spec(folder).hash == spec.hash:
        return folder
    report = folder / REPORT_FILE
    inputs = json.loads(report.read_text()).get("inputs") if report.is_file() else None
    if not inputs:
        raise InputError(report, "no ingest report naming the recordings: cannot extract them under another spec")
    out = folder / SPECS_DIR / spec.hash
    log.info("%s: extracting its recordings again under feature spec %s into %s", folder, spec.hash, out)
    extract_features(inputs, out, spec.applied_to(settings), progress=False)
    return out


def read_features(out_dir: Path | str) -> pd.DataFrame:
    """The consolidated feature table of a features folder."""
    path = Path(out_dir) / FEATURES_FILE
    if not path.is_file():
        raise InputError(path, "no feature table here; run `vibrasense features <input> --out <dir>` first")
    return pd.read_parquet(path)


def read_spec(out_dir: Path | str) -> FeatureSpec:
    """The feature spec the features in a folder were extracted with."""
    return FeatureSpec.load(out_dir)
