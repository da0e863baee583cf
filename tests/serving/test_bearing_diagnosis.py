"""The diagnosis section of a score answer: verdict, speed and where it came from, peak, harmonics, sidebands."""

from __future__ import annotations

import json

from vibrasense.serving.diagnosis import diagnose_bearing
from vibrasense.serving.schemas import BearingDiagnosis
from vibrasense.signals.bearings import PRESETS
from vibrasense.signals.synthetic import bearing_vibration


def test_an_inner_race_answer_carries_its_evidence_and_a_searched_speed() -> None:
    x = bearing_vibration(5.0, 12_000, PRESETS["cwru-6205-de"], 1772 / 60, "inner_race", severity=2.0, seed=2)
    answer = diagnose_bearing(x, 12_000, "cwru-6205-de", None)
    parsed = BearingDiagnosis.model_validate(answer)
    assert parsed.available and parsed.verdict == "inner_race" and parsed.bearing == "cwru-6205-de"
    assert parsed.speed_source == "search" and abs(parsed.shaft_rpm - 1772) < 6  # type: ignore[operator]
    kinds = [p.kind for p in parsed.evidence]
    assert kinds[0] == "fundamental" and parsed.evidence[0].label == "BPFI" and "sideband" in kinds
    json.dumps(answer)  # plain JSON: no arrays of the envelope spectrum


def test_a_stated_speed_is_the_users() -> None:
    x = bearing_vibration(2.0, 12_000, PRESETS["cwru-6205-de"], 1797 / 60, "outer_race", severity=3.0, seed=1)
    answer = diagnose_bearing(x, 12_000, "cwru-6205-de", 1797 / 60)
    assert answer["verdict"] == "outer_race" and answer["speed_source"] == "user" and answer["speed_basis"] is None
    assert answer["shaft_hz"] == round(1797 / 60, 4) and answer["defect_hz"]["bpfo"] > 100
