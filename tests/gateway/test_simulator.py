"""The simulated plant, without a broker: anomaly spans (a defect and its repair) and what each snapshot carries."""

from __future__ import annotations

import numpy as np
import pytest

from vibrasense.errors import ConfigError
from vibrasense.gateway import AnomalySpan, Plant, Scenario
from vibrasense.gateway.codec import decode_waveform
from vibrasense.gateway.simulator import parse_anomaly
from vibrasense.signals.synthetic import PLANT_EPOCH


def test_an_anomaly_spec_may_name_the_repair() -> None:
    assert parse_anomaly("pump_id_01=bearing@6-22.5") == ("pump_id_01", AnomalySpan("bearing", 6.0, 22.5))
    assert parse_anomaly("pump_id_01=imbalance@60") == ("pump_id_01", AnomalySpan("imbalance", 60.0, float("inf")))


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("pump_id_01=bearing@22-6", "must come after the start"),
        ("pump_id_01=bearing@6-6", "must come after the start"),
        ("pump_id_01=melting@6", "MACHINE=ANOMALY@FROM-TO"),
        ("pump_id_01@6", "MACHINE=ANOMALY@SECONDS"),
    ],
)
def test_a_bad_anomaly_spec_says_how_to_write_it(text: str, named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        parse_anomaly(text)


def pump_samples(scenario: Scenario, machine_id: str) -> list[np.ndarray]:
    """The samples of every snapshot the machine sends, in order."""
    return [
        decode_waveform(message.payload, 1_000_000).frames()
        for message in Plant(scenario, start=PLANT_EPOCH).messages()
        if f"/{machine_id}/" in message.topic
    ]


def test_a_repaired_machine_sounds_as_it_did_before_its_defect() -> None:
    healthy = pump_samples(Scenario(sound_machines=2, duration_s=12), "pump_id_01")
    span = AnomalySpan("bearing", 4.0, 8.0)
    repaired = pump_samples(Scenario(sound_machines=2, duration_s=12, anomalies={"pump_id_01": span}), "pump_id_01")
    assert len(healthy) == len(repaired) == 12
    same = [bool(np.array_equal(a, b)) for a, b in zip(healthy, repaired, strict=True)]
    assert same == [True] * 4 + [False] * 4 + [True] * 4
    # the other machine is untouched by its neighbour's defect
    assert all(
        np.array_equal(a, b)
        for a, b in zip(
            pump_samples(Scenario(sound_machines=2, duration_s=12), "pump_id_00"),
            pump_samples(Scenario(sound_machines=2, duration_s=12, anomalies={"pump_id_01": span}), "pump_id_00"),
            strict=True,
        )
    )
