"""Bearing diagnosis on the CWRU seeded faults (load 0), drive-end and fan-end channels, speeds stated or searched.

Every fault here was seeded in the drive-end bearing, so a verdict is right when it names the fault class and
that bearing (a fan-end sensor hears it through the shaft), and "none" on the normal record. CWRU Bearing Data
Center; reference: Smith & Randall (2015), envelope analysis names most inner- and outer-race records and few
ball records. ``benchmarks/prognostics.py --only cwru`` prints the same counts per record.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from vibrasense.errors import InputError
from vibrasense.prognostics import diagnose
from vibrasense.signals.bearings import CWRU_POSITION_PRESETS, SHAFT_NEIGHBOURS
from vibrasense.signals.layouts import discover
from vibrasense.signals.readers import read_signal, recording_shaft_hz

pytestmark = pytest.mark.realdata
SEEDED = "cwru-6205-de"
CLASSES = {"inner_race": "inner_race", "outer_race": "outer_race", "ball": "rolling_element", "none": "none"}


def _counts(root: Path, channel: str, stated: bool) -> dict[str, tuple[int, int]]:
    """(named right, records) per class, the channel diagnosed for its own bearing and the other one on the shaft;
    a record without the channel is left out (the 028 files hold DE only)."""
    own = CWRU_POSITION_PRESETS[channel]
    counts: dict[str, tuple[int, int]] = {}
    for ref in discover(root):
        try:
            signal = read_signal(ref, channel)
        except InputError as error:
            assert "does not exist" in error.reason
            continue
        speed = recording_shaft_hz(ref) if stated else None
        result = diagnose(signal.samples, signal.sample_rate, own, speed, "file", SHAFT_NEIGHBOURS[own])
        truth = CLASSES[ref.attributes["fault"]]
        right = result.verdict == truth and (truth == "none" or result.bearing == SEEDED)
        hits, total = counts.get(truth, (0, 0))
        counts[truth] = (hits + right, total + 1)
    return counts


@pytest.mark.parametrize("stated", [True, False], ids=["file-speed", "searched-speed"])
def test_drive_end_channel_names_inner_and_outer_race_and_most_ball_records(shared_data: Path, stated: bool) -> None:
    counts = _counts(shared_data / "cwru", "DE", stated)
    print("DE", "file" if stated else "searched", counts)
    assert counts["none"] == (1, 1)
    assert counts["inner_race"][0] >= 3 and counts["outer_race"][0] >= 6  # of 4 and 7: IR 028, OR 014 @6 miss
    assert counts["rolling_element"][0] >= 2


@pytest.mark.parametrize("stated", [True, False], ids=["file-speed", "searched-speed"])
def test_fan_end_channel_names_the_drive_end_defect_it_hears(shared_data: Path, stated: bool) -> None:
    counts = _counts(shared_data / "cwru", "FE", stated)
    print("FE", "file" if stated else "searched", counts)
    assert counts["none"] == (1, 1)
    assert counts["inner_race"] == (3, 3) and counts["outer_race"][0] >= 6  # of 7: OR 014 @6 misses


def test_a_028_file_states_no_speed_so_the_diagnosis_searches_it(shared_data: Path) -> None:
    """The 028 files hold only ``X<other number>_DE_time``: no RPM is read, none is made up, the speed is searched."""
    faults = shared_data / "cwru" / "12k_Drive_End_Bearing_Fault_Data"
    stated = {ref.recording_id: recording_shaft_hz(ref) for ref in discover(faults / "B")}
    assert stated["cwru_3005_0"] is None and stated["cwru_118_0"] == pytest.approx(1796 / 60)
    ref = discover(faults / "B" / "028")[0]
    signal = read_signal(ref)
    result = diagnose(signal.samples, signal.sample_rate, SEEDED, None, "file", SHAFT_NEIGHBOURS[SEEDED])
    assert result.verdict == "rolling_element" and result.speed_source == "search"
    assert result.speed_basis == "shaft_harmonics" and abs(result.shaft_hz * 60 - 1797) < 5
