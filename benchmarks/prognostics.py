"""Prognostics and diagnosis on real run-to-failure and seeded-fault data (../shared/data).

1. FEMTO (PHM 2012), the six learning runs: onset (alert), first alarm as a share of life, lead before failure
   and how often the alarm switched; goal: an alarm before failure on every bearing, none in the first half of
   life, one switch (latched).
2. IMS 2nd test (per-file table): onset of bearing 1 against the published onset (files ~530-550, 72-75 h
   before the end), its alarm in the second half of life, and bearings 2-4 quiet before it.
3. RUL, leave-one-bearing-out over the FEMTO bearings, runs cut at 50-98 % of life: PHM 2012 score (winner 0.31),
   against the reference "past runs only" estimate (mean life of the other bearings minus the time elapsed).
4. Diagnosis on CWRU (load 0, drive end): share of fault files whose class is named, and the normal file "none".

Sources: FEMTO-ST PRONOSTIA (Nectoux et al., PHM 2012); IMS, University of Cincinnati (Lee et al., 2007);
CWRU Bearing Data Center. Usage: .venv/bin/python benchmarks/prognostics.py [--data ../shared/data]
[--only femto|ims|rul|cwru ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from vibrasense.config import load_settings
from vibrasense.features.featurize import resolve_bearing
from vibrasense.features.spec import FeatureSpec
from vibrasense.prognostics import diagnose
from vibrasense.prognostics.alarm import switches
from vibrasense.prognostics.health import health_index
from vibrasense.prognostics.rul import PastRuns, estimate_rul, phm2012_score
from vibrasense.prognostics.runs import load_run
from vibrasense.signals.bearings import layout_context
from vibrasense.signals.layouts import discover
from vibrasense.signals.readers import read_signal, recording_shaft_hz
from vibrasense.signals.records import SignalContext

FEMTO = ("Bearing1_1", "Bearing1_2", "Bearing2_1", "Bearing2_2", "Bearing3_1", "Bearing3_2")
CACHE = Path(__file__).resolve().parents[1] / "vibrasense-work" / "prognostics-cache"
CUTS = (0.5, 0.7, 0.9, 0.95, 0.98)
SECTIONS = ("femto", "ims", "rul", "cwru")


def femto_alarms(runs: dict[str, pd.DataFrame]) -> None:
    print("\n# FEMTO learning runs: alarm before failure, none in the first half of life, latched (one switch)")
    print(
        f"{'bearing':<12}{'snapshots':>10}{'life (h)':>10}{'onset':>8}{'alarm':>8}{'lead (min)':>12}"
        f"{'switches':>10}  verdict"
    )
    for name, run in runs.items():
        result = health_index(run)
        start, end = run["event_timestamp"].iloc[0], run["event_timestamp"].iloc[-1]
        life = (end - start).total_seconds()
        onset = "-" if result.onset is None else f"{(result.onset - start).total_seconds() / life:.1%}"
        flips = switches(result.table.loc[~result.table["sensor_fault"], "alarm"])
        if result.first_alarm is None:
            print(f"{name:<12}{len(run):>10}{life / 3600:>10.2f}{onset:>8}{'none':>8}{'-':>12}{flips:>10}  MISSED")
            continue
        share = (result.first_alarm - start).total_seconds() / life
        verdict = "ok" if 0.5 <= share < 1 and flips == 1 else "EARLY" if share < 0.5 else "CHECK"
        lead = (end - result.first_alarm).total_seconds() / 60
        print(f"{name:<12}{len(run):>10}{life / 3600:>10.2f}{onset:>8}{share:>8.1%}{lead:>12.1f}{flips:>10}  {verdict}")


def ims_alarms(data: Path) -> None:
    run = load_run(data / "ims" / "per_file_features" / "test2_raw.csv", load_settings())
    print("\n# IMS 2nd test: bearing 1 fails (outer race); published onset ~ files 530-550, 72-75 h before the end")
    print(f"{'bearing':<10}{'onset file':>12}{'alarm file':>12}{'alarm h before end':>20}{'sensor faults':>15}")
    onsets, alarms = {}, {}
    for machine, snapshots in run.groupby("machine_id"):
        result = health_index(snapshots)
        times, end = snapshots["event_timestamp"], snapshots["event_timestamp"].iloc[-1]
        onsets[machine] = None if result.onset is None else int((times < result.onset).sum())
        alarms[machine] = None if result.first_alarm is None else int((times < result.first_alarm).sum())
        before = "-" if result.first_alarm is None else f"{(end - result.first_alarm).total_seconds() / 3600:.1f}"
        print(
            f"{machine:<10}{onsets[machine] if onsets[machine] is not None else 'none':>12}"
            f"{alarms[machine] if alarms[machine] is not None else 'none':>12}{before:>20}"
            f"{int(result.table['sensor_fault'].sum()):>15}"
        )
    first = onsets["Bearing1"]
    late = (alarms["Bearing1"] or 0) >= (run["machine_id"] == "Bearing1").sum() / 2
    quiet = all(v is None or (first is not None and v > first) for k, v in onsets.items() if k != "Bearing1")
    print(
        f"bearing 1 onset in files 530-550: {first is not None and 530 <= first <= 550}; bearings 2-4 onsets after "
        f"it: {quiet}; bearing 1 alarm in the second half: {late}"
    )


def rul_leave_one_out(runs: dict[str, pd.DataFrame]) -> None:
    results = {name: health_index(run) for name, run in runs.items()}
    print("\n# RUL, leave one bearing out (FEMTO), cuts at " + ", ".join(f"{c:.0%}" for c in CUTS) + " of life")
    print(f"{'bearing':<12}{'cut':>6}{'actual (h)':>12}{'vibrasense (h)':>16}{'mean life (h)':>15}")
    ours, reference, actual = [], [], []
    for name, run in runs.items():
        past = PastRuns.learn([results[other] for other in runs if other != name])
        start, end = run["event_timestamp"].iloc[0], run["event_timestamp"].iloc[-1]
        life = (end - start).total_seconds() / 3600
        for cut in CUTS:
            at = start + pd.Timedelta(hours=cut * life)
            truth = (1 - cut) * life
            estimate = estimate_rul(results[name], at, past=past)
            baseline = max(past.mean_life_hours - cut * life, 0.0)
            ours.append(estimate.hours)
            reference.append(baseline)
            actual.append(truth)
            print(f"{name:<12}{cut:>6.0%}{truth:>12.2f}{estimate.hours:>16.2f}{baseline:>15.2f}")
    score = phm2012_score(np.array(actual), np.array(ours))
    base = phm2012_score(np.array(actual), np.array(reference))
    names = np.array([name for name in runs for _ in CUTS])
    cuts = np.array([f"{cut:.0%}" for _ in runs for cut in CUTS])
    truth_all, ours_all, reference_all = np.array(actual), np.array(ours), np.array(reference)
    for label, keys in (("bearing", names), ("cut", cuts)):
        parts = []
        for key in dict.fromkeys(keys):
            chosen = keys == key
            ours_part = phm2012_score(truth_all[chosen], ours_all[chosen])
            parts.append(f"{key} {ours_part:.2f}/{phm2012_score(truth_all[chosen], reference_all[chosen]):.2f}")
        print(f"score per {label} (vibrasense/reference): " + "; ".join(parts))
    print(
        f"PHM 2012 score: vibrasense {score:.3f}; reference (mean life of the other bearings minus time elapsed) "
        f"{base:.3f}; ratio {score / max(base, 1e-9):.2f}; challenge winner 0.31"
    )


def cwru_diagnosis(data: Path) -> None:
    spec = FeatureSpec.from_settings(load_settings())
    print("\n# CWRU diagnosis (load 0, drive end, each file's own RPM): share of files named right, per class")
    counts: dict[str, list[int]] = {}
    for ref in discover(data / "cwru"):
        signal = read_signal(ref)
        context = layout_context(ref)
        context = SignalContext(context.bearing, recording_shaft_hz(ref) or context.shaft_hz)
        bearing, shaft = resolve_bearing(spec, context)
        verdict = diagnose(signal.samples, signal.sample_rate, bearing, shaft).verdict  # type: ignore[arg-type]
        truth = {"ball": "rolling_element"}.get(ref.attributes["fault"], ref.attributes["fault"])
        counts.setdefault(truth, []).append(int(verdict == truth))
        print(f"  {ref.recording_id:<18}{truth:<17}-> {verdict}")
    for truth, hits in sorted(counts.items()):
        print(f"{truth:<17}{sum(hits)}/{len(hits)}")
    print("reference (Smith & Randall 2015): envelope analysis diagnoses most IR and OR records and few ball records")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument(
        "--only", nargs="+", choices=SECTIONS, default=list(SECTIONS), help="run only these sections (default: all)"
    )
    args = parser.parse_args()
    settings = load_settings()
    if {"femto", "rul"} & set(args.only):
        runs = {
            name: load_run(args.data / "femto" / f"{name}.zip", settings, cache_dir=CACHE, workers=0) for name in FEMTO
        }
    if "femto" in args.only:
        femto_alarms(runs)
    if "ims" in args.only:
        ims_alarms(args.data)
    if "rul" in args.only:
        rul_leave_one_out(runs)
    if "cwru" in args.only:
        cwru_diagnosis(args.data)


if __name__ == "__main__":
    main()
