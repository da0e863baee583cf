"""Prognostics: diagnosis physics, the k-of-n alarm, sensor faults, RUL, and the commands on real data."""

from __future__ import annotations

import math
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from alarmed_runs import alarmed_run
from typer.testing import CliRunner

from vibrasense.cli import app
from vibrasense.config import load_settings
from vibrasense.prognostics import diagnose
from vibrasense.prognostics.alarm import switches
from vibrasense.prognostics.correlation import degradation_correlation
from vibrasense.prognostics.diagnosis import DETECTION_LEVEL, prewhiten
from vibrasense.prognostics.health import HealthResult, health_index
from vibrasense.prognostics.rul import PastRuns, best_guess, estimate_rul, phm2012_score, similarity_candidates
from vibrasense.prognostics.runs import load_run
from vibrasense.signals.bearings import PRESETS
from vibrasense.signals.synthetic import bearing_vibration

CWRU = PRESETS["cwru-6205-de"]
SHAFT = 1797 / 60


@pytest.mark.parametrize(
    ("defect", "verdict"),
    [
        ("outer_race", "outer_race"),
        ("inner_race", "inner_race"),
        ("rolling_element", "rolling_element"),
        (None, "none"),
    ],
)
def test_diagnosis_names_a_synthetic_defect(defect: str | None, verdict: str) -> None:
    x = bearing_vibration(2.0, 12_000, CWRU, SHAFT, defect, severity=3.0, seed=11)  # type: ignore[arg-type]
    result = diagnose(x, 12_000, CWRU, SHAFT)
    assert result.verdict == verdict
    if defect:
        assert result.confidence > 0.6
        assert result.scores[verdict] >= DETECTION_LEVEL and result.evidence[0].snr >= DETECTION_LEVEL / 2


def test_prewhitening_removes_a_strong_shaft_harmonic_and_leaves_no_edge_impulse() -> None:
    rng = np.random.default_rng(5)
    t = np.arange(120_000) / 12_000
    x = 50 * np.sin(2 * np.pi * 3 * SHAFT * t + 0.3) + rng.standard_normal(len(t))
    whitened = prewhiten(x, trim=True)
    spectrum = np.abs(np.fft.rfft(whitened))
    freqs = np.fft.rfftfreq(len(whitened), 1 / 12_000)
    near = np.abs(freqs - 3 * SHAFT) < 1.0
    assert spectrum[near].max() < 5 * np.median(spectrum)  # the harmonic stood 1000x above the noise
    # the record is not periodic in its length: untapered, the wrap-around jump whitens into a large impulse
    assert np.abs(whitened).max() < 6 * whitened.std()


@pytest.mark.parametrize("seconds", [1.0, 10.0])
def test_noise_and_healthy_records_stay_below_the_detection_level(seconds: float) -> None:
    rng = np.random.default_rng(7)
    for x in (rng.standard_normal(int(seconds * 12_000)), bearing_vibration(seconds, 12_000, CWRU, SHAFT, seed=7)):
        result = diagnose(x, 12_000, CWRU, SHAFT)
        assert result.verdict == "none"
        assert max(result.scores.values()) < 0.75 * DETECTION_LEVEL


def test_a_mild_rolling_element_defect_is_supported_by_its_cage_rate_modulation() -> None:
    x = bearing_vibration(10.0, 12_000, CWRU, SHAFT, "rolling_element", severity=1.0, seed=4)
    result = diagnose(x, 12_000, CWRU, SHAFT)
    assert result.verdict == "rolling_element"
    labels = {peak.label for peak in result.evidence}
    assert "2xBSF" in labels and "FTF" in labels


def _run(values: list[float], start: str = "2024-01-01") -> pd.DataFrame:
    times = pd.date_range(start, periods=len(values), freq="10min", tz="UTC")
    return pd.DataFrame({"machine_id": "m", "event_timestamp": times, "rms": values})


def test_an_isolated_spike_does_not_raise_the_alarm_but_sustained_growth_does() -> None:
    rng = np.random.default_rng(0)
    healthy = list(1 + 0.02 * rng.standard_normal(200))
    spiked = healthy.copy()
    spiked[120] = 50.0
    assert health_index(_run(spiked)).first_alarm is None
    growth = healthy + list(np.exp(np.linspace(0.2, 3, 60)))
    result = health_index(_run(growth))
    assert result.first_alarm is not None
    assert result.table["event_timestamp"].iloc[200] <= result.onset <= result.first_alarm


def test_flat_snapshots_are_a_sensor_fault_not_health() -> None:
    values = [1.0 + 0.01 * (k % 7) for k in range(100)] + [0.001, 0.001]
    result = health_index(_run(values))
    assert result.table["sensor_fault"].tolist()[-2:] == [True, True]
    assert result.table["sensor_fault"].sum() == 2
    assert result.table["alarm"].iloc[-2:].tolist() == [False, False]


