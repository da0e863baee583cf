"""The dashboard in a real headless Chromium: it lists machines, shows an alarm once one is scored, and plots the
health of a machine with a prognosis."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest
from synthetic_machines import PROGNOSIS_MACHINE, faulty_clip, fitted_scorer, healthy_clip, wav_bytes
from test_drift_view import write_status

from vibrasense.config import Settings
from vibrasense.serving.app import create_app
from vibrasense.serving.drift_status import MachineDriftStatus
from vibrasense.serving.server import serve_in_thread

pytestmark = pytest.mark.browser


def score(base: str, samples, machine: str) -> dict:
    response = httpx.post(
        f"{base}/v1/score/file",
        files={"file": ("clip.wav", wav_bytes(samples), "audio/wav")},
        data={"machine_id": machine},
        timeout=30,
    )
    response.raise_for_status()
    return response.json()


SNAPSHOT_JS = """
const rows = [...document.querySelectorAll('#machines tbody tr')].map((row) => ({
  id: row.dataset.machineId,
  status: row.querySelector('.status').textContent,
  points: row.querySelector('svg.chart polyline').getAttribute('points').trim().split(/\\s+/).length,
  anomalyDots: row.querySelectorAll('circle.anomaly').length,
  drift: row.querySelector('td.drift').textContent,
  drifted: row.querySelector('td.drift').dataset.drifted || null,
}));
const alarms = [...document.querySelectorAll('#alarms tbody tr')]
  .map((tr) => [tr.dataset.machineId, tr.textContent]);
return {
  rows, alarms,
  noAlarmsShown: !document.getElementById('no-alarms').hidden,
  model: document.getElementById('model').textContent,
  driftChecked: document.getElementById('drift-checked').textContent,
  connection: document.getElementById('connection').dataset.state,
};
"""


def test_dashboard_lists_machines_and_shows_a_new_alarm(browser, settings: Settings) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    def snapshot() -> dict:
        # One script reads the whole page at once: the page re-renders on every poll.
        return browser.execute_script(SNAPSHOT_JS)

    def statuses() -> dict[str, str]:
        return {row["id"]: row["status"] for row in snapshot()["rows"]}

    write_status(settings, MachineDriftStatus(machine_id="fan-1", drifted=True, score_shift=2.5, drifted_features=3))
    with serve_in_thread(create_app(settings, fitted_scorer())) as base:
        for seed in range(3):
            assert score(base, healthy_clip(seed), "fan-1")["is_anomaly"] is False
        assert score(base, healthy_clip(7), "pump-2")["is_anomaly"] is False
        browser.get(f"{base}/?refresh=0.5")
        wait = WebDriverWait(browser, 20)

        wait.until(lambda _: statuses() == {"fan-1": "ok", "pump-2": "ok"})
        page = snapshot()
        assert page["noAlarmsShown"] and page["alarms"] == [] and page["connection"] == "ok"
        assert {row["id"]: row["points"] for row in page["rows"]} == {"fan-1": 3, "pump-2": 1}
        assert "band-energy-test v1" in page["model"]
        drift = {row["id"]: (row["drifted"], row["drift"]) for row in page["rows"]}
        assert drift == {"fan-1": ("true", "drifted score shift 2.50 SD · 3 features"), "pump-2": (None, "not checked")}
        assert page["driftChecked"].startswith("drift checked ")

        verdicts = [score(base, faulty_clip(seed), "pump-2") for seed in (11, 12)]  # one alone raises no alarm
        assert [(v["is_anomaly"], v["state"]) for v in verdicts] == [(True, "ok"), (True, "alarm")]
        wait.until(lambda _: statuses().get("pump-2") == "alarm" and snapshot()["alarms"])
        page = snapshot()
        assert [machine for machine, _ in page["alarms"]] == ["pump-2"]
        assert "score level" in page["alarms"][0][1] and not page["noAlarmsShown"]
        rows = {row["id"]: row for row in page["rows"]}
        assert rows["pump-2"]["anomalyDots"] == 2 and rows["pump-2"]["points"] == 3
        assert rows["fan-1"]["status"] == "ok" and rows["fan-1"]["anomalyDots"] == 0


HEALTH_JS = """
return Object.fromEntries([...document.querySelectorAll('#machines tbody tr')].map((row) => {
  const cell = row.querySelector('td.health');
  const chart = cell.querySelector('svg.health-chart');
  return [row.dataset.machineId, {
    children: cell.children.length,
    alarm: cell.dataset.alarm || null,
    badge: cell.querySelector('.health-status') ? cell.querySelector('.health-status').textContent : null,
    points: chart ? chart.querySelector('polyline').getAttribute('points').trim().split(/\\s+/).length : 0,
    thresholdLine: chart ? chart.querySelectorAll('line.threshold').length : 0,
    alarmSpans: chart ? chart.querySelectorAll('rect.alarm-span').length : 0,
    rul: cell.querySelector('.rul') ? cell.querySelector('.rul').textContent : null,
  }];
}));
"""


def test_dashboard_plots_the_health_of_a_machine_with_a_prognosis(browser, settings: Settings, request) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    prognosis: Path = request.getfixturevalue("prognosis_csv")  # after ``browser``: no run written if it skips
    folder = settings.workdir / "prognostics"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(prognosis, folder / prognosis.name)
    with serve_in_thread(create_app(settings, fitted_scorer())) as base:
        score(base, healthy_clip(1), PROGNOSIS_MACHINE)
        score(base, healthy_clip(2), "fan-1")
        browser.get(f"{base}/?refresh=0.5")
        wait = WebDriverWait(browser, 20)
        wait.until(lambda _: browser.execute_script(HEALTH_JS).get(PROGNOSIS_MACHINE, {}).get("alarm"))
        page = browser.execute_script(HEALTH_JS)
        series = httpx.get(f"{base}/v1/machines/{PROGNOSIS_MACHINE}/health", timeout=30).json()["series"]
    plotted = sum(value is not None for value in series["smoothed"])  # the start-up snapshots have no index
    bearing = page[PROGNOSIS_MACHINE]
    assert bearing["alarm"] == "alarm" and bearing["badge"] == "health alarm"
    assert (
        100 <= plotted <= 120
        and bearing["points"] == plotted
        and bearing["thresholdLine"] == 1
        and bearing["alarmSpans"] >= 1
    )
    assert bearing["rul"].startswith("RUL ") and " h (" in bearing["rul"] and "alarm since" in bearing["rul"]
    assert page["fan-1"] == {  # no prognosis: nothing extra
        "children": 0,
        "alarm": None,
        "badge": None,
        "points": 0,
        "thresholdLine": 0,
        "alarmSpans": 0,
        "rul": None,
    }
