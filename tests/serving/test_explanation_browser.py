"""The dashboard draws what drove a real scored clip, in a real headless Chromium: a bar and a normal range per top
feature of a tabular model; the log-mel with the error over it, cell by cell, for an autoencoder."""

from __future__ import annotations

import httpx
import pytest
from explained_models import autoencoder_scorer, tabular_scorer
from synthetic_machines import faulty_clip, healthy_clip, wav_bytes

from vibrasense.config import Settings
from vibrasense.serving.app import create_app
from vibrasense.serving.server import serve_in_thread

pytestmark = pytest.mark.browser

PICTURE_JS = """
const picture = document.getElementById('explanation-picture');
const count = (selector) => picture.querySelectorAll(selector).length;
return {
  kind: picture.dataset.kind || null,
  scoreId: picture.dataset.scoreId || null,
  bars: count('svg.contributions rect.contribution-bar'),
  ranges: count('svg.contributions rect.normal-range'),
  values: count('svg.contributions circle.feature-value'),
  firstLabel: (picture.querySelector('svg.contributions text') || {}).textContent || null,
  logmelCells: count('svg.spectrogram rect.logmel-cell'),
  errorCells: count('svg.spectrogram rect.error-cell'),
  spans: count('svg.spectrogram rect.time-span'),
  bands: count('ul.worst-bands li'),
  status: document.getElementById('explanation-status').textContent,
  selected: [...document.querySelectorAll('#machines tbody tr.selected')].map((row) => row.dataset.machineId),
};
"""


CLICK_JS = """
const cell = document.querySelector(`#machines tbody tr[data-machine-id="${arguments[0]}"] td`);
if (cell) cell.click();
return Boolean(cell);
"""


def score(base: str, samples, machine: str, **params: str) -> dict:
    response = httpx.post(
        f"{base}/v1/score/file",
        params=params,
        files={"file": ("clip.wav", wav_bytes(samples), "audio/wav")},
        data={"machine_id": machine},
        timeout=60,
    )
    response.raise_for_status()
    return response.json()


def test_clicking_a_machine_draws_its_top_feature_contributions(browser, settings: Settings) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    with serve_in_thread(create_app(settings, tabular_scorer(settings))) as base:
        score(base, healthy_clip(1), "fan-1")
        verdict = score(base, faulty_clip(7), "pump-2")
        browser.get(f"{base}/?refresh=0.5")
        wait = WebDriverWait(browser, 30)
        wait.until(lambda _: browser.execute_script(CLICK_JS, "pump-2"))  # one script: the table re-renders each poll
        wait.until(lambda _: browser.execute_script(PICTURE_JS)["scoreId"] == verdict["score_id"])
        page = browser.execute_script(PICTURE_JS)
    contributions = verdict["explanation"]["contributions"]
    assert page["kind"] == "features" and page["selected"] == ["pump-2"]
    assert page["bars"] == page["ranges"] == page["values"] == len(contributions) == 8
    assert page["firstLabel"] == contributions[0]["feature"]
    assert page["status"].startswith(verdict["explanation"]["summary"]) and page["logmelCells"] == 0


def test_an_autoencoder_explanation_is_a_spectrogram_with_the_error_over_it(browser, settings: Settings) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    with serve_in_thread(create_app(settings, autoencoder_scorer(settings))) as base:
        verdict = score(base, faulty_clip(8), "fan-9", explain="true")
        score(base, faulty_clip(9), "fan-9")  # not explained: the picture stays the explained one
        browser.get(f"{base}/?refresh=0.5&machine=fan-9")
        wait = WebDriverWait(browser, 30)
        wait.until(lambda _: browser.execute_script(PICTURE_JS)["kind"] == "spectrogram")
        page = browser.execute_script(PICTURE_JS)
    grid = verdict["explanation"]["error_map"]
    cells = len(grid["error"]) * len(grid["error"][0])
    assert cells == 32 * 32 and page["logmelCells"] == page["errorCells"] == cells
    assert page["spans"] == 1 and page["bands"] == 5 and page["bars"] == 0
    assert page["scoreId"] == verdict["score_id"] and page["selected"] == ["fan-9"]