def test_exponential_trend_of_the_index_predicts_remaining_life() -> None:
    hours = np.arange(300) / 6  # every 10 minutes for 50 h; the index grows exponentially from 30 h
    index = np.where(hours < 30, 1.0, np.exp(0.15 * (hours - 30)))
    times = pd.date_range("2024-01-01", periods=300, freq="10min", tz="UTC")
    table = pd.DataFrame({"event_timestamp": times, "smoothed": index, "health_index": index, "sensor_fault": False})
    result = HealthResult(table, threshold=2.0, features=["rms"], onset=times[186], first_alarm=times[190])
    failure_ratio = float(np.exp(0.15 * 20)) / 2.0  # the index reaches the failure level at 50 h
    estimate = estimate_rul(result, times[240], failure_ratio)  # at 40 h
    assert estimate.method == "exponential trend"
    assert estimate.hours == pytest.approx(10.0, rel=0.05)
    assert estimate.low <= estimate.hours <= estimate.high
    assert estimate_rul(result, times[100], failure_ratio).method == "unknown"  # before onset, no past runs


def test_past_runs_give_the_alarm_lead() -> None:
    rng = np.random.default_rng(1)
    growth = list(1 + 0.02 * rng.standard_normal(100)) + list(np.exp(np.linspace(0.2, 3, 30)))
    past = PastRuns.learn([health_index(_run(growth))])
    assert past.alarm_lead_hours is not None and 0 < past.alarm_lead_hours < 5
    current = health_index(_run(growth))
    at = current.first_alarm
    estimate = estimate_rul(current, at, past=past)
    # one past run is one sample: the estimate leans early of its lead (a late RUL costs more), within 30 %
    assert 0.7 * past.alarm_lead_hours <= estimate.hours <= past.alarm_lead_hours
    assert estimate.low <= estimate.hours <= estimate.high
    summaries = PastRuns(past.mean_life_hours, past.alarm_lead_hours, past.failure_ratio)  # no timelines: as before
    assert estimate_rul(current, at, past=summaries).hours == pytest.approx(past.alarm_lead_hours)


def test_best_guess_is_conservative_and_exact_for_one_sharp_candidate() -> None:
    assert best_guess([2.0], spread=1e-9) == pytest.approx(2.0, rel=0.01)
    one = best_guess([2.0])
    assert 0.7 * 2.0 < one < 2.0  # a spread makes it lean early
    two = best_guess([1.0, 3.0])
    assert 0.7 < two < 2.0  # below the mean of the two: a late estimate is punished harder
    assert best_guess([0.0, -1.0]) == 0.0


def test_past_runs_of_different_lives_are_matched_on_the_degradation_state() -> None:
    past = PastRuns.learn([alarmed_run(10.0, 9.0), alarmed_run(20.0, 18.5), alarmed_run(4.0, 3.0)])
    assert [run.lead_hours for run in past.runs] == pytest.approx([1.0, 1.5, 1.0])
    # 8 h in, no alarm: the 4 h run had failed by now and is left out; each other run leaves its life less 8 h
    assert similarity_candidates(past.runs, 8.0, None) == pytest.approx([2.0, 12.0])
    # 19 h in: longer than all but one life; matched on age, alarm or not
    assert similarity_candidates(past.runs, 19.0, None) == pytest.approx([1.0])
    assert similarity_candidates(past.runs, 12.0, 0.5) == pytest.approx([8.0])
    # outlived every run: half an hour after the alarm, each run's alarm-to-failure time less the half hour
    assert similarity_candidates(past.runs, 21.0, 0.5) == pytest.approx([0.5, 1.0, 0.5])
    # overdue (past every run's lead): failure is imminent, but the estimate stays positive
    overdue = similarity_candidates(past.runs, 21.0, 2.0)
    assert len(overdue) == 1 and 0 < overdue[0] < 0.5
    for at_hours in (2.0, 8.0, 10.2, 11.0, 12.5):
        current = alarmed_run(13.0, 10.0)
        estimate = estimate_rul(
            current, current.table["event_timestamp"].iloc[0] + pd.Timedelta(hours=at_hours), past=past
        )
        assert estimate.method == "past runs"
        assert 0 < estimate.low <= estimate.hours <= estimate.high


