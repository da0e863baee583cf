"""Alarm management in a real headless Chromium: a machine fed anomalous clips goes ok → warning → alarm, the
alarm shows in the table, the engineer acknowledges it, and normal clips clear it only after the reset delay."""

from __future__ import annotations

import importlib
from pathlib import Path

import httpx
import pytest
from alarm_clips import alarm_settings, mild_clip
from synthetic_machines import faulty_clip, fitted_scorer, healthy_clip
from test_dashboard_browser import score

from dashboard_polls import after_two_polls
from vibrasense.serving.app import create_app
from vibrasense.serving.server import serve_in_thread

pytestmark = pytest.mark.browser

PAGE_JS = """
const machines = Object.fromEntries([...document.querySelectorAll('#machines tbody tr')].map((row) => [
  row.dataset.machineId,
  {
    state: row.querySelector('.status').textContent,
    sensors: [...row.querySelectorAll('td.sensors .sensor')].map((s) => [s.dataset.sensor, s.dataset.state]),
  },
]));
const alarms = [...document.querySelectorAll('#alarms tbody tr')].map((row) => ({
  id: row.dataset.alarmId,
  machine: row.dataset.machineId,
  status: row.dataset.status,
  severity: row.querySelector('.severity').textContent,
  acknowledged: row.querySelector('.acknowledged').textContent,
  button: row.querySelector('button.ack') !== null,
}));
return {machines, alarms, updated: document.getElementById('updated').textContent};
"""


def test_an_engineer_sees_the_alarm_escalate_acknowledges_it_and_sees_it_clear(browser, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def page() -> dict:
        return browser.execute_script(PAGE_JS)

    def machine_state() -> str | None:
        return page()["machines"].get("pump-1", {}).get("state")

    importlib.import_module("vibrasense.store")  # Feast's import (the app's start-up) before the server's deadline
    with serve_in_thread(create_app(alarm_settings(tmp_path), fitted_scorer())) as base:
        score(base, healthy_clip(0), "pump-1")
        browser.get(f"{base}/?refresh=0.5")
        wait = WebDriverWait(browser, 20)
        wait.until(lambda _: machine_state() == "ok")
        assert page()["alarms"] == [] and page()["machines"]["pump-1"]["sensors"] == [["default", "ok"]]

        for seed in (1, 2):
            score(base, mild_clip(seed), "pump-1")
        wait.until(lambda _: machine_state() == "warning" and page()["alarms"])
        (warning,) = page()["alarms"]
        assert (warning["severity"], warning["status"], warning["button"]) == ("warning", "active", True)

        for seed in (3, 4):
            score(base, faulty_clip(seed), "pump-1")
        wait.until(lambda _: machine_state() == "alarm" and page()["alarms"][0]["severity"] == "alarm")
        (alarm,) = page()["alarms"]
        assert alarm["id"] == warning["id"] and alarm["status"] == "active"  # escalated, the same alarm

        button = browser.find_element(By.CSS_SELECTOR, "#alarms button.ack")
        # an unchanged alarm keeps its row: the button found before the refresh is still the one shown
        after_two_polls(page, wait)
        button.click()
        wait.until(lambda _: browser.find_element(By.ID, "credentials").get_attribute("open") is not None)
        browser.find_element(By.ID, "engineer").send_keys("ana")
        browser.find_element(By.ID, "api-key").send_keys("test-key")
        browser.find_element(By.ID, "credentials-ok").click()
        wait.until(lambda _: page()["alarms"][0]["status"] == "acknowledged")
        shown = page()["alarms"][0]
        assert shown["acknowledged"].startswith("ana, ") and not shown["button"]
        assert "test-key" in browser.execute_script("return sessionStorage.getItem('vibrasense.credentials')")
        stored = httpx.get(f"{base}/v1/alarms/{alarm['id']}", timeout=10).json()
        assert (stored["status"], stored["acknowledged_by"]) == ("acknowledged", "ana")

        score(base, healthy_clip(5), "pump-1")  # one normal clip: the reset delay needs three in a row
        shown = after_two_polls(page, wait)
        assert shown["machines"]["pump-1"]["state"] == "alarm" and shown["alarms"][0]["status"] == "acknowledged"

        for seed in (6, 7):
            score(base, healthy_clip(seed), "pump-1")
        wait.until(lambda _: machine_state() == "ok" and page()["alarms"][0]["status"] == "cleared")
        (cleared,) = page()["alarms"]
        assert cleared["id"] == alarm["id"] and not cleared["button"]
