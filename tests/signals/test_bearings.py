"""Bearing geometry: published defect-frequency orders, presets, and which bearing a recording uses."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from vibrasense.errors import ConfigError
from vibrasense.signals.bearings import PRESETS, defect_frequencies, get_bearing, layout_context
from vibrasense.signals.records import RecordingRef, SignalContext


def _ref(machine_id: str, **attributes: object) -> RecordingRef:
    return RecordingRef(
        recording_id=f"{machine_id}_1",
        source=f"/data/{machine_id}/1",
        format="femto",
        machine_id=machine_id,
        machine_type="bearing",
        event_timestamp=datetime(2026, 1, 1, tzinfo=UTC),
        kind="vibration",
        attributes=dict(attributes),
    )


def test_cwru_drive_end_orders_match_the_published_values() -> None:
    """CWRU Bearing Data Center, SKF 6205-2RS JEM: multiples of running speed."""
    shaft = 1797 / 60
    orders = {name: hz / shaft for name, hz in defect_frequencies(PRESETS["cwru-6205-de"], shaft).items()}
    assert orders["bpfo"] == pytest.approx(3.5848, abs=1e-3)
    assert orders["bpfi"] == pytest.approx(5.4152, abs=1e-3)
    assert orders["bsf"] == pytest.approx(2.3570, abs=1e-3)
    assert 2 * orders["bsf"] == pytest.approx(4.7135, abs=1e-3)  # CWRU lists the ball defect at 2·BSF
    assert orders["ftf"] == pytest.approx(0.39828, abs=1e-3)


def test_ims_rexnord_frequencies_match_the_published_values() -> None:
    """Qiu et al. (2006), IMS test rig at 2000 rpm: BPFO 236.4, BPFI 296.9, BSF 139.9, FTF 14.8 Hz."""
    hz = defect_frequencies(get_bearing("ims-za2115"), 2000 / 60)
    assert hz["bpfo"] == pytest.approx(236.4, abs=0.1)
    assert hz["bpfi"] == pytest.approx(296.9, abs=0.1)
    assert hz["bsf"] == pytest.approx(139.9, abs=0.1)
    assert hz["ftf"] == pytest.approx(14.8, abs=0.1)


def test_frequencies_scale_with_shaft_speed_and_obey_the_kinematic_identities() -> None:
    bearing = get_bearing("femto")
    slow, fast = defect_frequencies(bearing, 25.0), defect_frequencies(bearing, 50.0)
    assert all(fast[name] == pytest.approx(2 * slow[name]) for name in slow)
    assert slow["bpfo"] + slow["bpfi"] == pytest.approx(bearing.n_elements * 25.0)  # BPFO + BPFI = n·fr
    assert slow["bpfo"] == pytest.approx(bearing.n_elements * slow["ftf"])  # BPFO = n·FTF


def test_unknown_preset_is_a_config_error_naming_the_presets() -> None:
    with pytest.raises(
        ConfigError, match=r"features\.vibration\.bearing: unknown bearing preset 'skf-9999'.*cwru-6205-de"
    ):
        get_bearing("skf-9999")


def test_layout_context_takes_the_bearing_and_speed_from_the_recording() -> None:
    assert layout_context(_ref("cwru_de", bearing_preset="cwru-6205-de")) == SignalContext("cwru-6205-de", None)
    measured = layout_context(_ref("cwru_de", bearing_preset="cwru-6205-de", shaft_rpm=1772))
    assert measured.shaft_hz == pytest.approx(1772 / 60)
    assert layout_context(_ref("Bearing2_1", bearing_preset="femto")).shaft_hz == pytest.approx(1650 / 60)
    assert layout_context(_ref("Bearing3_1", bearing_preset="femto")).shaft_hz == pytest.approx(25.0)
    assert layout_context(_ref("pump_id_00")) == SignalContext()  # audio clip: nothing is guessed
