"""What a training run learns from and is evaluated on, read from the features stage's output.

Training recordings are the normal ones of the ``train`` split. Test recordings are the labelled ones
(normal or anomaly) of the ``test`` split. Where the layout gives no split (MIMII, CWRU folders), a seeded
30 % of each machine's normal recordings is held out for test together with every anomaly (of a recording cut
into windows at ingest, its last 30 % in time, without the windows that overlap them). Where nothing
is labelled (FEMTO and IMS runs to failure) the first ``BASELINE_SNAPSHOTS`` snapshots of each machine's run
are its healthy baseline and train; other unlabelled recordings (a folder in no known layout) are refused:
nothing says which are normal. The run records which rule was used.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vibrasense.config import Settings
from vibrasense.errors import InputError, ModelError, VibrasenseError
from vibrasense.features.logmel_store import LogMelStore
from vibrasense.features.pipeline import LOGMEL_DIR, read_features, read_spec
from vibrasense.features.spec import FeatureSpec
from vibrasense.models.base import Detector
from vibrasense.models.tabular import feature_columns

log = logging.getLogger(__name__)

HOLDOUT_FRACTION = 0.3
MIN_TRAINING_ROWS = 2
BASELINE_SNAPSHOTS = 50
RUN_MACHINE_TYPE = "bearing"
"""What the run-to-failure layouts (FEMTO, IMS) call their machines: an unlabelled run starts healthy."""
FEATURE_SERVICE = "detector_features"
NO_FEATURE_SERVICE = "features.parquet"


class Spectrograms(Sequence[np.ndarray]):
    """Lazy log-mel spectrograms of chosen recordings: each item is a memory-mapped view, read on use."""

    def __init__(self, store: LogMelStore, recording_ids: Sequence[str]) -> None:
        self.store = store
        self.recording_ids = list(recording_ids)

    def __len__(self) -> int:
        return len(self.recording_ids)

    def __getitem__(self, index: int) -> np.ndarray:  # type: ignore[override]
        return self.store[self.recording_ids[index]]


@dataclass
class TrainingData:
    """Normal training rows, labelled test rows, the log-mel store, and how they were chosen."""

    features_dir: Path
    train: pd.DataFrame
    test: pd.DataFrame
    split_rule: str
    feature_service: str
    logmel: LogMelStore | None
    spec: FeatureSpec

    @property
    def data_hash(self) -> str:
        """SHA-256 (first 16 hex digits) of the recordings and feature values used, train and test."""
        digest = hashlib.sha256()
        for frame in (self.train, self.test):
            hashed = pd.util.hash_pandas_object(frame.drop(columns=["event_timestamp"], errors="ignore"), index=False)
            digest.update(hashed.to_numpy().tobytes())
        return digest.hexdigest()[:16]

    @property
    def labelled_test(self) -> bool:
        """Whether there is any labelled test recording."""
        return len(self.test) > 0

    def with_normal_held_out(self, fraction: float, seed: int) -> TrainingData:
        """A copy with a seeded ``fraction`` of the normal training rows moved to the front of the test split (for
        a layout whose test split has no normal recording, such as the DCASE 2020 development set's)."""
        held = self.train.sample(frac=fraction, random_state=seed)
        test = pd.concat([held, self.test], ignore_index=True)
        return replace(self, train=self.train.drop(index=held.index), test=test)

    def inputs(self, detector: Detector | str, rows: pd.DataFrame) -> Any:
        """What ``detector`` consumes for ``rows``: lazy spectrograms or the feature columns."""
        kind = detector if isinstance(detector, str) else detector.input_kind
        if kind == "logmel":
            if self.logmel is None:
                raise ModelError(
                    f"{self.features_dir}: no log-mel store ({LOGMEL_DIR}/) for an autoencoder; "
                    "re-run `vibrasense features` on audio recordings"
                )
            missing = [r for r in rows["recording_id"] if r not in self.logmel]
            if missing:
                raise ModelError(
                    f"{self.features_dir / LOGMEL_DIR}: {len(missing)} recordings lack a log-mel spectrogram "
                    f"(first: {missing[0]}); re-run `vibrasense features`"
                )
            return Spectrograms(self.logmel, rows["recording_id"].tolist())
        return rows[feature_columns(rows)]


def anomaly_labels(rows: pd.DataFrame) -> np.ndarray:
    """1 for anomaly, 0 for normal."""
    return (rows["label"] == "anomaly").to_numpy(dtype=np.int64)


def load_training_data(settings: Settings, features_dir: Path | str) -> TrainingData:
    """Read ``features_dir`` (the output of ``vibrasense features``) and split it; see the module docstring."""
    folder = Path(features_dir)
    spec = checked_spec(settings, folder)
    table, service = _feature_table(settings, folder)
    if table.empty:
        raise ModelError(f"{folder}: the feature table is empty; run `vibrasense features <recordings> --out {folder}`")
    train, test, rule = split_recordings(table, settings.training.seed)
    if train.empty:
        raise ModelError(
            f"{folder}: no normal training recordings (split 'train', label 'normal', or normal recordings of a "
            f"layout without splits); found labels {sorted(table['label'].unique())} and splits "
            f"{sorted(table['split'].unique())}. Add normal recordings and re-run `vibrasense features`"
        )
    if len(train) < MIN_TRAINING_ROWS:
        raise ModelError(
            f"{folder}: {len(train)} normal training row(s) ({', '.join(train['recording_id'].astype(str))}): a "
            f"detector learns the spread of normal data and needs at least {MIN_TRAINING_ROWS}; one recording is one "
            "row. Cut recordings into windows at ingest (`vibrasense features <input> --segment 1s --hop 0.1s`, "
            "and the same features.segment in the configuration) or add normal recordings"
        )
    logmel = None
    if (folder / LOGMEL_DIR).is_dir():
        try:
            logmel = LogMelStore(folder / LOGMEL_DIR)
        except InputError as error:
            log.warning("log-mel store unusable: %s", error)
    log.info("%d training and %d test recordings (%s)", len(train), len(test), rule)
    return TrainingData(folder, train, test, rule, service, logmel, spec)


def checked_spec(settings: Settings, folder: Path) -> FeatureSpec:
    """The spec of the features in ``folder``; a :class:`ModelError` naming each field where it differs from the
    spec the configuration asks for (a model must be trained on exactly the inputs it will be served)."""
    try:
        found = read_spec(folder)
    except InputError as error:
        raise ModelError(f"{error.source}: {error.reason}; re-run `vibrasense features` into {folder}") from None
    wanted = FeatureSpec.from_settings(settings)
    changes = found.differences(wanted)
    if changes:
        raise ModelError(
            f"{folder}: the features were extracted with another feature spec than the configuration asks for "
            f"({'; '.join(f'{change} (features vs configuration)' for change in changes)}); re-run "
            f"`vibrasense features` with this configuration, or configure the same settings for training"
        )
    return found


def split_recordings(table: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """(normal training rows, labelled test rows, the rule used)."""
    if (table["split"] == "train").any():
        train = table[(table["split"] == "train") & (table["label"] != "anomaly")]
        test = table[(table["split"] == "test") & table["label"].isin(["normal", "anomaly"])]
        rule = "layout splits: train = normal recordings of split 'train'; test = labelled recordings of split 'test'"
        return train.reset_index(drop=True), test.reset_index(drop=True), rule
    if not table["label"].isin(["normal", "anomaly"]).any():
        if "machine_type" in table and (table["machine_type"] != RUN_MACHINE_TYPE).any():
            others = table.loc[table["machine_type"] != RUN_MACHINE_TYPE, "recording_id"]
            raise InputError(
                "label",
                f"no recording is labelled normal or anomaly, and {len(others)} (e.g. {others.iloc[0]!r}) are not "
                "snapshots of a run to failure, whose first snapshots could be its healthy baseline: nothing says "
                "which are normal; label them with --label-rule or --manifest (README, Ingest) and extract the "
                "features again",
            )
        return _run_baselines(table)
    normal = table[table["label"] == "normal"]
    rng = np.random.default_rng(seed)
    held: list[int] = []
    dropped: list[int] = []
    windowed = normal.groupby("source")["source"].transform("size") > 1  # windows cut from one recording
    for _, group in normal[~windowed].groupby("machine_id", sort=True):
        order = rng.permutation(group.index.to_numpy())
        n_test = round(len(order) * HOLDOUT_FRACTION) if len(order) >= 2 else 0
        held.extend(order[:n_test].tolist())
    for _, windows in normal[windowed].groupby("source", sort=True):
        test_windows, overlapping = _last_windows(windows)
        held.extend(test_windows)
        dropped.extend(overlapping)
    train = normal.drop(index=held + dropped)
    test = pd.concat([normal.loc[held], table[table["label"] == "anomaly"]])
    rule = (
        f"no layout splits: {HOLDOUT_FRACTION:.0%} of each machine's normal recordings (seed {seed}) and every "
        "anomaly are test; the other normal recordings train"
    )
    if windowed.any():
        rule += (
            f"; of a recording cut into windows, the last {HOLDOUT_FRACTION:.0%} of its windows (in time) are test "
            "and the windows overlapping them are left out"
        )
    return train.reset_index(drop=True), test.reset_index(drop=True), rule


def _last_windows(windows: pd.DataFrame) -> tuple[list[int], list[int]]:
    """(held-out, left-out) rows of one recording's windows: the last share in time, and the earlier windows
    that overlap the first held-out one (a model must not have seen the samples it is tested on)."""
    ordered = windows.sort_values("event_timestamp", kind="stable")
    n_test = round(len(ordered) * HOLDOUT_FRACTION)
    if not n_test:
        return [], []
    held = ordered.iloc[-n_test:]
    first = held["event_timestamp"].iloc[0]
    earlier = ordered.iloc[:-n_test]
    ends = earlier["event_timestamp"] + pd.to_timedelta(earlier["duration"], unit="s")
    return held.index.tolist(), earlier.index[ends > first].tolist()


def _run_baselines(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Unlabelled runs (FEMTO, IMS snapshots): the first snapshots of each machine's run are its healthy baseline."""
    ordered = table.sort_values(["machine_id", "event_timestamp"], kind="stable")
    first = ordered.groupby("machine_id", sort=True).head(BASELINE_SNAPSHOTS)
    rule = (
        f"unlabelled runs: the first {BASELINE_SNAPSHOTS} snapshots of each machine (by time) are normal training "
        "recordings; nothing is labelled for test"
    )
    return first.reset_index(drop=True), table.iloc[0:0].reset_index(drop=True), rule


def _feature_table(settings: Settings, folder: Path) -> tuple[pd.DataFrame, str]:
    """The feature rows via the Feast feature store when it is available and applied, else features.parquet."""
    table = read_features(folder)
    try:
        from vibrasense.store import build_training_set
    except ImportError as error:
        log.info("feature store unavailable (%s); reading %s directly", error, folder / "features.parquet")
        return table, NO_FEATURE_SERVICE
    entities = table[["recording_id", "machine_id", "event_timestamp"]]
    if entities.duplicated(["machine_id", "event_timestamp"]).any():
        log.info(
            "recordings of one machine share a timestamp, which a point-in-time join cannot tell apart; "
            "reading %s directly",
            folder / "features.parquet",
        )
        return table, NO_FEATURE_SERVICE
    try:
        served = build_training_set(settings, entities, FEATURE_SERVICE, source=folder / "features.parquet")
    except VibrasenseError as error:
        log.info("feature store not usable (%s); reading %s directly", error, folder / "features.parquet")
        return table, NO_FEATURE_SERVICE
    metadata = table.drop(columns=[c for c in feature_columns(table)])
    served = served.drop(columns=[c for c in served.columns if c in metadata.columns and c != "recording_id"])
    return metadata.merge(served, on="recording_id", how="inner"), FEATURE_SERVICE
