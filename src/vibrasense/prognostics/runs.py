"""A machine's time-ordered snapshots as a feature table, from raw recordings or from a per-snapshot table.

Accepted: a run folder or archive of recordings (FEMTO ``acc_*.csv``, an IMS test folder, …), a vibrasense
``features.parquet``, an IMS per-file feature table (``Bearing1_ch1_rms``, … with ``timestamp``) and the
merged IMS 2nd-test table (one column of mean absolute acceleration per bearing). The result has one row
per snapshot: ``machine_id``, ``event_timestamp`` (UTC) and numeric feature columns.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from vibrasense.config import Settings
from vibrasense.errors import InputError
from vibrasense.features.featurize import featurize
from vibrasense.features.spec import FeatureSpec
from vibrasense.signals.bearings import layout_context
from vibrasense.signals.layouts import discover
from vibrasense.signals.readers import read_signal

IMS_COLUMN = re.compile(r"^(Bearing\d+)_(ch\d+)_(\w+)$")
TABLE_SUFFIXES = (".csv", ".parquet")


def load_run(path: Path | str, settings: Settings) -> pd.DataFrame:
    """Snapshots under ``path`` as a feature table sorted by machine and time."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "does not exist; give a run folder or archive, or a per-snapshot feature table")
    if path.is_file() and path.suffix.lower() in TABLE_SUFFIXES and not path.name.startswith("acc_"):
        table = _read_table(path)
    else:
        table = _featurise_recordings(path, settings)
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


def _featurise_recordings(path: Path, settings: Settings) -> pd.DataFrame:
    """Vibration features of each snapshot, through the one featurizer with the configured spec."""
    spec = FeatureSpec.from_settings(settings)
    rows = []
    refs = discover(path)
    for ref in tqdm(refs, desc="snapshots", unit="snap", disable=None):
        signal = read_signal(ref)
        context = layout_context(ref)
        features = featurize(
            signal.samples,
            signal.sample_rate,
            spec,
            context,
            columns=spec.vibration_columns,
            logmel=False,
            strict=False,
        )
        rows.append({"machine_id": ref.machine_id, "event_timestamp": ref.event_timestamp, **features.values})
    return pd.DataFrame(rows)


def numeric_features(table: pd.DataFrame) -> list[str]:
    """Feature columns usable for a health index: numeric, not all missing, not constant."""
    candidates = table.drop(columns=["machine_id", "event_timestamp"], errors="ignore").select_dtypes("number")
    return [c for c in candidates if candidates[c].notna().any() and np.nanstd(candidates[c]) > 0]
