"""What explaining a score costs, against scoring the same clip without it, measured in the same run.

    .venv/bin/python benchmarks/bench_explanation.py [--clips 20] [--seconds 10]

One thread, synthetic machine sound at 16 kHz (``vibrasense.signals.synthetic.machine_sound``):

- every tabular detector (Mahalanobis, isolation forest, one-class SVM, LOF) on the audio and vibration features
  of healthy clips: ``ModelScorer.score`` with and without ``explain=True`` (featurize + score is the reference),
  and the explanation alone (:func:`vibrasense.inference.explanation.explain_features` on the model's row);
- a CNN autoencoder (128 mels, trained briefly) the same way: its explanation is one more pass through the model
  plus the band × time map, and the size of that explanation as JSON.

Goal: the tabular explanation adds well under 1 ms per clip.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
from threadpoolctl import threadpool_limits

from vibrasense.config import load_settings
from vibrasense.features.featurize import featurize
from vibrasense.features.spec import FeatureSpec
from vibrasense.inference import ModelInputs, ModelScorer
from vibrasense.inference.explanation import explain_features
from vibrasense.models import get_detector
from vibrasense.signals.synthetic import machine_sound

RATE = 16_000
TABULAR = ("mahalanobis", "isolation-forest", "one-class-svm", "lof")


def best_ms(run: Callable[[], object], repeats: int = 5) -> float:
    """The fastest of ``repeats`` runs, in milliseconds."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        best = min(best, (time.perf_counter() - started) * 1000)
    return best


def per_clip(run: Callable[[np.ndarray], object], clips: list[np.ndarray]) -> float:
    return best_ms(lambda: [run(clip) for clip in clips]) / len(clips)


def tabular(scorer: ModelScorer, clips: list[np.ndarray]) -> None:
    """One tabular model's line: score, explained score, their ratio, and the explanation alone."""
    plain = per_clip(lambda x: scorer.score(x, RATE), clips)
    explained = per_clip(lambda x: scorer.score(x, RATE, explain=True), clips)
    inputs = [scorer.model_input(x, RATE) for x in clips]
    columns = scorer.inputs.columns
    alone = best_ms(lambda: [explain_features(scorer.detector, row, columns) for row in inputs]) / len(clips)
    print(
        f"{scorer.name:17s} score {plain:7.2f}  explained {explained:7.2f}  ratio {explained / plain:5.3f}  "
        f"explanation alone {alone:6.3f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    spec = FeatureSpec.from_settings(load_settings(None))
    train = [machine_sound(args.seconds, RATE, clip=i) for i in range(40)]
    clips = [
        machine_sound(args.seconds, RATE, clip=100 + i, anomaly="bearing" if i % 2 else None) for i in range(args.clips)
    ]
    columns = tuple(c for c in spec.columns if c not in spec.envelope_columns)
    rows = np.array(
        [
            [f.values[c] for c in columns]
            for f in (featurize(x, RATE, spec, columns=columns, logmel=False) for x in train)
        ]
    )
    with threadpool_limits(limits=1):
        print(f"{args.clips} clips of {args.seconds:g} s, one thread; ms per clip")
        for name in TABULAR:
            tabular(ModelScorer(get_detector(name).fit(rows), spec, ModelInputs("tabular", columns), name, "1"), clips)
        logmels = [featurize(x, RATE, spec).logmel for x in train[:16]]
        detector = get_detector("cnn-ae", max_epochs=3, accelerator="cpu").fit(logmels)
        scorer = ModelScorer(detector, spec, ModelInputs("logmel"), "cnn-ae", "1")
        plain = per_clip(lambda x: scorer.score(x, RATE), clips)
        explained = per_clip(lambda x: scorer.score(x, RATE, explain=True), clips)
        size = len(scorer.score(clips[0], RATE, explain=True).explanation.model_dump_json())
        print(
            f"{'cnn-ae':17s} score {plain:7.2f}  explained {explained:7.2f}  ratio {explained / plain:5.3f}  "
            f"explanation JSON {size / 1000:.1f} kB"
        )


if __name__ == "__main__":
    main()
