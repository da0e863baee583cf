"""Feature extraction speed against librosa, and peak memory as the number of clips grows.

Part 1: ms per 10-s 16 kHz clip for the log-mel spectrogram plus the 13 statistical features, on one core,
vibrasense's batched path against librosa computing the same features, timed in the same run.
Part 2: resident memory while N synthetic 10-s clips stream through ``analyse_batch`` in batches of 64, in
this process (RSS after the first batch, half-way, at the end, and the peak): it must stay flat and < 1 GB.
Part 3 (``--pipeline-sizes``): peak resident memory of the whole features stage (``extract_features``, two
worker processes) over N synthetic 1-s WAV files, each size in a fresh process.

    .venv/bin/python benchmarks/bench_features.py [--clips 64] [--memory-sizes 1000 10000]
        [--pipeline-sizes 1000 10000]

Everything runs on one thread (OMP/MKL/OpenBLAS variables are set before numpy loads, and threadpoolctl
limits BLAS), so the figures are per core.
"""

from __future__ import annotations

import os

# Set before numpy loads, so that every figure below is per core.
os.environ.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from vibrasense.config import LogMelSettings
from vibrasense.features.spectral import analyse_batch
from vibrasense.signals.synthetic import machine_sound, write_audio_plant

RATE = 16_000


def librosa_shared_stft(y: np.ndarray) -> list[float]:
    """The reference written with care: one STFT, every feature from it (librosa's ``S=`` arguments)."""
    import librosa

    magnitude = np.abs(librosa.stft(y, n_fft=1024, hop_length=512))
    mel = librosa.feature.melspectrogram(S=magnitude**2, sr=RATE, n_mels=128)
    logmel = 10 * np.log10(np.maximum(mel, np.finfo(float).eps))
    rms = librosa.feature.rms(y=y, frame_length=1024, hop_length=512)
    return [
        logmel.mean(),
        rms.mean(),
        rms.std(),
        librosa.feature.zero_crossing_rate(y, frame_length=1024, hop_length=512).mean(),
        librosa.feature.spectral_centroid(S=magnitude, sr=RATE).mean(),
        librosa.feature.spectral_bandwidth(S=magnitude, sr=RATE).mean(),
        librosa.feature.spectral_rolloff(S=magnitude, sr=RATE).mean(),
        librosa.feature.spectral_contrast(S=magnitude, sr=RATE, n_fft=1024).mean(),
        *librosa.feature.mfcc(S=librosa.power_to_db(mel), n_mfcc=6).mean(axis=1),
    ]


def librosa_per_feature(y: np.ndarray) -> list[float]:
    """The reference as usually written: each librosa feature called on the waveform."""
    import librosa

    kwargs = {"y": y, "sr": RATE, "n_fft": 1024, "hop_length": 512}
    mel = librosa.feature.melspectrogram(**kwargs, n_mels=128)
    rms = librosa.feature.rms(y=y, frame_length=1024, hop_length=512)
    return [
        (10 * np.log10(np.maximum(mel, np.finfo(float).eps))).mean(),
        rms.mean(),
        rms.std(),
        librosa.feature.zero_crossing_rate(y, frame_length=1024, hop_length=512).mean(),
        librosa.feature.spectral_centroid(**kwargs).mean(),
        librosa.feature.spectral_bandwidth(**kwargs).mean(),
        librosa.feature.spectral_rolloff(**kwargs).mean(),
        librosa.feature.spectral_contrast(**kwargs).mean(),
        *librosa.feature.mfcc(**kwargs, n_mfcc=6, n_mels=128).mean(axis=1),
    ]


