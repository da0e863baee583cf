"""The memory-mapped log-mel store: shards plus an index, read lazily."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vibrasense.errors import InputError
from vibrasense.features.logmel_store import LogMelStore, write_index, write_shard


def test_shards_round_trip_as_memory_maps(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    first = {"a": rng.standard_normal((5, 8)), "b": rng.standard_normal((3, 8))}
    second = {"c": rng.standard_normal((7, 8))}
    rows = [write_shard(tmp_path, "0001", first), write_shard(tmp_path, "0002", second)]
    write_index(tmp_path, rows)

    store = LogMelStore(tmp_path)
    assert store.recording_ids == ["a", "b", "c"]
    assert (len(store), store.n_mels, store.n_frames("b")) == (3, 8, 3)
    for key, value in {**first, **second}.items():
        assert isinstance(store[key], np.memmap)
        np.testing.assert_array_equal(store[key], value.astype(np.float32))
    assert not list(tmp_path.glob(".*partial"))


def test_a_recording_written_again_keeps_its_last_version(tmp_path: Path) -> None:
    rows = [
        write_shard(tmp_path, "1", {"a": np.zeros((2, 4))}),
        write_shard(tmp_path, "2", {"a": np.ones((3, 4))}),
    ]
    write_index(tmp_path, rows)
    store = LogMelStore(tmp_path)
    assert len(store) == 1
    np.testing.assert_array_equal(store["a"], np.ones((3, 4), np.float32))


def test_missing_store_and_unknown_recording_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"index\.parquet missing"):
        LogMelStore(tmp_path)
    write_index(tmp_path, [write_shard(tmp_path, "1", {"a": np.zeros((2, 4))})])
    with pytest.raises(InputError, match="'zzz' is not in the log-mel store"):
        LogMelStore(tmp_path)["zzz"]


def test_mixed_band_counts_in_one_shard_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="n_mels"):
        write_shard(tmp_path, "1", {"a": np.zeros((2, 4)), "b": np.zeros((2, 5))})
