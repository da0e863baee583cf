"""Which recordings train and test when the layout says little: runs to failure start healthy; any other
unlabelled set is refused with what to do."""

from __future__ import annotations

import pandas as pd
import pytest

from vibrasense.errors import InputError
from vibrasense.training.data import BASELINE_SNAPSHOTS, split_recordings


def unlabelled(machine_type: str, n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "recording_id": [f"set/rec_{i:03d}.wav" for i in range(n)],
            "machine_id": "set",
            "machine_type": machine_type,
            "label": "unknown",
            "split": "unknown",
            "source": [f"/data/set/rec_{i:03d}.wav" for i in range(n)],
            "event_timestamp": pd.date_range("2026-01-01", periods=n, freq="10min", tz="UTC"),
            "duration": 1.0,
        }
    )


def test_an_unlabelled_run_to_failure_trains_on_its_first_snapshots() -> None:
    train, test, rule = split_recordings(unlabelled("bearing", 80), seed=0)
    assert len(train) == BASELINE_SNAPSHOTS and test.empty and "first" in rule
    assert train["recording_id"].tolist() == [f"set/rec_{i:03d}.wav" for i in range(BASELINE_SNAPSHOTS)]


def test_an_unlabelled_folder_of_other_recordings_is_refused_with_what_to_do() -> None:
    with pytest.raises(InputError) as raised:
        split_recordings(unlabelled("unknown", 12), seed=0)
    assert raised.value.source == "label"
    assert "--label-rule" in raised.value.reason and "set/rec_000.wav" in raised.value.reason