def best_ms_per_clip(run: Callable[[], object], clips: int, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        best = min(best, (time.perf_counter() - started) * 1000 / clips)
    return best


def speed(clips: int) -> None:
    batch = np.stack([machine_sound(10.0, RATE, machine=k % 3, seed=k) for k in range(clips)])
    settings = LogMelSettings()
    subset = batch[: max(clips // 4, 4)]
    with threadpool_limits(limits=1):
        analyse_batch(batch[:2], RATE, settings)
        ours = best_ms_per_clip(lambda: analyse_batch(batch, RATE, settings), clips)
        librosa_shared_stft(subset[0])
        shared = best_ms_per_clip(lambda: [librosa_shared_stft(y) for y in subset], len(subset))
        naive = best_ms_per_clip(lambda: [librosa_per_feature(y) for y in subset], len(subset), repeats=1)
    print("\n# log-mel (128 bands) + 13 statistical features, 10-s 16 kHz clip, one core")
    print(f"{'implementation':<44}{'ms per clip':>12}{'ratio':>8}")
    print(f"{'vibrasense (batched, one STFT)':<44}{ours:>12.2f}{1.0:>8.1f}")
    version = librosa_version()
    print(f"{'librosa ' + version + ', each feature from the waveform':<44}{naive:>12.2f}{naive / ours:>8.1f}")
    print(f"{'librosa ' + version + ', one shared STFT':<44}{shared:>12.2f}{shared / ours:>8.1f}")
    print("goal: <= 5 ms per clip and >= 10x faster than librosa")


def librosa_version() -> str:
    import librosa

    return librosa.__version__


def resident_mb() -> float:
    """Current resident set size of this process (Linux /proc)."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def streaming_memory(sizes: list[int], batch_size: int = 64) -> None:
    pool = np.stack([machine_sound(10.0, RATE, machine=k % 4, seed=k) for k in range(8)])
    settings = LogMelSettings()
    rng = np.random.default_rng(0)
    print(f"\n# resident memory while N 10-s clips stream through analyse_batch ({batch_size} per batch)")
    print(f"{'clips':>8}{'first (MB)':>12}{'half (MB)':>11}{'end (MB)':>10}{'peak (MB)':>11}{'ms/clip':>9}")
    for size in sizes:
        marks: dict[str, float] = {}
        kept = np.empty((size, 13))
        started = time.perf_counter()
        with threadpool_limits(limits=1):
            for first in range(0, size, batch_size):
                count = min(batch_size, size - first)
                shifts = rng.integers(0, pool.shape[1], count)
                gains = rng.uniform(0.5, 1.5, (count, 1)).astype(np.float32)
                batch = np.stack([np.roll(pool[k % len(pool)], s) for k, s in enumerate(shifts)]) * gains
                _, features = analyse_batch(batch, RATE, settings)
                kept[first : first + count] = np.column_stack(list(features.values()))
                if first == 0:
                    marks["first"] = resident_mb()
                if first <= size // 2 < first + count:
                    marks["half"] = resident_mb()
        seconds = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"{size:>8}{marks['first']:>12.0f}{marks['half']:>11.0f}{resident_mb():>10.0f}{peak:>11.0f}"
            f"{seconds * 1000 / size:>9.2f}"
        )
    print("goal: flat, and < 1024 MB")


def pipeline_memory(sizes: list[int]) -> None:
    print("\n# peak resident memory of the features stage (1-s clips, main process + 2 worker processes)")
    print(f"{'clips':>8}{'main (MB)':>12}{'worker (MB)':>13}{'total <= (MB)':>15}{'seconds':>10}")
    for size in sizes:
        with tempfile.TemporaryDirectory() as folder:
            root = Path(folder)
            write_audio_plant(
                root / "plant",
                n_machines=10,
                n_normal_train=size // 10,
                n_test_normal=0,
                n_test_anomaly=0,
                seconds=1.0,
            )
            code = (
                "import resource, time; from vibrasense.config import load_settings;"
                "from vibrasense.features.pipeline import extract_features;"
                f"s = load_settings(workdir=r'{root}', features={{'workers': 2}}); t = time.perf_counter();"
                f"run = extract_features(r'{root / 'plant'}', r'{root / 'out'}', s, progress=False);"
                "print(run.processed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,"
                " resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, time.perf_counter() - t)"
            )
            output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
            processed, main_mb, worker_mb, seconds = output.stdout.split()
            assert int(processed) == size, output.stdout
            total = float(main_mb) + 2 * float(worker_mb)
            print(f"{size:>8}{float(main_mb):>12.0f}{float(worker_mb):>13.0f}{total:>15.0f}{float(seconds):>10.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=64, help="clips in the speed test")
    parser.add_argument("--memory-sizes", type=int, nargs="*", default=[1000, 10000], help="streamed clips")
    parser.add_argument("--pipeline-sizes", type=int, nargs="*", default=[], help="WAV files, whole stage")
    args = parser.parse_args()
    speed(args.clips)
    if args.memory_sizes:
        streaming_memory(args.memory_sizes)
    if args.pipeline_sizes:
        pipeline_memory(args.pipeline_sizes)
    print(f"(max RSS of this script: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)")


if __name__ == "__main__":
    main()
