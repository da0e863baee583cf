"""The live plant end to end, against the real Mosquitto and in a real headless Chromium: the simulator publishes a
pump that develops a bearing defect and is repaired; the gateway scores it; the engineer watches it go ok →
warning → alarm on the status topic and on the dashboard, acknowledges the alarm over the API, and sees it clear
only after the reset delay once the machine has recovered (hysteresis)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from mqtt_watch import SiteWatcher
from test_gateway import running_gateway

from dashboard_polls import after_two_polls
from vibrasense.config import Settings, load_settings
from vibrasense.gateway import AnomalySpan, Plant, Scenario, publish
from vibrasense.serving.app import create_app
from vibrasense.serving.model import load_registered_scorer
from vibrasense.serving.server import serve_in_thread
from vibrasense.signals.synthetic import PLANT_EPOCH

pytestmark = [pytest.mark.mqtt, pytest.mark.browser, pytest.mark.slow]

API_KEY = "plant-key"
FAILING = "pump_id_01"
DEFECT_AT_S, REPAIRED_AT_S = 6.0, 28.0
RESET_COUNT = 3
"""The reset delay the champion learned (``Delays`` default): consecutive snapshots below the reset level."""

PAGE_JS = """
const row = document.querySelector(`#machines tbody tr[data-machine-id="${arguments[0]}"]`);
const alarms = [...document.querySelectorAll('#alarms tbody tr')]
  .filter((tr) => tr.dataset.machineId === arguments[0])
  .map((tr) => ({id: tr.dataset.alarmId, status: tr.dataset.status,
                 severity: tr.querySelector('.severity').textContent}));
return {state: row ? row.querySelector('.status').textContent : null, alarms,
        updated: document.getElementById('updated').textContent};
"""


@pytest.fixture
def api_settings(gateway_settings: Settings, tmp_path: Path) -> Settings:
    """The API's settings: the gateway's registry and score store, a work directory of its own (its spool), and an
    API key so that the engineer can acknowledge over the API."""
    return load_settings(
        None,
        workdir=tmp_path / "api-work",
        tracking={"tracking_uri": gateway_settings.tracking.tracking_uri},
        serving={"score_store_url": gateway_settings.serving.score_store_url, "api_key": API_KEY},
        gateway=gateway_settings.gateway.model_dump(),
    )


class Dashboard:
    """The dashboard page of one machine, read in one script per look (the page re-renders on every poll)."""

    def __init__(self, browser, machine_id: str) -> None:
        from selenium.webdriver.support.ui import WebDriverWait

        self.browser, self.machine_id = browser, machine_id
        self.wait = WebDriverWait(browser, 30)

    def look(self) -> dict:
        return self.browser.execute_script(PAGE_JS, self.machine_id)

    def after_next_poll(self) -> dict:
        """The page once everything stored before the call shows (:func:`after_two_polls`)."""
        return after_two_polls(self.look, self.wait)


def collapsed(states: list[str | None]) -> list[str | None]:
    return [state for k, state in enumerate(states) if k == 0 or states[k - 1] != state]


def test_simulated_pump_alarms_on_topic_and_dashboard_is_acknowledged_and_clears_with_hysteresis(
    gateway_settings: Settings, api_settings: Settings, site: str, browser
) -> None:
    scenario = Scenario(
        site=site,
        sound_machines=2,
        duration_s=40,
        anomalies={FAILING: AnomalySpan("bearing", DEFECT_AT_S, REPAIRED_AT_S)},
        severity=2.0,
        ramp_s=16.0,
    )
    machines = scenario.sound_machines
    rounds: list[dict] = []  # per simulated second: the status topic's state and the dashboard's, after it
    acknowledged: list[str] = []

    with (
        SiteWatcher(site) as watcher,
        running_gateway(gateway_settings) as gateway,
        serve_in_thread(create_app(api_settings, load_registered_scorer(api_settings))) as api,
    ):
        browser.get(f"{api}/?refresh=0.5")
        page = Dashboard(browser, FAILING)

        def on_published(count: int) -> None:
            """After each simulated second: record both views of the pump; acknowledge its first alarm."""
            if count % machines:
                return
            watcher.wait(lambda: gateway.health()["handled"] >= count, 60, f"{count} messages handled")
            watcher.wait(lambda: len(watcher.statuses.get(FAILING, [])) >= count // machines, 30, "the status")
            gateway.service.store.wait_stored()
            shown = page.after_next_poll()
            status = watcher.statuses[FAILING][-1]
            acked = [a["acknowledged_by"] for a in status["active_alarms"] if a["acknowledged_by"]]
            rounds.append(
                {
                    "topic": status["state"],
                    "page": shown["state"],
                    "acknowledged_by": acked,
                    "score": status["sensors"]["mic"]["score"],
                }
            )
            if shown["state"] == "alarm" and not acknowledged:
                # the score's alarm (a rate-of-change warning on the rising trend may be open beside it)
                (alarm,) = [a for a in shown["alarms"] if a["status"] == "active" and a["severity"] == "alarm"]
                response = httpx.post(
                    f"{api}/v1/alarms/{alarm['id']}/ack", json={"by": "ana"}, headers={"X-API-Key": API_KEY}, timeout=10
                )
                assert response.status_code == 200, response.text
                acknowledged.append(alarm["id"])
                page.wait.until(lambda _: any(a["status"] == "acknowledged" for a in page.look()["alarms"]))

        plant = Plant(scenario, start=PLANT_EPOCH)
        published = publish(gateway_settings.gateway, plant, speed=0, on_published=on_published)
        assert published.messages == scenario.messages() == 80
        last = watcher.statuses[FAILING][-1]
        assert last["state"] == "ok" and not last["active_alarms"], last
        (alarm_id,) = acknowledged
        record = httpx.get(f"{api}/v1/alarms/{alarm_id}", timeout=10).json()

    assert len(rounds) == scenario.snapshots_per_sensor == 40
    topic, shown = [r["topic"] for r in rounds], [r["page"] for r in rounds]
    assert collapsed(topic) == ["ok", "warning", "alarm", "ok"], rounds
    assert shown == topic  # the dashboard shows what the status topic says, snapshot by snapshot
    assert "alarm" not in shown[: int(DEFECT_AT_S)]
    repaired = int(REPAIRED_AT_S)
    cleared = shown.index("ok", shown.index("alarm"))
    # hysteresis: the repaired machine stays in alarm until RESET_COUNT snapshots in a row are below the reset level
    assert cleared >= repaired + RESET_COUNT - 1, shown
    assert shown[repaired : repaired + RESET_COUNT - 1] == ["alarm"] * (RESET_COUNT - 1), shown
    # the gateway holds the alarm: the acknowledgement made in the API's process reaches its status topic
    assert ["ana"] in [r["acknowledged_by"] for r in rounds[cleared - RESET_COUNT : cleared]], rounds
    assert (record["status"], record["severity"], record["acknowledged_by"]) == ("cleared", "alarm", "ana")
