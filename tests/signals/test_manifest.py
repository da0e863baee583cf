"""A manifest lists recordings: bad rows and missing paths are reported by line and skipped, the rest ingested."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from vibrasense.config import IngestSettings
from vibrasense.errors import InputError
from vibrasense.signals.layouts import discover


def _wav(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.full(1_600, 0.01, np.float32), 16_000)


def test_a_manifest_with_a_bad_row_and_a_missing_path_ingests_the_rest(tmp_path: Path) -> None:
    root = tmp_path / "survey"
    _wav(root / "a" / "LM 1668.wav")
    _wav(root / "b" / "LM 1668.wav")
    _wav(root / "b" / "spare.wav")
    manifest = root / "recordings.csv"
    manifest.write_text(
        "path,machine_id,label,split,timestamp\n"
        "a/LM 1668.wav,press_1,normal,train,2024-05-01T12:00:00Z\n"
        "b/LM 1668.wav,,anomaly,test,\n"
        "b/spare.wav,press_2,broken,,\n"
        "b/gone.wav,press_2,normal,,\n"
    )
    ignored: list[tuple[str, str]] = []
    refs = discover(manifest, ignored, IngestSettings(manifest=manifest, label_rule="LM=normal"))
    assert [(r.recording_id, r.machine_id, r.label, r.split) for r in refs] == [
        ("survey/b/LM 1668.wav", "b", "anomaly", "test"),
        ("survey/a/LM 1668.wav", "press_1", "normal", "train"),
    ]
    assert refs[1].event_timestamp == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert refs[1].source == str(root / "a" / "LM 1668.wav")
    reasons = dict(ignored)
    assert set(reasons) == {f"{manifest}:4", f"{manifest}:5"}
    assert reasons[f"{manifest}:4"] == "label 'broken' is not one of normal, anomaly, unknown"
    assert reasons[f"{manifest}:5"].startswith("path 'b/gone.wav' does not exist")


def test_a_manifest_without_a_path_column_is_refused(tmp_path: Path) -> None:
    manifest = tmp_path / "list.csv"
    manifest.write_text("file,label\nx.wav,normal\n")
    with pytest.raises(InputError, match="a manifest needs a header with a 'path' column"):
        discover(manifest, ingest=IngestSettings(manifest=manifest))
