"""Folders in no known layout are ingested, unlabelled or labelled and grouped by rule; ids are relative paths."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from vibrasense.config import IngestSettings, load_settings
from vibrasense.errors import ConfigError, LayoutError
from vibrasense.signals.layouts import discover
from vibrasense.signals.rules import IngestRules, parse_label_rules


def _wav(path: Path, seconds: float = 0.1) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.full(int(16_000 * seconds), 0.01, np.float32), 16_000)


def _labels(refs: list) -> dict[str, str]:
    return {ref.recording_id: ref.label for ref in refs}


def test_class_folders_are_labelled_by_a_rule_and_grouped_under_the_folder_above(tmp_path: Path) -> None:
    for folder in ("LM_DEF", "LM_NON-DEF"):
        _wav(tmp_path / "plant" / folder / "LM 1668.wav")
        _wav(tmp_path / "plant" / folder / "LM 1669.flac")
    refs = discover(tmp_path / "plant", ingest=IngestSettings(label_rule="DEF=anomaly,NON-DEF=normal"))
    assert _labels(refs) == {
        "plant/LM_DEF/LM 1668.wav": "anomaly",
        "plant/LM_DEF/LM 1669.flac": "anomaly",
        "plant/LM_NON-DEF/LM 1668.wav": "normal",
        "plant/LM_NON-DEF/LM 1669.flac": "normal",
    }
    assert {ref.machine_id for ref in refs} == {"plant"}
    assert {(ref.format, ref.kind, ref.split) for ref in refs} == {("wav", "audio", "unknown")}


def test_state_prefixes_of_file_names_are_labelled_by_a_rule(tmp_path: Path) -> None:
    for name in ("ON_0001.wav", "ON_0002.wav", "OFF_0001.wav", "BLADE_FAULT_0001.wav", "BLADE_FAULT_ON_2.wav"):
        _wav(tmp_path / "fan" / name)
    refs = discover(tmp_path / "fan", ingest=IngestSettings(label_rule="ON_=normal, BLADE_FAULT_*=anomaly"))
    assert _labels(refs) == {
        "fan/ON_0001.wav": "normal",
        "fan/ON_0002.wav": "normal",
        "fan/OFF_0001.wav": "unknown",
        "fan/BLADE_FAULT_0001.wav": "anomaly",
        "fan/BLADE_FAULT_ON_2.wav": "anomaly",  # the longer pattern wins
    }
    assert {ref.machine_id for ref in refs} == {"fan"}


def test_rules_from_the_configuration_file(tmp_path: Path) -> None:
    _wav(tmp_path / "fan" / "OFF_1.wav")
    _wav(tmp_path / "fan" / "ON_1.wav")
    config = tmp_path / "vibrasense.yaml"
    config.write_text("ingest:\n  label_rule: 'ON_=normal,OFF_=unknown'\n  machine_from: input\n")
    refs = discover(tmp_path / "fan", ingest=load_settings(config).ingest)
    assert _labels(refs) == {"fan/OFF_1.wav": "unknown", "fan/ON_1.wav": "normal"}


def test_a_folder_in_no_known_layout_is_ingested_unlabelled_and_other_files_are_reported(tmp_path: Path) -> None:
    _wav(tmp_path / "site" / "pump_a" / "monday.wav")
    _wav(tmp_path / "site" / "pump_b" / "monday.ogg")
    np.save(tmp_path / "site" / "pump_b" / "probe.npy", np.zeros(4_000, np.float32))
    (tmp_path / "site" / "readme.txt").write_text("recorded by the night shift")
    ignored: list[tuple[str, str]] = []
    refs = discover(tmp_path / "site", ignored)
    assert {(ref.recording_id, ref.machine_id, ref.label) for ref in refs} == {
        ("site/pump_a/monday.wav", "pump_a", "unknown"),
        ("site/pump_b/monday.ogg", "pump_b", "unknown"),
        ("site/pump_b/probe.npy", "pump_b", "unknown"),
    }
    assert [(Path(source).name, reason.startswith("a .txt file (often notes)")) for source, reason in ignored] == [
        ("readme.txt", True)
    ]


def test_same_file_names_in_two_folders_are_two_recordings(tmp_path: Path) -> None:
    _wav(tmp_path / "set" / "LM_DEF" / "LM 1668.wav")
    _wav(tmp_path / "set" / "LM_NON-DEF" / "LM 1668.wav")
    walked = {ref.recording_id for ref in discover(tmp_path / "set")}
    assert walked == {"set/LM_DEF/LM 1668.wav", "set/LM_NON-DEF/LM 1668.wav"}
    one_by_one = {ref.recording_id for f in sorted((tmp_path / "set").rglob("*.wav")) for ref in discover(f)}
    assert one_by_one == {"LM_DEF/LM 1668.wav", "LM_NON-DEF/LM 1668.wav"}


def test_machine_id_from_the_input_or_a_pattern(tmp_path: Path) -> None:
    _wav(tmp_path / "line" / "a" / "machine_7_run1.wav")
    _wav(tmp_path / "line" / "b" / "machine_8_run1.wav")
    _wav(tmp_path / "line" / "b" / "calibration.wav")
    assert {ref.machine_id for ref in discover(tmp_path / "line", ingest=IngestSettings(machine_from="input"))} == {
        "line"
    }
    ignored: list[tuple[str, str]] = []
    refs = discover(tmp_path / "line", ignored, IngestSettings(machine_from=r"machine_(\d+)"))
    assert sorted(ref.machine_id for ref in refs) == ["7", "8"]
    assert [(Path(source).name, "does not match" in reason) for source, reason in ignored] == [
        ("calibration.wav", True)
    ]


def test_known_layouts_keep_their_labels_and_leave_other_files_ignored(tmp_path: Path) -> None:
    _wav(tmp_path / "fan" / "train" / "normal_id_00_00000000.wav")
    _wav(tmp_path / "fan" / "extra" / "LM_DEF.wav")
    ignored: list[tuple[str, str]] = []
    (ref,) = discover(tmp_path, ignored, IngestSettings(label_rule="DEF=anomaly"))
    assert (ref.recording_id, ref.label) == ("fan_train_normal_id_00_00000000", "normal")
    assert [Path(source).name for source, _ in ignored] == ["LM_DEF.wav"]


def test_nothing_readable_is_still_a_layout_error(tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("nothing to see")
    with pytest.raises(LayoutError, match=r"no recordings in a known layout .* 1 other files ignored"):
        discover(tmp_path / "notes")


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("DEF", "'DEF' is not PATTERN=LABEL"),
        ("=anomaly", "'=anomaly' is not PATTERN=LABEL"),
        ("DEF=broken", "label 'broken' of 'DEF' is not one of normal, anomaly, unknown"),
        ("ON_=normal,ON=anomaly", "'ON_' and 'ON' are one pattern with two labels"),
        ("__=normal", "has no words"),
    ],
)
def test_an_invalid_label_rule_is_refused_naming_the_option(rule: str, message: str) -> None:
    with pytest.raises(ConfigError, match=r"^--label-rule \(ingest\.label_rule\): ") as raised:
        parse_label_rules(rule)
    assert message in str(raised.value)


def test_an_ambiguous_match_and_an_invalid_machine_pattern_are_refused_naming_the_option(tmp_path: Path) -> None:
    _wav(tmp_path / "set" / "A_x" / "B_1.wav")
    with pytest.raises(ConfigError, match=r"--label-rule .*'A' and 'B' both match set/A_x/B_1.wav"):
        discover(tmp_path / "set", ingest=IngestSettings(label_rule="A=normal,B=anomaly"))
    for pattern, message in (("machine_(", "is not a regular expression"), ("machine_\\d+", "has 0 groups")):
        with pytest.raises(ConfigError, match=rf"^--machine-from \(ingest\.machine_from\): .*{message}"):
            IngestRules.from_settings(IngestSettings(machine_from=pattern))
