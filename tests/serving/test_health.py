"""GET /v1/machines/{machine_id}/health: a machine's health index, alarm and RUL from its prognosis table."""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from synthetic_machines import PROGNOSIS_MACHINE

from vibrasense.config import Settings
from vibrasense.serving import health as health_module


def install(prognosis_csv: Path, settings: Settings, name: str | None = None) -> Path:
    """Put a prognosis table where the service reads them, as ``vibrasense prognose`` would."""
    folder = settings.workdir / "prognostics"
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(prognosis_csv, folder / (name or prognosis_csv.name)))


def get_health(client: TestClient, machine: str = PROGNOSIS_MACHINE):
    return client.get(f"/v1/machines/{machine}/health")


def test_latest_health_is_the_last_row_of_the_prognosis(
    client: TestClient, settings: Settings, prognosis_csv: Path
) -> None:
    install(prognosis_csv, settings)
    response = get_health(client)
    assert response.status_code == 200, response.text
    body = response.json()
    table = pd.read_csv(prognosis_csv)
    last = table.iloc[-1]
    latest = body["latest"]
    assert body["machine_id"] == PROGNOSIS_MACHINE == last["machine_id"]
    assert pd.Timestamp(latest["event_timestamp"]) == pd.Timestamp(last["event_timestamp"])
    for column in ("health_index", "smoothed", "threshold", "rul_hours", "rul_low_hours", "rul_high_hours"):
        assert latest[column] == pytest.approx(float(last[column])), column
    assert latest["alarm"] is bool(last["alarm"]) is True  # run to failure: in alarm at the end
    assert latest["sensor_fault"] is False and body["sensor_fault_now"] is False
    assert latest["rul_method"] == last["rul_method"] and math.isfinite(latest["rul_hours"])
    assert latest["threshold"] == pytest.approx(table["threshold"].iloc[0])  # the same on every row
    assert body["first_alarm"] is not None and body["onset"] is not None
    assert pd.Timestamp(body["onset"]) <= pd.Timestamp(body["first_alarm"]) < pd.Timestamp(latest["event_timestamp"])
    assert pd.Timestamp(body["first_alarm"]) == pd.to_datetime(table.loc[table["alarm"], "event_timestamp"]).min()
    assert body["snapshots"] == len(table) and body["sensor_faults"] == 0
    series = body["series"]
    assert len(series["timestamps"]) == len(series["smoothed"]) == len(series["alarm"]) == len(table) <= 500
    assert series["smoothed"][-1] == pytest.approx(last["smoothed"]) and series["alarm"][-1] is True
    assert body["source"] == prognosis_csv.name


def test_long_series_is_downsampled_and_keeps_the_latest(
    client: TestClient, settings: Settings, prognosis_csv: Path
) -> None:
    table = pd.read_csv(prognosis_csv)
    long = pd.concat([table] * 12, ignore_index=True)
    long["machine_id"] = "bearing-long"
    long["event_timestamp"] = pd.date_range("2026-01-05", periods=len(long), freq="10s", tz="UTC").astype(str)
    folder = settings.workdir / "prognostics"
    folder.mkdir(parents=True)
    long.to_csv(folder / "bearing-long_prognosis.csv", index=False)
    body = get_health(client, "bearing-long").json()
    series = body["series"]
    assert len(long) > 500 and 1 < len(series["timestamps"]) <= 500
    assert len(series["smoothed"]) == len(series["alarm"]) == len(series["timestamps"])
    assert pd.Timestamp(series["timestamps"][-1]) == pd.Timestamp(long["event_timestamp"].iloc[-1])
    assert pd.Timestamp(body["latest"]["event_timestamp"]) == pd.Timestamp(long["event_timestamp"].iloc[-1])
    assert sum(series["alarm"]) >= 12  # every repeated alarm period survives the downsampling


def test_table_is_read_once_per_version(
    client: TestClient, settings: Settings, prognosis_csv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = install(prognosis_csv, settings)
    reads: list[Path] = []
    real = health_module.read_health

    def counting(table: Path, *args, **kwargs):
        reads.append(table)
        return real(table, *args, **kwargs)

    monkeypatch.setattr(health_module, "read_health", counting)
    for _ in range(3):
        assert get_health(client).status_code == 200
    assert reads == [path]
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))  # prognose ran again
    assert get_health(client).status_code == 200
    assert reads == [path, path]


def test_table_found_by_its_machine_id_column(client: TestClient, settings: Settings, prognosis_csv: Path) -> None:
    install(prognosis_csv, settings, name="line-3_prognosis.csv")
    response = get_health(client)
    assert response.status_code == 200 and response.json()["source"] == "line-3_prognosis.csv"
    assert get_health(client, "line-3").status_code == 404  # the file name alone does not make it line-3's


def test_sensor_fault_at_the_end_answers_the_latest_usable_snapshot(
    client: TestClient, settings: Settings, prognosis_csv: Path
) -> None:
    table = pd.read_csv(prognosis_csv)
    table.loc[table.index[-1], ["sensor_fault", "health_index", "smoothed", "rul_hours"]] = [True, None, None, None]
    table = table.drop(columns=["threshold"])  # a table written before the threshold was recorded
    folder = settings.workdir / "prognostics"
    folder.mkdir(parents=True)
    table.to_csv(folder / prognosis_csv.name, index=False)
    body = get_health(client).json()
    assert body["sensor_fault_now"] is True and body["sensor_faults"] == 1
    assert pd.Timestamp(body["latest"]["event_timestamp"]) == pd.Timestamp(table["event_timestamp"].iloc[-2])
    assert body["latest"]["threshold"] is None and body["series"]["smoothed"][-1] is None


def test_no_prognosis_is_404_naming_the_command(client: TestClient, settings: Settings, prognosis_csv: Path) -> None:
    response = get_health(client, "pump-9")  # no prognostics folder at all
    assert response.status_code == 404
    problem = response.json()
    assert problem["error"] == "NoPrognosis" and problem["field"] == "machine_id"
    assert "pump-9" in problem["detail"] and "vibrasense prognose <run>" in problem["detail"]
    install(prognosis_csv, settings)
    assert get_health(client, "pump-9").status_code == 404  # other machines' prognoses do not count
    assert get_health(client, "-bad").status_code == 422  # machine id validated like the other routes


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\x00\xff\xfe garbage \x81\x82\n\x00\x00",
        b"machine_id,event_timestamp\nbroken-1,2026-01-05T08:00:00Z\n",
        "CSV",  # the real table with a corrupt health index
        "TIME",  # the real table with a corrupt timestamp
    ],
    ids=["empty", "binary", "missing-columns", "non-numeric", "bad-timestamp"],
)
def test_corrupt_table_is_503_with_the_reason(
    client: TestClient, settings: Settings, prognosis_csv: Path, content: bytes | str
) -> None:
    folder = settings.workdir / "prognostics"
    folder.mkdir(parents=True)
    path = folder / "broken-1_prognosis.csv"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        table = pd.read_csv(prognosis_csv).astype({"health_index": object, "event_timestamp": object})
        table["machine_id"] = "broken-1"
        table.loc[3, "health_index" if content == "CSV" else "event_timestamp"] = "n/a?"
        table.to_csv(path, index=False)
    response = get_health(client, "broken-1")
    assert response.status_code == 503, response.text
    problem = response.json()
    assert problem["error"] == "PrognosisUnreadable"
    assert "broken-1_prognosis.csv" in problem["detail"] and "vibrasense prognose" in problem["detail"]
    assert get_health(client, "broken-1").status_code == 503  # cached, still answered
