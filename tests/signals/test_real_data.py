"""Every data set in ../shared/data reads, with the metadata its layout implies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vibrasense.errors import InputError
from vibrasense.signals.layouts import discover
from vibrasense.signals.readers import read_path, read_signal

pytestmark = pytest.mark.realdata


def test_cwru_tree_normal_at_48k_faults_at_12k(shared_data: Path) -> None:
    refs = {r.recording_id: r for r in discover(shared_data / "cwru")}
    assert len(refs) == 16
    normal = read_signal(refs["cwru_97_Normal_0"])
    assert (normal.sample_rate, len(normal.samples), refs["cwru_97_Normal_0"].label) == (
        48_000,
        243_938,
        "normal",
    )
    inner = refs["cwru_105_0"]
    assert (inner.label, inner.attributes["fault"], inner.attributes["fault_size_mils"]) == (
        "anomaly",
        "inner_race",
        7,
    )
    assert read_signal(inner).sample_rate == 12_000
    only_de = read_signal(refs["cwru_3001_0"])  # holds only X056_DE_time
    assert (only_de.channels, len(only_de.samples)) == (1, 120_801)
    assert refs["cwru_130@6_0"].attributes["position"] == "6"


def test_femto_zips_read_and_wear_shows_in_rms(shared_data: Path) -> None:
    for archive in sorted((shared_data / "femto").glob("*.zip")):
        refs = discover(archive)
        assert len(refs) > 100 and refs[0].machine_id == archive.stem
        first = np.sqrt(np.mean([np.mean(read_signal(r).samples ** 2) for r in refs[:5]]))
        last = np.sqrt(np.mean([np.mean(read_signal(r).samples ** 2) for r in refs[-5:]]))
        assert last > 1.5 * first, archive.name


def test_mimii_eight_channel_file_selects_channels(shared_data: Path) -> None:
    path = next((shared_data / "mimii_8ch" / "fan" / "id_00" / "normal").glob("*.wav"))
    three = read_path(path, channel=3)
    assert (three.channels, three.sample_rate, len(three.samples)) == (8, 16_000, 160_000)
    assert not np.array_equal(three.samples, read_path(path, channel=0).samples)
    with pytest.raises(InputError, match="channel 8 does not exist"):
        read_path(path, channel=8)


def test_mimii_and_dcase_layouts_with_labels(shared_data: Path) -> None:
    mimii = discover(shared_data / "mimii")
    assert sorted((r.label, r.machine_id) for r in mimii).count(("anomaly", "fan_id_00")) == 20
    assert len(mimii) == 40
    dcase = discover(shared_data / "dcase2020")
    assert sum(r.split == "train" and r.label == "normal" for r in dcase) == 75
    assert [r.label for r in dcase if r.split == "test"] == ["anomaly"]


def test_ims_raw_segment_mat_reads_with_a_given_rate(shared_data: Path) -> None:
    signal = read_path(shared_data / "ims" / "raw_segments" / "OF.mat", sample_rate=20_000)
    assert (len(signal.samples), signal.sample_rate) == (122_880, 20_000)
