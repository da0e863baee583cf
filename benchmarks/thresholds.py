"""Thresholds from normal data only, on real recordings: false alarms and detections at the threshold training sets.

Each tabular detector is trained as ``vibrasense train`` trains it; its threshold (``training.threshold_percentile``
95 of the cross-validated normal scores, :mod:`vibrasense.models.calibration`) is compared, in the same run, with
the reference a detector that trusts its own training scores would use: the same percentile of the scores of the
recordings it was fitted on. Per detector: the two thresholds, and the test split's normal clips called anomalous
(false alarms; 5 % expected) and anomalous clips caught at each.

- MIMII fan id_00 (``../shared/data/mimii/fan``; 14 normal training clips: leave-one-out);
- the DCASE 2020 layout (``../shared/data/dcase2020``; a seeded 30 % of the normal clips held out for the test,
  as ``quality.py`` does);
- a synthetic plant of three pumps (72 normal training clips: 5-fold).

    .venv/bin/python benchmarks/thresholds.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import warnings
from pathlib import Path

from vibrasense.config import load_settings
from vibrasense.features.pipeline import extract_features
from vibrasense.models.threshold import fit_threshold
from vibrasense.signals.synthetic import write_audio_plant
from vibrasense.training.data import load_training_data
from vibrasense.training.train import build_detector, fit_detector

REPO = Path(__file__).resolve().parents[1]
DETECTORS = ("mahalanobis", "lof", "one-class-svm", "isolation-forest")
DCASE_HELD_OUT = 0.3


def report(title: str, inputs: list[Path], work: Path, hold_out: float = 0.0) -> None:
    """One row per detector: thresholds, false alarms and detections at the calibrated and in-sample threshold."""
    settings = load_settings(None, workdir=work, features={"workers": 1})
    run = extract_features(inputs, work / "features", settings, progress=False)
    data = load_training_data(settings, run.out_dir)
    if hold_out:
        data = data.with_normal_held_out(hold_out, settings.training.seed)
    anomalous = (data.test["label"] == "anomaly").to_numpy()
    print(f"\n# {title}: {len(data.train)} normal training clips, test {(~anomalous).sum()} normal + {anomalous.sum()}")
    print(f"{'detector':<18}{'calibration':<17}{'threshold':>11}{'in-sample':>11}{'false alarms':>16}{'caught':>12}")
    for name in DETECTORS:
        detector, _, _ = fit_detector(build_detector(settings, name), data)
        in_sample = fit_threshold(detector.training_scores_, detector.threshold_method, detector.threshold_percentile)
        scores = detector.score(data.inputs(detector, data.test))
        false_alarms = [int((scores[~anomalous] > t).sum()) for t in (detector.threshold_, in_sample)]
        caught = [int((scores[anomalous] > t).sum()) for t in (detector.threshold_, in_sample)]
        print(
            f"{name:<18}{detector.calibration_.source:<17}{detector.threshold_:>11.4g}{in_sample:>11.4g}"
            f"{false_alarms[0]:>8} ({false_alarms[1]:>2}){caught[0]:>7} ({caught[1]:>2})"
        )
    print("(in brackets: at the in-sample threshold)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data", help="the shared data folder")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        report("MIMII fan id_00", [args.data / "mimii" / "fan"], work / "fan")
        report("DCASE 2020 layout", [args.data / "dcase2020"], work / "dcase", hold_out=DCASE_HELD_OUT)
        plant = write_audio_plant(work / "plant" / "recordings", n_machines=3, seed=3)
        report("synthetic plant of three pumps", [plant], work / "plant")


if __name__ == "__main__":
    main()
