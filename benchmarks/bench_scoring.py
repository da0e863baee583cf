"""In-process scoring of one raw 10-s 16 kHz clip, native and ONNX Runtime, against the features it needs.

    .venv/bin/python benchmarks/bench_scoring.py [--rounds 40]

- Tabular champion (Mahalanobis on the 13 audio + 13 vibration features of MIMII fan clips):
  ``ModelScorer.score`` and ``OnnxScorer.score`` against the log-mel + 13 features alone
  (``spectral.analyse_clip``, the figure of ``bench_features.py``); goal <= 1.3x. Every model folder keeps its
  domain reference, as training writes it; beside it, the native model without one (the check's cost). Its
  band energies are Welch's, from the log-mel's own frames; beside it, the same model on a spec with
  periodogram band energies (specs saved before Welch's), which pay one FFT of the whole clip.
- Autoencoders (cnn-ae, dense-ae; one training epoch: the cost does not depend on the weights): native torch
  and ONNX Runtime against the log-mel spectrogram alone (``spectral.extract_logmel``); goal <= 2x.

Every figure is the best of ``--rounds`` calls, the calls of all candidates interleaved round by round so a
busy machine slows them alike; the median is shown beside it. One thread (OMP/MKL/OpenBLAS variables are set
before numpy loads, torch and ONNX Runtime limited to one). MIMII clips from ``../shared/data`` where present,
else synthetic machine sound.
"""

from __future__ import annotations

import os

os.environ.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")

import argparse
import copy
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from vibrasense.config import load_settings
from vibrasense.features import spectral
from vibrasense.features.featurize import RawRecording, featurize_batch
from vibrasense.features.spec import FeatureSpec
from vibrasense.inference import ModelInputs, ModelScorer, limit_process_threads
from vibrasense.inference.domain import DomainReference, signatures_of
from vibrasense.inference.onnx_export import export_onnx
from vibrasense.inference.onnx_runtime import OnnxScorer
from vibrasense.models import get_detector
from vibrasense.signals.synthetic import machine_sound

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("VIBRASENSE_SHARED_DATA", ROOT.parent / "shared" / "data"))
MIMII_NORMAL = DATA / "mimii" / "fan" / "id_00" / "normal"
RATE = 16_000
GOAL_TABULAR = 1.3
GOAL_AUTOENCODER = 2.0
PERIODOGRAM_MODEL = "mahalanobis, periodogram bands"  # scored natively


def clips() -> tuple[list[np.ndarray], str]:
    """15 10-s clips at 16 kHz: MIMII fan normal clips where present, else synthetic machine sound."""
    files = sorted(MIMII_NORMAL.glob("*.wav"))[:15]
    if len(files) == 15:
        return [sf.read(f, dtype="float32")[0] for f in files], "MIMII fan id_00"
    return [machine_sound(10.0, RATE, machine=0, seed=k) for k in range(15)], "synthetic machine sound"


def model_folders(train: list[np.ndarray], root: Path) -> dict[str, tuple[ModelScorer, OnnxScorer]]:
    """Each detector trained on ``train``, saved as a model folder, exported; its native and ONNX scorers.

    Beside them, the Mahalanobis model of a spec with periodogram band energies (the specs saved before
    Welch's), whose vibration features need one FFT of the whole clip of their own.
    """
    settings = load_settings(None)
    periodogram = load_settings(None, features={"vibration": {"band_estimator": "periodogram"}})
    scorers = {}
    for name, spec in (
        ("mahalanobis", FeatureSpec.from_settings(settings)),
        (PERIODOGRAM_MODEL, FeatureSpec.from_settings(periodogram)),
        ("cnn-ae", FeatureSpec.from_settings(settings)),
        ("dense-ae", FeatureSpec.from_settings(settings)),
    ):
        featurized = featurize_batch([RawRecording(c, RATE) for c in train], spec)
        if name.startswith("mahalanobis"):
            detector = get_detector("mahalanobis").fit(pd.DataFrame([f.values for f in featurized]))
            inputs = ModelInputs("tabular", tuple(detector.kept_columns_))
        else:
            detector = get_detector(name, max_epochs=1, accelerator="cpu").fit([f.logmel for f in featurized])
            inputs = ModelInputs("logmel")
        folder = root / name.replace(", ", "-").replace(" ", "-")
        detector.save(folder)
        spec.save(folder)
        inputs.save(folder)
        signatures = signatures_of([f.logmel for f in featurized])  # as training keeps them
        DomainReference.fit(signatures, settings.training.domain_limit).save(folder)
        started = time.perf_counter()
        export_onnx(folder, folder / "onnx")
        print(f"  {name}: exported to ONNX in {time.perf_counter() - started:.1f} s")
        scorers[name] = (
            ModelScorer.from_directory(folder, detector.name, "bench"),
            OnnxScorer.from_directory(folder / "onnx", detector.name, "bench"),
        )
    return scorers


