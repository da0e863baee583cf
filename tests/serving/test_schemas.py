"""The field rules of the API, each stated once: machine ids match whole, the sample-rate range is the settings'."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from vibrasense.config import ServingSettings
from vibrasense.serving.schemas import (
    VALIDATION_CONTEXT_KEY,
    BearingPreset,
    Channel,
    MachineId,
    ScoreRequest,
    ShaftHz,
)


def refused(body: bytes, **serving: float) -> list[tuple[tuple, str]]:
    context = {VALIDATION_CONTEXT_KEY: ServingSettings(**serving)} if serving else None
    try:
        ScoreRequest.model_validate_json(body, context=context)
    except ValidationError as error:
        return [(detail["loc"], detail["msg"]) for detail in error.errors()]
    return []


@pytest.mark.parametrize("good", ["fan-03:line_2", "a", "A.b_c:d-e", "x" * 128])
def test_machine_ids_accepted(good: str) -> None:
    assert TypeAdapter(MachineId).validate_python(good) == good


@pytest.mark.parametrize("bad", ["abc\n", "abc\r\n", "\nabc", "../etc", "a b", "-lead", "x" * 129, ""])
def test_machine_ids_refused_in_whole(bad: str) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(MachineId).validate_python(bad)


def test_other_field_rules() -> None:
    assert TypeAdapter(BearingPreset).validate_python("cwru-6205-de") == "cwru-6205-de"
    for kind, bad in ((BearingPreset, "skf-6205"), (ShaftHz, 0), (ShaftHz, float("inf")), (Channel, 64), (Channel, -1)):
        with pytest.raises(ValidationError):
            TypeAdapter(kind).validate_python(bad)


def test_sample_rate_range_comes_from_the_settings_in_the_context() -> None:
    body = b'{"sample_rate": 500, "samples": [0.1]}'
    (((field,), message),) = refused(body)
    assert field == "sample_rate" and "serving.min_sample_rate" in message and "1000..200000" in message
    assert refused(body, min_sample_rate=100) == []
    assert refused(b'{"sample_rate": 96000, "samples": [0.1]}', max_sample_rate=48_000)[0][0] == ("sample_rate",)


def test_exactly_one_of_samples_or_pcm() -> None:
    for body in (b'{"sample_rate": 16000}', b'{"sample_rate": 16000, "samples": [1], "pcm_base64": "AAA="}'):
        assert refused(body) == [(("samples",), "give exactly one of 'samples' (numbers) or 'pcm_base64'")]
    assert refused(b'{"sample_rate": 16000, "pcm_base64": "AAA="}') == []


def test_unknown_fields_and_wrong_types_are_refused() -> None:
    assert refused(b'{"sample_rate": 16000, "samples": [1], "colour": 1}')[0][0] == ("colour",)
    assert refused(b'{"sample_rate": "fast", "samples": [1]}')[0][0] == ("sample_rate",)
    assert refused(b"{not json")[0][0] == ()
