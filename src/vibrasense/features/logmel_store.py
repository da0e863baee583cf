"""Log-mel spectrograms on disk as memory-mapped float32 shards with an index.

Layout of ``<root>/``: ``shard-<name>.npy`` arrays of shape (frames, n_mels), each holding the frames of
several recordings one after another, and ``index.parquet`` with one row per recording
(recording_id, shard, start, n_frames). Readers memory-map the shards, so training never holds the whole
set in RAM.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from vibrasense.errors import InputError

INDEX_FILE = "index.parquet"
INDEX_COLUMNS = ["recording_id", "shard", "start", "n_frames"]


def write_shard(root: Path, name: str, spectrograms: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Write one shard atomically and return its index rows (not yet added to the store's index).

    Each spectrogram has shape (frames, n_mels); all must share n_mels.
    """
    root.mkdir(parents=True, exist_ok=True)
    ids = list(spectrograms)
    arrays = [np.asarray(spectrograms[i], dtype=np.float32) for i in ids]
    n_mels = {a.shape[1] for a in arrays}
    if len(n_mels) > 1:
        raise ValueError(f"shard {name}: spectrograms differ in n_mels {sorted(n_mels)}")
    lengths = np.array([a.shape[0] for a in arrays], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    data = np.concatenate(arrays, axis=0) if arrays else np.zeros((0, 0), np.float32)
    final = root / f"shard-{name}.npy"
    partial = root / f".shard-{name}.npy.partial"
    with open(partial, "wb") as handle:
        np.save(handle, data)
    os.replace(partial, final)
    return pd.DataFrame({"recording_id": ids, "shard": final.name, "start": starts, "n_frames": lengths})


def write_index(root: Path, rows: Iterable[pd.DataFrame]) -> None:
    """Replace the index atomically; a recording listed twice keeps its last row."""
    frames = [r for r in rows if len(r)]
    index = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=INDEX_COLUMNS)
    index = index.drop_duplicates("recording_id", keep="last").reset_index(drop=True)
    root.mkdir(parents=True, exist_ok=True)  # no shard yet when no recording could be read
    partial = root / f".{INDEX_FILE}.partial"
    index.to_parquet(partial, index=False)
    os.replace(partial, root / INDEX_FILE)


def remove_unindexed_shards(root: Path) -> list[str]:
    """Delete the shards the index does not refer to (a killed run's, or ones whose recordings were all re-done).

    Also deletes ``*.partial`` files. Returns the names removed; call it after :func:`write_index`.
    """
    index_path = root / INDEX_FILE
    if not index_path.is_file():
        return []
    kept = set(pd.read_parquet(index_path, columns=["shard"])["shard"])
    removed = []
    for path in [*root.glob("shard-*.npy"), *root.glob(".*.partial")]:
        if path.name not in kept:
            path.unlink(missing_ok=True)
            removed.append(path.name)
    return sorted(removed)


class LogMelStore:
    """Read-only, memory-mapped access to the log-mel spectrograms of many recordings."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        index_path = self.root / INDEX_FILE
        if not index_path.is_file():
            raise InputError(self.root, f"no log-mel store here ({INDEX_FILE} missing); run `vibrasense features`")
        self.index = pd.read_parquet(index_path).set_index("recording_id")
        self._shards: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.index)

    def __contains__(self, recording_id: object) -> bool:
        return recording_id in self.index.index

    def __iter__(self) -> Iterator[str]:
        return iter(self.index.index)

    @property
    def recording_ids(self) -> list[str]:
        """Every recording in the store, in index order."""
        return list(self.index.index)

    @property
    def n_mels(self) -> int:
        """Mel bands per frame."""
        if not len(self.index):
            raise InputError(self.root, "the log-mel store is empty")
        return int(self._shard(self.index["shard"].iloc[0]).shape[1])

    def n_frames(self, recording_id: str) -> int:
        """Frames of one recording."""
        return int(self._row(recording_id)["n_frames"])

    def __getitem__(self, recording_id: str) -> np.ndarray:
        """The (frames, n_mels) spectrogram of one recording, as a view of the memory map."""
        row = self._row(recording_id)
        start = int(row["start"])
        return self._shard(row["shard"])[start : start + int(row["n_frames"])]

    def _row(self, recording_id: str) -> pd.Series:
        try:
            return self.index.loc[recording_id]
        except KeyError:
            raise InputError(self.root, f"recording {recording_id!r} is not in the log-mel store") from None

    def _shard(self, name: str) -> np.ndarray:
        if name not in self._shards:
            self._shards[name] = np.load(self.root / name, mmap_mode="r")
        return self._shards[name]