def interleaved(candidates: dict[str, Callable[[], object]], rounds: int) -> dict[str, tuple[float, float]]:
    """(best, median) ms of each candidate, one call of each per round."""
    for run in candidates.values():
        run()
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, run in candidates.items():
            started = time.perf_counter()
            run()
            times[name].append((time.perf_counter() - started) * 1000)
    return {name: (min(values), float(np.median(values))) for name, values in times.items()}


def report(title: str, reference: str, timings: dict[str, tuple[float, float]], goal: float) -> None:
    best_reference, median_reference = timings[reference]
    print(f"\n# {title}")
    print(f"{'':<34}{'best ms':>9}{'median ms':>11}{'ratio':>8}{'median ratio':>14}")
    for name, (best, median) in timings.items():
        verdict = "" if name == reference else ("  ✓" if best / best_reference <= goal else "  ✗")
        ratio, median_ratio = best / best_reference, median / median_reference
        print(f"{name:<34}{best:>9.2f}{median:>11.2f}{ratio:>8.2f}{median_ratio:>14.2f}{verdict}")
    print(f"goal: <= {goal:g}x the {reference}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40, help="calls of each candidate")
    args = parser.parse_args()
    recordings, source = clips()
    clip = recordings[-1]  # not trained on
    print(f"clips: {source}; training the models, exporting them")
    with tempfile.TemporaryDirectory() as folder:
        scorers = model_folders(recordings[:-1], Path(folder))
        limit_process_threads()  # as the service does once at start-up (torch is loaded now)
        logmel = scorers["cnn-ae"][0].spec.logmel
        tabular_native, tabular_onnx = scorers["mahalanobis"]
        periodogram_native = scorers[PERIODOGRAM_MODEL][0]
        unchecked = copy.copy(tabular_native)
        unchecked.domain = None  # as a folder saved before domain references scores
        tabular = {
            "log-mel + 13 features alone": lambda: spectral.analyse_clip(clip, RATE, logmel),
            "mahalanobis, native": lambda: tabular_native.score(clip, RATE),
            "mahalanobis, native, no domain check": lambda: unchecked.score(clip, RATE),
            "mahalanobis, ONNX Runtime": lambda: tabular_onnx.score(clip, RATE),
            PERIODOGRAM_MODEL: lambda: periodogram_native.score(clip, RATE),
        }
        report(
            "tabular champion, one 10-s 16 kHz clip (26 features)",
            "log-mel + 13 features alone",
            interleaved(tabular, args.rounds),
            GOAL_TABULAR,
        )
        autoencoders: dict[str, Callable[[], object]] = {
            "log-mel alone": lambda: spectral.extract_logmel(clip, RATE, logmel)
        }
        for name in ("cnn-ae", "dense-ae"):
            native, exported = scorers[name]
            autoencoders[f"{name}, native torch"] = lambda s=native: s.score(clip, RATE)
            autoencoders[f"{name}, ONNX Runtime"] = lambda s=exported: s.score(clip, RATE)
        report(
            "autoencoders, one 10-s 16 kHz clip",
            "log-mel alone",
            interleaved(autoencoders, max(args.rounds // 2, 5)),
            GOAL_AUTOENCODER,
        )


if __name__ == "__main__":
    main()
