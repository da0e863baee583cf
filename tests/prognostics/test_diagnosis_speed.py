"""Bearing diagnosis where the shaft speed is not stated: searched, named, and the fan-end bearing chosen."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from vibrasense.cli import app
from vibrasense.prognostics import diagnose
from vibrasense.prognostics.diagnosis_plot import plot_envelope_spectrum
from vibrasense.prognostics.speed import shaft_speed_from_harmonics
from vibrasense.signals.bearings import PRESETS, defect_frequencies, position_preset
from vibrasense.signals.synthetic import bearing_vibration

CWRU = PRESETS["cwru-6205-de"]
RATE = 12_000


def test_the_fan_end_preset_gives_the_published_cwru_multiples_of_running_speed() -> None:
    orders = defect_frequencies(PRESETS["cwru-6203-fe"], 1.0)
    published = {"bpfi": 4.9469, "bpfo": 3.0530, "ftf": 0.3817, "bsf": 1.9944}
    assert orders == pytest.approx(published, abs=1e-3)
    assert position_preset("cwru-6205-de", "FE") == "cwru-6203-fe"
    assert position_preset("cwru-6205-de", "de") == "cwru-6205-de"
    assert position_preset("femto", "FE") == "femto" and position_preset("cwru-6205-de", 1) == "cwru-6205-de"


def test_the_speed_search_finds_an_outer_race_defect_at_a_speed_the_preset_does_not_expect(tmp_path: Path) -> None:
    true_hz = 1750 / 60  # 2.6 % below the preset's 1797 rpm: BPFO lies 2.8 Hz off its usual place
    x = bearing_vibration(10.0, RATE, CWRU, true_hz, "outer_race", severity=1.0, seed=3)
    result = diagnose(x, RATE, CWRU)
    assert result.verdict == "outer_race"
    assert result.speed_source == "search" and result.speed_basis == "defect_lines"  # two shaft lines: too few
    assert result.shaft_hz == pytest.approx(true_hz, rel=0.003)
    assert result.evidence[0].label == "BPFO" and result.evidence[0].kind == "fundamental"
    assert {p.kind for p in result.evidence} >= {"fundamental", "harmonic"}
    assert result.as_dict()["speed_source"] == "search"
    assert plot_envelope_spectrum(result, tmp_path / "spectrum.png").stat().st_size > 10_000
    assert diagnose(x, RATE, CWRU, 1797 / 60, "user").verdict != "outer_race"  # the usual speed misses it


def test_shaft_harmonics_give_the_speed_and_noise_gives_none() -> None:
    rng = np.random.default_rng(1)
    t = np.arange(10 * RATE) / RATE
    true_hz = 1772 / 60
    x = sum(np.sin(2 * np.pi * k * true_hz * t + k) / k for k in range(1, 9)) + 0.5 * rng.standard_normal(len(t))
    found = shaft_speed_from_harmonics(x, RATE, 1797 / 60, 0.04)
    assert found is not None and found[0] == pytest.approx(true_hz, rel=0.001)
    assert shaft_speed_from_harmonics(rng.standard_normal(len(t)), RATE, 1797 / 60, 0.04) is None


@pytest.mark.parametrize("seconds", [1.0, 10.0])
def test_a_searched_speed_finds_no_defect_in_noise_or_a_healthy_bearing(seconds: float) -> None:
    rng = np.random.default_rng(8)
    for x in (rng.standard_normal(int(seconds * RATE)), bearing_vibration(seconds, RATE, CWRU, 1760 / 60, seed=8)):
        result = diagnose(x, RATE, CWRU)
        assert result.verdict == "none" and result.speed_source in ("search", "nominal")


def test_a_preset_without_a_usual_speed_needs_one() -> None:
    bare = dataclasses.replace(CWRU, shaft_rpm=None)
    with pytest.raises(Exception, match="shaft_hz"):
        diagnose(np.random.default_rng(0).standard_normal(RATE), RATE, bare)


@pytest.mark.realdata
def test_the_fan_end_channel_uses_the_6203_and_hears_the_drive_end(shared_data: Path, tmp_path: Path) -> None:
    source = shared_data / "cwru" / "12k_Drive_End_Bearing_Fault_Data" / "IR" / "007" / "105_0.mat"
    runner = CliRunner()
    fan = runner.invoke(app, ["diagnose", str(source), "--channel", "FE", "--json"])
    assert fan.exit_code == 0, fan.output
    assert '"sensor_bearing": "cwru-6203-fe"' in fan.output and '"speed_source": "file"' in fan.output
    # the defect lies in the drive-end bearing, which the fan-end sensor hears through the shaft
    assert '"verdict": "inner_race"' in fan.output and '"bearing": "cwru-6205-de"' in fan.output
    plot = tmp_path / "ir.png"
    drive = runner.invoke(app, ["diagnose", str(source), "--plot", str(plot)], env={"COLUMNS": "250"})
    assert drive.exit_code == 0, drive.output
    assert "inner_race" in drive.output and "cwru-6205-de" in drive.output and "(file)" in drive.output
    assert "BPFI" in drive.output and "harmonics" in drive.output and "sidebands" in drive.output
    assert plot.stat().st_size > 10_000
