"""``vibrasense features --label-rule`` on class folders: every file a row, labelled by its folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
from typer.testing import CliRunner

from vibrasense.cli import app
from vibrasense.errors import ConfigError


def test_features_labels_class_folders_by_rule(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for folder in ("LM_DEF", "LM_NON-DEF"):
        for k in range(2):
            path = tmp_path / "set" / folder / f"LM {1668 + k}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, (0.1 * rng.standard_normal(8_000)).astype(np.float32), 16_000)
    (tmp_path / "set" / "notes.md").write_text("two classes")
    arguments = ["--workdir", str(tmp_path / "w"), "features", str(tmp_path / "set"), "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(
        app, [*arguments, "--label-rule", "DEF=anomaly", "--label-rule", "NON-DEF=normal", "--workers", "1"]
    )
    assert result.exit_code == 0, result.output
    assert "4 recordings processed" in result.output and "1 files or manifest rows ignored" in result.output
    table = pd.read_parquet(tmp_path / "out" / "features.parquet").set_index("recording_id")
    assert table["label"].to_dict() == {
        "set/LM_DEF/LM 1668.wav": "anomaly",
        "set/LM_DEF/LM 1669.wav": "anomaly",
        "set/LM_NON-DEF/LM 1668.wav": "normal",
        "set/LM_NON-DEF/LM 1669.wav": "normal",
    }
    assert set(table["machine_id"]) == {"set"}

    refused = CliRunner().invoke(app, [*arguments, "--label-rule", "DEF=brokn"])
    assert isinstance(refused.exception, ConfigError)  # main() prints it without a traceback, exit status 2
    assert str(refused.exception).startswith("--label-rule (ingest.label_rule): label 'brokn' of 'DEF'")
