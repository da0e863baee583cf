"""The container stack for real: build the images, `docker compose up --wait`, score a recording through the API
container with a scoring key, find the score in PostgreSQL and the metric in Prometheus, run the pipeline job once,
then `down -v`. Needs a Docker engine with Compose v2 (scripts/docker-up.sh sets one up); skips without one, and
fails instead when VIBRASENSE_REQUIRE_DOCKER=1 (CI). Prints the build and start times it measured."""

from __future__ import annotations

import io
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import soundfile as sf

from vibrasense.serving.server import free_port
from vibrasense.signals.synthetic import machine_sound

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "vibrasense-test"
MACHINE = "deploy-test-pump"
pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(3600)]


def _docker_problem() -> str | None:
    """Why the stack cannot run here, or None."""
    if shutil.which("docker") is None:
        return "no docker CLI (run scripts/docker-up.sh)"
    for command in (["docker", "info"], ["docker", "compose", "version"]):
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=30)
        except subprocess.TimeoutExpired:
            return f"`{' '.join(command)}` did not answer in 30 s"
        if result.returncode != 0:
            return f"`{' '.join(command)}` failed (run scripts/docker-up.sh): {result.stderr.strip()[:300]}"
    return None


@dataclass
class Stack:
    """The running test stack: its compose environment, published ports and the times measured."""

    env: dict[str, str]
    ports: dict[str, int]
    times: dict[str, float] = field(default_factory=dict)

    def compose(self, *args: str, timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["docker", "compose", *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"docker compose {' '.join(args)} failed:\n{result.stdout[-4000:]}{result.stderr[-4000:]}"
            )
        return result

    def url(self, service: str, path: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}{path}"


@pytest.fixture(scope="module")
def stack(request: pytest.FixtureRequest) -> Iterator[Stack]:
    problem = _docker_problem()
    if problem is not None:
        if os.environ.get("VIBRASENSE_REQUIRE_DOCKER", "") not in ("", "0"):
            pytest.fail(f"VIBRASENSE_REQUIRE_DOCKER is set but {problem}")
        pytest.skip(problem)
    ports = {name: free_port() for name in ("api", "mlflow", "prometheus", "alertmanager")}
    env = os.environ | {
        "COMPOSE_PROJECT_NAME": PROJECT,
        "POSTGRES_PASSWORD": secrets.token_urlsafe(16),
        "REDIS_PASSWORD": secrets.token_urlsafe(16),
        "VIBRASENSE_RELOAD_API_KEY": secrets.token_urlsafe(16),
        "VIBRASENSE_SCORING_API_KEYS": f"{secrets.token_urlsafe(16)},{secrets.token_urlsafe(16)}",
        "VIBRASENSE_TRAINING_EPOCHS": "3",
        **{f"VIBRASENSE_{name.upper()}_PORT": str(port) for name, port in ports.items()},
    }
    running = Stack(env, ports)
    report = request.config.pluginmanager.get_plugin("terminalreporter")
    try:
        started = time.monotonic()
        running.compose("build", timeout=3000)
        running.times["build"] = time.monotonic() - started
        started = time.monotonic()
        running.compose("up", "--detach", "--wait", "--wait-timeout", "1200", timeout=1500)
        running.times["up --wait"] = time.monotonic() - started
        yield running
    except AssertionError:
        logs = running.compose("logs", "--no-color", "--tail", "60", check=False)
        raise AssertionError(logs.stdout[-12000:]) from None
    finally:
        started = time.monotonic()
        running.compose("down", "--volumes", "--remove-orphans", timeout=300, check=False)
        running.times["down -v"] = time.monotonic() - started
        if report is not None:
            report.write_line("compose stack times: " + ", ".join(f"{k} {v:.0f} s" for k, v in running.times.items()))


def _clip() -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, machine_sound(4.0, 16_000, 0, None, 11, clip=0), 16_000, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def test_a_score_goes_through_the_api_into_postgres_and_prometheus(stack: Stack) -> None:
    key = stack.env["VIBRASENSE_SCORING_API_KEYS"].split(",")[1]
    files = {"file": ("clip.wav", _clip(), "audio/wav")}
    refused = httpx.post(stack.url("api", "/v1/score/file"), files=files, data={"machine_id": MACHINE}, timeout=60)
    assert refused.status_code == 401, refused.text
    scored = httpx.post(
        stack.url("api", "/v1/score/file"),
        files={"file": ("clip.wav", _clip(), "audio/wav")},
        data={"machine_id": MACHINE},
        headers={"X-API-Key": key},
        timeout=60,
    )
    assert scored.status_code == 200, scored.text
    assert scored.json()["machine_id"] == MACHINE

    query = f"SELECT count(*), max(model_name) FROM scores WHERE machine_id = '{MACHINE}'"
    for _ in range(30):  # scores are written behind the answer (a queue, then the store)
        rows = stack.compose("exec", "-T", "postgres", "psql", "-U", "postgres", "-d", "vibrasense", "-tAc", query)
        count, model = rows.stdout.strip().split("|")
        if int(count) >= 1:
            break
        time.sleep(1)
    assert int(count) == 1 and model, rows.stdout

    promql = f'vibrasense_scores_total{{machine_id="{MACHINE}"}}'
    for _ in range(60):  # scraped every 5 s
        result = httpx.get(stack.url("prometheus", "/api/v1/query"), params={"query": promql}, timeout=10).json()
        if result["data"]["result"]:
            break
        time.sleep(2)
    assert float(result["data"]["result"][0]["value"][1]) == 1.0, result


def test_prometheus_loads_the_alert_rules_and_alertmanager_runs(stack: Stack) -> None:
    check = stack.compose("run", "--rm", "--no-deps", "--entrypoint", "promtool", "prometheus", "check", "rules",
                          "/etc/prometheus/rules/vibrasense.yml")  # fmt: skip
    assert "SUCCESS" in check.stdout + check.stderr
    groups = httpx.get(stack.url("prometheus", "/api/v1/rules"), timeout=10).json()["data"]["groups"]
    alerts = {rule["name"] for group in groups for rule in group["rules"]}
    assert {"MachineInAlarm", "DriftDetected", "ModelMissing", "HighErrorRate"} <= alerts
    targets = httpx.get(stack.url("prometheus", "/api/v1/targets"), timeout=10).json()["data"]["activeTargets"]
    assert {t["labels"]["job"]: t["health"] for t in targets}["vibrasense-api"] in ("up", "unknown")
    assert httpx.get(stack.url("alertmanager", "/-/ready"), timeout=10).status_code == 200


def test_the_pipeline_job_runs_again_and_tells_the_api(stack: Stack) -> None:
    started = time.monotonic()
    run = stack.compose("run", "--rm", "-e", "VIBRASENSE_PIPELINE__SERVICE_URL=http://api:8000", "pipeline", "--force")
    stack.times["pipeline run"] = time.monotonic() - started
    assert "finished" in run.stdout, run.stdout
    model = httpx.get(stack.url("api", "/v1/model"), timeout=10)
    assert model.status_code == 200 and model.json()["name"], model.text
