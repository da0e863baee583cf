"""``vibrasense diagnose`` and ``prognose`` as a user runs them: bad files reported, speeds and times readable."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from vibrasense.cli import app

FAULTS = Path("cwru") / "12k_Drive_End_Bearing_Fault_Data"


def _objects(output: str) -> list[dict]:
    """The JSON objects ``--json`` printed (rich pretty-prints each over several lines)."""
    decoder, found, position = json.JSONDecoder(), [], 0
    while (start := output.find("{", position)) != -1:
        value, position = decoder.raw_decode(output, start)
        found.append(value)
    return found


@pytest.mark.realdata
def test_a_12k_inner_race_file_under_a_normal_path_is_read_at_12k_and_diagnosed_inner_race(
    shared_data: Path, tmp_path: Path
) -> None:
    source = shared_data / FAULTS / "IR" / "007" / "105_0.mat"
    renamed = tmp_path / "abnormal_tests" / "normal" / "inner.mat"  # no record number in the name: X105 says it
    for target in (tmp_path / "abnormal_tests" / "normal" / "IR" / "007" / "105_0.mat", renamed):
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, target)
    result = CliRunner().invoke(app, ["diagnose", str(tmp_path / "abnormal_tests"), "--json"])
    assert result.exit_code == 0, result.output
    verdicts = _objects(result.output)
    assert [v["verdict"] for v in verdicts] == ["inner_race", "inner_race"]
    assert all(v["confidence"] > 0.8 for v in verdicts)


@pytest.mark.realdata
def test_diagnose_reports_a_corrupt_file_and_a_broken_link_and_diagnoses_the_rest(
    shared_data: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "batch" / "IR" / "007"
    folder.mkdir(parents=True)
    (folder / "105_0.mat").symlink_to(shared_data / FAULTS / "IR" / "007" / "105_0.mat")
    (tmp_path / "batch" / "OR" / "021").mkdir(parents=True)
    (tmp_path / "batch" / "OR" / "021" / "234_0.mat").symlink_to(
        shared_data / FAULTS / "OR" / "021" / "@6" / "234_0.mat"
    )
    (folder / "106_0.mat").write_bytes(b"MATLAB 5.0 MAT-file, cut short by a failed copy")
    (folder / "107_0.mat").symlink_to(tmp_path / "gone.mat")
    runner = CliRunner()
    result = runner.invoke(app, ["diagnose", str(tmp_path / "batch")])
    assert result.exit_code == 0, result.output
    assert "inner_race" in result.output and "outer_race" in result.output
    assert "skipped" in result.output and "106_0.mat: unreadable .mat file" in result.output
    assert re.search(r"107_0\.mat: (broken link to \S*gone\.mat|file does not exist)", result.output)
    assert "2 recordings diagnosed, 2 skipped" in result.output
    nothing = runner.invoke(app, ["diagnose", str(folder / "106_0.mat"), str(tmp_path / "missing")])
    assert nothing.exit_code == 1
    assert "unreadable .mat file" in nothing.output and "does not exist" in nothing.output


@pytest.mark.realdata
def test_diagnose_takes_each_files_shaft_speed_unless_told(shared_data: Path) -> None:
    runner = CliRunner()
    files = [
        str(shared_data / FAULTS / "IR" / "007" / "105_0.mat"),
        str(shared_data / FAULTS / "B" / "007" / "118_0.mat"),
    ]
    own = {
        v["recording_id"]: v["shaft_hz"] for v in _objects(runner.invoke(app, ["diagnose", *files, "--json"]).output)
    }
    assert own == {"cwru_105_0": pytest.approx(1797 / 60, abs=1e-4), "cwru_118_0": pytest.approx(1796 / 60, abs=1e-4)}
    told = runner.invoke(app, ["diagnose", *files, "--json", "--shaft-hz", "29.5"]).output
    assert {v["shaft_hz"] for v in _objects(told)} == {29.5}


def test_prognose_shows_elapsed_times_latches_and_reuses_the_feature_cache(
    tmp_path: Path, synthetic_runs: dict[int, Path]
) -> None:
    runner = CliRunner()
    work = tmp_path / "work"
    arguments = ["--workdir", str(work), "prognose", str(synthetic_runs[150]), "--no-mlflow", "--past"]
    wide = {"COLUMNS": "200"}
    first = runner.invoke(app, [*arguments, str(synthetic_runs[120])], env=wide)
    assert first.exit_code == 0, first.output
    assert "2026-" not in first.output  # no wall-clock dates: time since the first snapshot
    row = next(line for line in first.output.splitlines() if "bearing_150" in line)
    assert "18 min 40 s" in row and "ON" in row and " 1 " in row  # alarm at snapshot 112 of 150, 10 s apart
    assert len(list((work / "prognostics-cache").glob("*.parquet"))) == 2
    table = pd.read_csv(work / "prognostics" / "bearing_150_prognosis.csv")
    alarm = table.loc[table["alarm"], "elapsed_hours"].iloc[0]
    assert alarm * 3600 == pytest.approx(1120)
    reset = runner.invoke(app, [*arguments, str(synthetic_runs[120]), "--reset-at", "20min"], env=wide)
    assert reset.exit_code == 0, reset.output
    again = pd.read_csv(work / "prognostics" / "bearing_150_prognosis.csv")
    before = again["elapsed_hours"] * 3600 <= 1200
    assert not again.loc[~before, "alarm"].iloc[0] and again["alarm"].iloc[-1]  # cleared at 20 min, raised again
    pd.testing.assert_frame_equal(again[before], table[before])  # nothing before the reset changes
