"""A synthetic plant, deterministic by seed, realistic enough to exercise the whole system.

- Machine sound (pumps, fans): shaft harmonics, a blade-pass tone with harmonics, shaft-rate modulation and
  coloured broadband noise; each machine has its own speed and timbre. Anomalies: a bearing defect (impulses
  at BPFO ringing a structural resonance), imbalance (1× and 2× shaft lines grow), rubbing (intermittent
  high-frequency bursts), clogging (the blade-pass tone drops and broadband flow noise rises).
- Bearing vibration: impacts at BPFO / BPFI / 2·BSF with 1 % slip jitter, each exciting a decaying resonance,
  amplitude-modulated at the shaft rate (inner race) or the cage rate (rolling element), over shaft harmonics
  and noise.
- Run-to-failure: snapshots of a bearing whose defect appears part-way and grows exponentially while the
  noise floor rises, written as FEMTO/PRONOSTIA ``acc_NNNNN.csv`` files.
Files are written in the real formats (WAV in the DCASE 2020 layout, FEMTO CSV) so ingest reads them as it
reads public data.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import numpy as np
import scipy.signal
import soundfile as sf

from vibrasense.signals.bearings import PRESETS, BearingGeometry, defect_frequencies

Anomaly = Literal["bearing", "imbalance", "rubbing", "clogging"]
Defect = Literal["outer_race", "inner_race", "rolling_element"]
ANOMALIES: tuple[Anomaly, ...] = ("bearing", "imbalance", "rubbing", "clogging")
PLANT_EPOCH = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)
FEMTO_RATE = 25_600
FEMTO_ROWS = 2_560


def _machine_profile(machine: int, seed: int) -> dict[str, float]:
    rng = np.random.default_rng([seed, machine])
    return {
        "shaft_hz": float(rng.uniform(24.0, 49.0)),
        "blades": float(rng.integers(5, 9)),
        "tone": float(rng.uniform(0.05, 0.12)),
        "noise": float(rng.uniform(0.02, 0.04)),
        "tilt": float(rng.uniform(0.8, 0.97)),
        "resonance_hz": float(rng.uniform(2500.0, 4500.0)),
    }


def machine_sound(
    seconds: float = 10.0,
    sample_rate: int = 16_000,
    machine: int = 0,
    anomaly: Anomaly | None = None,
    seed: int = 0,
    clip: int = 0,
    severity: float = 1.0,
) -> np.ndarray:
    """One clip of a rotating machine's sound, float32 in [-1, 1].

    Normal clips vary from clip to clip as a running machine does (speed ±1 %, level ±10 %, flow noise
    ±15 %), so an anomaly of ``severity`` 1 is detectable from the statistical features but overlaps the
    normal spread for some clips; 0.5 is hard, 2 is easy.
    """
    profile = _machine_profile(machine, seed)
    rng = np.random.default_rng([seed, machine, clip, ANOMALIES.index(anomaly) + 1 if anomaly else 0])
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    shaft = profile["shaft_hz"] * (1 + rng.normal(0, 0.01))
    tone = profile["tone"] * rng.lognormal(0.0, 0.1)
    x = np.zeros(n)
    for harmonic in range(1, 9):
        phase = rng.uniform(0, 2 * np.pi)
        x += 0.5 * tone / harmonic * np.sin(2 * np.pi * harmonic * shaft * t + phase)
    blade = shaft * profile["blades"]
    blade_level = tone * (1 - 0.25 * severity if anomaly == "clogging" else 1.0)
    for harmonic in range(1, 4):
        x += blade_level / harmonic * np.sin(2 * np.pi * harmonic * blade * t + rng.uniform(0, 2 * np.pi))
    x *= 1 + 0.1 * np.sin(2 * np.pi * shaft * t)
    noise = scipy.signal.lfilter([1.0], [1.0, -profile["tilt"]], rng.standard_normal(n))
    flow = profile["noise"] * rng.uniform(0.85, 1.15) * (1 + 0.2 * severity if anomaly == "clogging" else 1.0)
    x += noise * flow / noise.std()
    if anomaly == "imbalance":
        x += severity * tone * (0.45 * np.sin(2 * np.pi * shaft * t) + 0.18 * np.sin(4 * np.pi * shaft * t))
    elif anomaly == "bearing":
        bpfo = defect_frequencies(PRESETS["cwru-6205-de"], shaft)["bpfo"]
        x += 0.2 * severity * tone * _impacts(n, sample_rate, bpfo, profile["resonance_hz"], rng)
    elif anomaly == "rubbing":
        bursts = (np.sin(2 * np.pi * shaft * t + rng.uniform(0, 2 * np.pi)) > 0.95).astype(float)
        b, a = scipy.signal.butter(4, [4000, 6500], btype="band", fs=sample_rate)
        x += 0.15 * severity * tone * bursts * scipy.signal.lfilter(b, a, rng.standard_normal(n))
    peak = np.abs(x).max()
    return (0.5 * x / peak if peak > 1 else x).astype(np.float32)


def _impacts(
    n: int,
    sample_rate: float,
    rate_hz: float,
    resonance_hz: float,
    rng: np.random.Generator,
    modulation: np.ndarray | None = None,
) -> np.ndarray:
    """Impacts at ``rate_hz`` with 1 % slip jitter, each ringing a resonance that decays in ~2 ms."""
    period = sample_rate / rate_hz
    times = np.cumsum(period * (1 + rng.normal(0, 0.01, size=int(n / period) + 2)))
    pulses = np.zeros(n)
    positions = times[times < n].astype(int)
    pulses[positions] = 1.0 if modulation is None else modulation[positions]
    length = int(0.01 * sample_rate)
    tau = np.arange(length) / sample_rate
    ring = np.exp(-tau / 0.002) * np.sin(2 * np.pi * resonance_hz * tau)
    return scipy.signal.fftconvolve(pulses, ring)[:n]


def bearing_vibration(
    seconds: float = 1.0,
    sample_rate: float = 12_000,
    bearing: BearingGeometry = PRESETS["cwru-6205-de"],
    shaft_hz: float = 1797 / 60,
    defect: Defect | None = None,
    severity: float = 1.0,
    noise: float = 0.3,
    resonance_hz: float = 3_000.0,
    seed: int = 0,
) -> np.ndarray:
    """Accelerometer signal (g) of a bearing, healthy or with one localised defect of the given severity."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    x = 0.2 * np.sin(2 * np.pi * shaft_hz * t) + 0.05 * np.sin(4 * np.pi * shaft_hz * t + 1.0)
    x += noise * rng.standard_normal(n)
    if defect is not None and severity > 0:
        freqs = defect_frequencies(bearing, shaft_hz)
        if defect == "outer_race":
            rate, modulation = freqs["bpfo"], None
        elif defect == "inner_race":
            rate, modulation = freqs["bpfi"], 0.5 * (1 + np.cos(2 * np.pi * shaft_hz * t))
        else:
            rate, modulation = 2 * freqs["bsf"], 0.5 * (1 + np.cos(2 * np.pi * freqs["ftf"] * t))
        x += severity * _impacts(n, sample_rate, rate, resonance_hz, rng, modulation)
    return x.astype(np.float32)


