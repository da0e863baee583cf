"""Unknown domain on real recordings in ``../shared/data``: a model's own machine inside, other machines outside.

Each model is trained as ``vibrasense train`` trains it (the features stage's output, its split, a model
folder with its domain reference) and served from that folder (:class:`ModelScorer`, the service's scorer);
every recording below goes through ``score`` as raw samples. Per group of recordings the table gives the
share flagged "unknown domain" and the range of their domain distances (``training.domain_limit``: 3, or
``--limit``).

- trained on MIMII fan id_00 (Purohit et al., 2019; channel 0): its held-out normal and its faulty clips,
  the same two clips of ``mimii_8ch`` on the array's seven other microphones (one machine, other sensor
  positions), the DCASE 2020 clips (``dcase2020``; the redistributor did not record their machine), four
  synthetic machine sounds, and the CWRU normal drive-end accelerometer record cut into 2-s pieces (48 kHz);
- trained on the ``dcase2020`` clips (a seeded 30 % of its normal clips held out): those and its anomaly,
  MIMII fan id_00, the synthetic machines and CWRU;
- trained on a synthetic plant of three pumps: their held-out normal and faulty clips (all four faults, as
  the demo generates them, and again at 4x the severity, sent with their machine's id and without), a fourth
  pump (with its own id), MIMII fan id_00 and the DCASE clips.

Recordings go with the machine id training gave them where they have one (a recording of a machine the model
was trained on is always judged), else with none. A good reference leaves no recording of the trained
machines outside (its own faults included) and flags the others. The detector (Mahalanobis here) only sets
the scores; the domain distance depends on the training recordings alone.

    .venv/bin/python benchmarks/domain.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import soundfile as sf
from sklearn.metrics import roc_auc_score

from vibrasense.config import Settings, load_settings
from vibrasense.features.pipeline import extract_features
from vibrasense.inference import ModelScorer
from vibrasense.signals.readers import read_path
from vibrasense.signals.synthetic import ANOMALIES, machine_sound, write_audio_plant
from vibrasense.training.data import load_training_data
from vibrasense.training.train import build_detector, fit_detector, save_model_folder

REPO = Path(__file__).resolve().parents[1]
Clip = tuple[np.ndarray, float, str | None]  # samples, sample rate, the machine id it is sent with (or none)
DETECTOR = "mahalanobis"
DCASE_HELD_OUT = 0.3  # its test split holds one anomalous clip and no normal one (as in quality.py)


def trained(
    settings: Settings, inputs: list[Path], work: Path, hold_out: float = 0.0
) -> tuple[ModelScorer, list[Clip], list[Clip]]:
    """A model folder trained on ``inputs``, loaded as the service loads it; its normal and anomalous test clips
    (``hold_out``: a seeded share of the normal training clips moved to the test, for a layout without any)."""
    run = extract_features(inputs, work / "features", settings, progress=False)
    data = load_training_data(settings, run.out_dir)
    if hold_out:
        data = data.with_normal_held_out(hold_out, settings.training.seed)
    detector, _, _ = fit_detector(build_detector(settings, DETECTOR), data)
    folder = save_model_folder(detector, data, work / "model", settings.training.domain_limit)
    scorer = ModelScorer.from_directory(folder, DETECTOR, "1")
    by_label: dict[str, list[Clip]] = {"normal": [], "anomaly": []}
    machines = data.test["machine_id"].astype(str) if "machine_id" in data.test else [None] * len(data.test)
    for path, label, machine in zip(data.test["source"], data.test["label"], machines, strict=True):
        by_label[label].append(wav(Path(path), machine_id=machine))
    return scorer, by_label["normal"], by_label["anomaly"]


def wav(path: Path, channel: int | None = None, machine_id: str | None = None) -> Clip:
    signal = read_path(path, channel)
    return signal.samples, float(signal.sample_rate), machine_id


def wavs(folder: Path, pattern: str = "*.wav") -> list[Clip]:
    return [wav(path) for path in sorted(folder.glob(pattern))]


def other_microphones(data: Path) -> list[Clip]:
    return [
        wav(data / "mimii_8ch" / "fan" / "id_00" / label / "00000000.wav", channel)
        for label in ("normal", "abnormal")
        for channel in range(1, 8)
    ]


def synthetic(machines: Iterable[int]) -> list[Clip]:
    return [(machine_sound(10.0, 16_000, machine, seed=5, clip=900), 16_000.0, None) for machine in machines]


def severe_faults(machines: dict[int, str | None], seed: int, severity: float = 4.0) -> list[Clip]:
    """Each fault at ``severity`` on each of ``machines`` (index: the id it is sent with)."""
    return [
        (machine_sound(10.0, 16_000, machine, anomaly, seed, clip=700 + k, severity=severity), 16_000.0, machine_id)
        for machine, machine_id in machines.items()
        for k, anomaly in enumerate(ANOMALIES)
    ]


def plant_machine_ids(scorer: ModelScorer) -> dict[int, str | None]:
    """The synthetic plant's machine index to the machine id training gave it."""
    return {int(machine.rsplit("_", 1)[-1]): machine for machine in sorted(scorer.domain.machines)}


