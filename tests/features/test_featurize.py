"""The one featurizer: which bearing and speed the envelope features use, and refusing what it cannot compute."""

from __future__ import annotations

import numpy as np
import pytest

from vibrasense.config import load_settings
from vibrasense.errors import ConfigError, InputError
from vibrasense.features.featurize import RawRecording, featurize, featurize_batch, resolve_bearing
from vibrasense.features.spec import FeatureSpec
from vibrasense.signals.bearings import PRESETS
from vibrasense.signals.records import SignalContext
from vibrasense.signals.synthetic import bearing_vibration

AUTO = FeatureSpec.from_settings(load_settings(None))
RATE = 12_000


def _spec(**vibration: object) -> FeatureSpec:
    return FeatureSpec.from_settings(load_settings(None, features={"vibration": vibration}))


def test_context_gives_bearing_and_speed_and_the_preset_its_usual_speed() -> None:
    bearing, shaft = resolve_bearing(AUTO, SignalContext("cwru-6205-de", None))
    assert bearing is PRESETS["cwru-6205-de"] and shaft == pytest.approx(1797 / 60)
    assert resolve_bearing(AUTO, SignalContext("cwru-6205-de", 29.5))[1] == 29.5
    assert resolve_bearing(AUTO, SignalContext()) == (None, None)


def test_the_spec_wins_over_the_context() -> None:
    bearing, shaft = resolve_bearing(_spec(bearing="ims-za2115", shaft_hz=20.0), SignalContext("femto", 30.0))
    assert bearing is PRESETS["ims-za2115"] and shaft == 20.0
    with pytest.raises(ConfigError, match=r"unknown bearing preset 'skf-9999'"):
        resolve_bearing(AUTO, SignalContext("skf-9999", None))


def test_named_envelope_columns_without_a_bearing_are_refused_naming_the_field() -> None:
    x = bearing_vibration(1.0, RATE, defect="outer_race", seed=1)
    with pytest.raises(InputError, match=r"bearing is needed for vib_env_bpfo") as error:
        featurize(x, RATE, AUTO, columns=["vib_rms", "vib_env_bpfo"])
    assert error.value.source == "bearing"
    fixed = _spec(bearing="cwru-6205-de")  # the preset's usual speed serves when nothing else says it
    assert featurize(x, RATE, fixed, columns=["vib_env_bpfo"]).values["vib_env_bpfo"] > 3
    everything = featurize(x, RATE, AUTO)  # a features table: NaN where nothing says the bearing
    assert np.isnan(everything.values["vib_env_bpfo"]) and everything.values["vib_rms"] > 0
    assert everything.logmel is not None and everything.logmel.shape[1] == AUTO.logmel.n_mels


def test_batch_and_single_agree_and_columns_select_what_is_computed() -> None:
    clips = [
        bearing_vibration(1.0, RATE, defect=kind, seed=s)
        for s, kind in enumerate(("inner_race", "rolling_element", None))
    ]
    context = SignalContext("cwru-6205-de", 1797 / 60)
    batch = featurize_batch([RawRecording(c, RATE, context) for c in clips], AUTO)
    for clip, together in zip(clips, batch, strict=True):
        alone = featurize(clip, RATE, AUTO, context)
        assert alone.values.keys() == together.values.keys() == set(AUTO.columns)
        for name, value in alone.values.items():
            assert value == pytest.approx(together.values[name], rel=1e-6, abs=1e-9), name
    only = featurize(clips[0], RATE, AUTO, context, columns=AUTO.vibration_columns, logmel=False)
    assert set(only.values) == set(AUTO.vibration_columns) and only.logmel is None
    with pytest.raises(InputError, match="not a feature of this spec"):
        featurize(clips[0], RATE, AUTO, columns=["vib_band_0_100hz"])