def write_audio_plant(
    root: Path | str,
    n_machines: int = 3,
    machine_type: str = "pump",
    n_normal_train: int = 24,
    n_test_normal: int = 8,
    n_test_anomaly: int = 8,
    seconds: float = 10.0,
    sample_rate: int = 16_000,
    seed: int = 0,
) -> Path:
    """Write machine sounds in the DCASE 2020 layout under ``root/<machine_type>/``; returns that folder.

    Each file's modification time is set to its (deterministic) recording time: one clip every 10 minutes
    per machine, the test clips after the training clips.
    """
    folder = Path(root) / machine_type
    for machine in range(n_machines):
        clips = (
            [("train", "normal", None)] * n_normal_train
            + [("test", "normal", None)] * n_test_normal
            + [("test", "anomaly", ANOMALIES[k % len(ANOMALIES)]) for k in range(n_test_anomaly)]
        )
        counters = {"train": 0, "test": 0}
        for index, (split, label, anomaly) in enumerate(clips):
            samples = machine_sound(seconds, sample_rate, machine, anomaly, seed, clip=index)
            path = folder / split / f"{label}_id_{machine:02d}_{counters[split]:08d}.wav"
            counters[split] += 1
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, samples, sample_rate, subtype="PCM_16")
            stamp = PLANT_EPOCH.timestamp() + machine * 7 + index * 600
            os.utime(path, (stamp, stamp))
    return folder


def run_to_failure_severity(
    n_snapshots: int, onset_fraction: float = 0.6, final_fraction: float = 0.05, seed: int = 0
) -> np.ndarray:
    """Defect severity per snapshot: zero until onset, exponential growth, then a sudden run-away.

    Over the last ``final_fraction`` of life the spall spreads fast (a quadratic surge on top of the
    exponential, about 3x by the last snapshot), as real runs end: FEMTO stops at 20 g.
    """
    rng = np.random.default_rng(seed)
    life = np.arange(n_snapshots) / max(n_snapshots - 1, 1)
    growth = np.where(life < onset_fraction, 0.0, np.expm1(5.0 * (life - onset_fraction) / (1 - onset_fraction)))
    surge = 1 + 2 * (np.clip(life - (1 - final_fraction), 0.0, None) / final_fraction) ** 2
    return growth * surge * (1 + 0.05 * rng.standard_normal(n_snapshots)).clip(0.5)


def write_run_to_failure(
    root: Path | str,
    name: str = "synthetic_bearing_1",
    n_snapshots: int = 150,
    defect: Defect = "outer_race",
    seed: int = 0,
) -> Path:
    """Write a run-to-failure as FEMTO snapshots ``root/<name>/acc_NNNNN.csv``, one every 10 s."""
    folder = Path(root) / name
    folder.mkdir(parents=True, exist_ok=True)
    bearing = PRESETS["femto"]
    shaft_hz = 1800 / 60
    severity = run_to_failure_severity(n_snapshots, seed=seed)
    start = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    for index in range(n_snapshots):
        noise = 0.3 * (1 + 0.2 * severity[index])
        channels = [
            bearing_vibration(
                FEMTO_ROWS / FEMTO_RATE,
                FEMTO_RATE,
                bearing,
                shaft_hz,
                defect,
                severity[index] * 0.4,
                noise,
                4_000.0 + 500 * axis,
                seed=seed * 100_000 + index * 2 + axis,
            )
            for axis in (0, 1)
        ]
        seconds = start.hour * 3600 + start.minute * 60 + 10 * index
        offsets = np.arange(FEMTO_ROWS) / FEMTO_RATE * 1e6
        table = np.column_stack(
            [
                np.full(FEMTO_ROWS, (seconds // 3600) % 24),
                np.full(FEMTO_ROWS, (seconds // 60) % 60),
                np.full(FEMTO_ROWS, seconds % 60),
                offsets,
                channels[0],
                channels[1],
            ]
        )
        np.savetxt(
            folder / f"acc_{index + 1:05d}.csv",
            table,
            delimiter=",",
            fmt=["%d", "%d", "%d", "%.1f", "%.4f", "%.4f"],
        )
    return folder