def cwru_pieces(data: Path, seconds: float = 2.0) -> list[Clip]:
    signal = read_path(next((data / "cwru" / "Normal").glob("*.mat")))
    size = int(seconds * signal.sample_rate)
    return [
        (signal.samples[i : i + size], float(signal.sample_rate), None)
        for i in range(0, signal.samples.size - size + 1, size)
    ]


def report(title: str, scorer: ModelScorer, groups: dict[str, tuple[str, list[Clip]]]) -> None:
    """One row per group: expected side, share flagged unknown domain, distance range, anomalies flagged."""
    print(f"\n# {title} (domain limit {scorer.domain.limit:g}; {len(scorer.domain.groups)} machine group(s))")
    print(f"{'recordings':<46}{'n':>4}{'expected':>10}{'unknown':>9}{'distance':>14}{'anomaly':>9}")
    scores: dict[str, np.ndarray] = {}
    for name, (expected, clips) in groups.items():
        verdicts = [scorer.score(samples, rate, machine_id=machine) for samples, rate, machine in clips]
        distances = np.array([v.domain_distance for v in verdicts])
        unknown = sum(v.unknown_domain for v in verdicts)
        anomalies = sum(v.is_anomaly for v in verdicts)
        scores[name] = np.array([v.score for v in verdicts])
        span = f"{distances.min():.1f}-{distances.max():.1f}"
        print(
            f"{name:<46}{len(clips):>4}{expected:>10}{unknown:>6}/{len(clips):<2}{span:>14}{anomalies:>6}/{len(clips):<2}"
        )
    own_normal, own_faulty = next(iter(groups)), list(groups)[1]
    labels = np.r_[np.zeros(len(scores[own_normal])), np.ones(len(scores[own_faulty]))]
    if len(set(labels)) == 2:
        auc = roc_auc_score(labels, np.r_[scores[own_normal], scores[own_faulty]])
        print(f"AUC on the trained machine's own test clips: {auc:.4f} (the domain check leaves the score alone)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data", help="the shared data folder")
    parser.add_argument("--limit", type=float, help="training.domain_limit (default: the configured one)")
    args = parser.parse_args()
    training = {"domain_limit": args.limit} if args.limit else {}
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore", module="lightning")
    data = args.data
    fan = data / "mimii" / "fan"
    dcase = data / "dcase2020"
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        settings = load_settings(None, workdir=work / "fan", features={"workers": 1}, training=training)
        scorer, normal, faulty = trained(settings, [fan], work / "fan")
        report(
            "trained on MIMII fan id_00",
            scorer,
            {
                "fan id_00: held-out normal": ("inside", normal),
                "fan id_00: abnormal": ("inside", faulty),
                "fan id_00 on microphones 1-7 (normal, abnormal)": ("inside", other_microphones(data)),
                "DCASE 2020 clips (machine not recorded)": ("?", wavs(dcase / "unknown_machine", "*/*.wav")),
                "synthetic machine sounds 0-3": ("outside", synthetic(range(4))),
                "CWRU normal drive-end accelerometer, 2-s": ("outside", cwru_pieces(data)),
            },
        )
        settings = load_settings(None, workdir=work / "dcase", features={"workers": 1}, training=training)
        scorer, normal, faulty = trained(settings, [dcase], work / "dcase", hold_out=DCASE_HELD_OUT)
        report(
            "trained on the DCASE 2020 clips",
            scorer,
            {
                "DCASE: held-out normal": ("inside", normal),
                "DCASE: the anomaly": ("inside", faulty),
                "MIMII fan id_00 (normal, abnormal)": ("?", wavs(fan / "id_00", "*/*.wav")),
                "synthetic machine sounds 0-3": ("outside", synthetic(range(4))),
                "CWRU normal drive-end accelerometer, 2-s": ("outside", cwru_pieces(data)),
            },
        )
        plant = write_audio_plant(work / "plant" / "recordings", n_machines=4, seed=3)
        for path in sorted((plant / "train").glob("*_id_03_*.wav")) + sorted((plant / "test").glob("*_id_03_*.wav")):
            path.rename(work / "plant" / path.name)  # the fourth pump is never trained on
        fourth = [
            (*sf.read(path, dtype="float32"), "pump_id_03")
            for path in sorted((work / "plant").glob("normal_id_03_*.wav"))
        ]
        settings = load_settings(None, workdir=work / "plant", features={"workers": 1}, training=training)
        scorer, normal, faulty = trained(settings, [plant], work / "plant")
        report(
            "trained on a synthetic plant of three pumps",
            scorer,
            {
                "pumps 0-2: held-out normal": ("inside", normal),
                "pumps 0-2: faults (bearing, imbalance, rubbing, clogging)": ("inside", faulty),
                "pumps 0-2: the same faults at 4x, named": ("inside", severe_faults(plant_machine_ids(scorer), 3)),
                "pumps 0-2: the same faults at 4x, unnamed": ("inside", severe_faults(dict.fromkeys(range(3)), 3)),
                "pump 3, never trained on (named pump_id_03)": ("?", [(s, float(r), m) for s, r, m in fourth]),
                "MIMII fan id_00 (normal, abnormal)": ("outside", wavs(fan / "id_00", "*/*.wav")),
                "DCASE 2020 clips": ("outside", wavs(dcase / "unknown_machine", "*/*.wav")),
            },
        )


if __name__ == "__main__":
    main()