def test_similarity_after_the_alarm_errs_early_on_synthetic_runs(synthetic_runs: dict[int, Path]) -> None:
    settings = load_settings()
    results = {n: health_index(load_run(folder, settings)) for n, folder in synthetic_runs.items()}
    past = PastRuns.learn([results[120]])
    current = results[150]
    times = current.table["event_timestamp"]
    life = (times.iloc[-1] - times.iloc[0]).total_seconds() / 3600
    at = max(times.iloc[0] + pd.Timedelta(hours=0.85 * life), current.first_alarm)
    truth = (times.iloc[-1] - at).total_seconds() / 3600
    estimate = estimate_rul(current, at, past=past)
    assert estimate.method == "past runs"
    assert estimate.low <= estimate.hours <= estimate.high
    # the past run is shorter, so is its alarm lead: the estimate errs early (cheap), never late (costly)
    assert 0.3 * truth <= estimate.hours <= truth


def test_phm2012_score_is_one_when_exact_and_penalises_late_more_than_early() -> None:
    assert phm2012_score(np.array([10.0]), np.array([10.0])) == 1.0
    late = phm2012_score(np.array([10.0]), np.array([12.0]))  # Er = -20 %
    early = phm2012_score(np.array([10.0]), np.array([8.0]))  # Er = +20 %
    assert late == pytest.approx(math.exp(math.log(0.5) * 20 / 5))
    assert early == pytest.approx(0.5)
    assert late < early


def test_synthetic_run_to_failure_end_to_end(synthetic_runs: dict[int, Path]) -> None:
    run = load_run(synthetic_runs[150], load_settings())
    result = health_index(run)
    life = (run["event_timestamp"].iloc[-1] - run["event_timestamp"].iloc[0]).total_seconds()
    assert result.first_alarm is not None
    assert (result.first_alarm - run["event_timestamp"].iloc[0]).total_seconds() > 0.5 * life
    assert result.onset is not None and result.first_alert is not None
    assert result.onset <= result.first_alert <= result.first_alarm
    correlation = degradation_correlation(run)
    assert correlation.iloc[0]["spearman"] > 0.5


@pytest.mark.realdata
def test_ims_bearing_1_onset_at_the_published_onset_and_alarm_in_the_second_half(shared_data: Path) -> None:
    run = load_run(shared_data / "ims" / "per_file_features" / "test2_raw.csv", load_settings())
    onsets, alarms = {}, {}
    for machine, snapshots in run.groupby("machine_id"):
        result = health_index(snapshots)
        times = snapshots["event_timestamp"]
        onsets[machine] = None if result.onset is None else int((times < result.onset).sum())
        alarms[machine] = None if result.first_alarm is None else int((times < result.first_alarm).sum())
        assert result.table["sensor_fault"].tolist()[-2:] == [True, True]  # the last two files are near zero
        assert switches(result.table.loc[~result.table["sensor_fault"], "alarm"]) <= 1
    # Lee et al. (2007): bearing 1's outer-race degradation shows from files ~530-550 of 984
    assert 530 <= onsets["Bearing1"] <= 550
    assert all(onsets[b] is None or onsets[b] > onsets["Bearing1"] for b in ("Bearing2", "Bearing3", "Bearing4"))
    # the alarm waits until the levels have doubled: in the second half of life, hours before the end
    assert 0.5 * 984 <= alarms["Bearing1"] < 984 - 12
    assert all(alarms[b] is None or alarms[b] > alarms["Bearing1"] for b in ("Bearing2", "Bearing3", "Bearing4"))


@pytest.mark.realdata
def test_cwru_inner_and_outer_race_files_diagnosed(shared_data: Path) -> None:
    runner = CliRunner()
    fault = shared_data / "cwru" / "12k_Drive_End_Bearing_Fault_Data"
    result = runner.invoke(app, ["diagnose", str(fault / "IR" / "007"), str(fault / "OR" / "021" / "@6"), "--json"])
    assert result.exit_code == 0, result.output
    assert '"verdict": "inner_race"' in result.output and '"verdict": "outer_race"' in result.output


def test_prognose_command_logs_to_mlflow(tmp_path: Path, synthetic_runs: dict[int, Path]) -> None:
    result = CliRunner().invoke(app, ["--workdir", str(tmp_path / "work"), "prognose", str(synthetic_runs[150])])
    assert result.exit_code == 0, result.output
    outputs = sorted(p.name for p in (tmp_path / "work" / "prognostics").iterdir())
    assert "bearing_150_prognosis.csv" in outputs and "bearing_150_health.png" in outputs
    table = pd.read_csv(tmp_path / "work" / "prognostics" / "bearing_150_prognosis.csv")
    assert {"health_index", "alarm", "alert", "phase", "elapsed_hours", "rul_hours", "sensor_fault"} <= set(table)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'work' / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["vibrasense-prognostics"])
    assert len(runs) == 1
    assert runs.iloc[0]["metrics.bearing_150.alarm"] == 1.0
    assert runs.iloc[0]["metrics.bearing_150.alarm_switches"] == 1.0
