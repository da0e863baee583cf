"""The features stage on a hostile folder: links to nothing, FIFOs, files cut short, files of other formats,
runs that find nothing usable, runs killed with SIGKILL and what they leave behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from vibrasense.config import Settings, load_settings
from vibrasense.errors import LayoutError
from vibrasense.features.logmel_store import LogMelStore
from vibrasense.features.pipeline import extract_features

RATE = 16_000


def write_normal_test(root: Path, count: int = 4, seconds: float = 1.0) -> Path:
    """A ``normal/`` + ``test/`` plant of one fan: tones in noise."""
    rng = np.random.default_rng(1)
    t = np.arange(int(seconds * RATE)) / RATE
    folder = root / "fan" / "normal"
    folder.mkdir(parents=True)
    for k in range(count):
        clip = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(t.size)
        sf.write(folder / f"normal_{k:02d}.wav", clip.astype(np.float32), RATE, subtype="PCM_16")
    return root / "fan"


def settings_for(tmp_path: Path, workers: int = 1) -> Settings:
    return load_settings(workdir=tmp_path / "work", features={"workers": workers, "batch_size": 2})


def report(run_dir: Path) -> dict:
    return json.loads((run_dir / "ingest_report.json").read_text())


def test_links_to_nothing_fifos_and_cut_files_are_reported_and_the_rest_goes_on(tmp_path: Path) -> None:
    fan = write_normal_test(tmp_path / "data")
    normal = fan / "normal"
    (normal / "normal_10.wav").symlink_to(tmp_path / "gone.wav")
    os.mkfifo(normal / "normal_11.wav")  # reading it would block for ever
    whole = (normal / "normal_00.wav").read_bytes()
    (normal / "normal_12.wav").write_bytes(whole[: len(whole) // 2])
    (normal / "normal_13.mp3").write_bytes(b"ID3...")
    (normal / "notes.txt.bak").write_text("calibration done")

    started = time.monotonic()
    run = extract_features(fan, tmp_path / "out", settings_for(tmp_path), progress=False)
    assert time.monotonic() - started < 60
    assert run.processed == 4
    reasons = {Path(item.source).name: item.reason for item in run.skipped}
    assert reasons["normal_10.wav"] == f"broken link to {tmp_path / 'gone.wav'}"
    assert reasons["normal_11.wav"] == "not a regular file (a FIFO); skipped unread"
    assert reasons["normal_12.wav"].startswith("truncated WAV: the header declares 16000 frames (1.00 s)")
    ignored = {Path(item["source"]).name: item["reason"] for item in report(tmp_path / "out")["ignored"]}
    assert set(ignored) == {"normal_13.mp3", "notes.txt.bak"}
    assert ignored["normal_13.mp3"].startswith("not a recording format vibrasense reads (.mp3)")
    assert {Path(item["source"]).name for item in report(tmp_path / "out")["skipped"]} == set(reasons)


def test_a_first_run_with_nothing_usable_still_writes_its_report(tmp_path: Path) -> None:
    folder = tmp_path / "data" / "fan" / "normal"
    folder.mkdir(parents=True)
    (folder / "normal_00.mp3").write_bytes(b"ID3")
    (folder / "readme.md").write_text("recordings follow")
    with pytest.raises(LayoutError, match="2 other files ignored"):
        extract_features(tmp_path / "data", tmp_path / "out", settings_for(tmp_path), progress=False)
    written = report(tmp_path / "out")
    assert written["discovered"] == 0 and len(written["ignored"]) == 2

    (folder / "normal_01.wav").write_bytes(b"RIFF....WAVEnot really")
    run = extract_features(tmp_path / "data", tmp_path / "out", settings_for(tmp_path), progress=False)
    assert (run.processed, len(run.skipped), len(run.ignored)) == (0, 1, 2)
    assert report(tmp_path / "out")["skipped"][0]["source"].endswith("normal_01.wav")


def test_leftovers_of_a_killed_run_are_removed_by_the_next(tmp_path: Path) -> None:
    fan = write_normal_test(tmp_path / "data")
    out = tmp_path / "out"
    extract_features(fan, out, settings_for(tmp_path), progress=False)
    shards = sorted(p.name for p in (out / "logmel").glob("shard-*.npy"))
    np.save(out / "logmel" / "shard-orphan-of-a-killed-run.npy", np.zeros((4, 128), np.float32))
    for leftover in (out / ".features.parquet.partial", out / "parts" / ".part-x.parquet.partial"):
        leftover.write_bytes(b"half written")
    (out / "logmel" / ".shard-y.npy.partial").write_bytes(b"half written")
    (fan / "normal" / "normal_00.wav").touch()  # changed: its recording is extracted again, into a new shard
    os.utime(fan / "normal" / "normal_00.wav", (1_800_000_000, 1_800_000_000))

    run = extract_features(fan, out, settings_for(tmp_path), progress=False)
    assert run.processed == 1
    left = {p.name for p in [*out.glob(".*"), *(out / "parts").glob(".*"), *(out / "logmel").glob(".*")]}
    assert left == set()
    now = sorted(p.name for p in (out / "logmel").glob("shard-*.npy"))
    assert "shard-orphan-of-a-killed-run.npy" not in now
    store = LogMelStore(out / "logmel")
    assert set(now) == set(store.index["shard"]) and len(store) == 4
    assert set(now) != set(shards)  # the shard holding only the re-done recording's old frames is gone


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        children = (task / "children").read_text().split() if (task / "children").exists() else []
        found += [int(child) for child in children]
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads the process tree from /proc (Linux)")
def test_workers_exit_when_their_run_is_killed(tmp_path: Path) -> None:
    fan = write_normal_test(tmp_path / "data", count=60)
    command = [sys.executable, "-m", "vibrasense", "--workdir", str(tmp_path / "work"), "features", str(fan)]
    command += ["--out", str(tmp_path / "out"), "--workers", "2", "--batch-size", "1", "--no-progress"]
    run = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        workers: list[int] = []
        while time.monotonic() < deadline and not list((tmp_path / "out" / "parts").glob("part-*.parquet")):
            time.sleep(0.02)
        workers = [
            child
            for child in _children(run.pid)
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()
            and b"resource_tracker" not in Path(f"/proc/{child}/cmdline").read_bytes()
        ]
        assert len(workers) == 2, "the run did not start its two workers"
    finally:
        run.send_signal(signal.SIGKILL)
        run.wait()
    deadline = time.monotonic() + 10
    while any(_alive(worker) for worker in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    survivors = [worker for worker in workers if _alive(worker)]
    for worker in survivors:
        os.kill(worker, signal.SIGKILL)
    assert not survivors, f"workers {survivors} outlived their run by 10 s"
