"""Prometheus metrics of the scoring service."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from vibrasense.serving.metrics import OTHER_MACHINES, ServingMetrics


def samples(metrics: ServingMetrics) -> dict[tuple[str, tuple], float]:
    payload, content_type = metrics.exposition()
    assert content_type.startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(payload.decode())
        for s in family.samples
    }


def test_scores_and_anomalies_are_counted_per_machine() -> None:
    metrics = ServingMetrics()
    metrics.observe_score("fan-1", False, 0.004)
    metrics.observe_score("fan-1", True, 0.012)
    metrics.observe_score("pump-2", False, 0.030)
    values = samples(metrics)
    assert values[("vibrasense_scores_total", (("machine_id", "fan-1"),))] == 2
    assert values[("vibrasense_anomalies_total", (("machine_id", "fan-1"),))] == 1
    assert ("vibrasense_anomalies_total", (("machine_id", "pump-2"),)) not in values
    assert values[("vibrasense_scoring_duration_seconds_count", ())] == 3
    assert values[("vibrasense_scoring_duration_seconds_bucket", (("le", "0.015"),))] == 2


def test_machine_labels_are_capped() -> None:
    metrics = ServingMetrics(max_machine_labels=2)
    for machine in ("a", "b", "c", "d", "a"):
        metrics.observe_score(machine, True, 0.001)
    values = samples(metrics)
    assert values[("vibrasense_scores_total", (("machine_id", "a"),))] == 2
    assert values[("vibrasense_scores_total", (("machine_id", OTHER_MACHINES),))] == 2
    assert ("vibrasense_scores_total", (("machine_id", "c"),)) not in values


def test_only_the_current_model_is_reported() -> None:
    metrics = ServingMetrics()
    metrics.set_model("detector", "3")
    metrics.set_model("detector", "4")
    values = samples(metrics)
    assert values[("vibrasense_model_info", (("name", "detector"), ("version", "4")))] == 1
    assert ("vibrasense_model_info", (("name", "detector"), ("version", "3"))) not in values


def test_two_apps_in_one_process_do_not_share_or_clash() -> None:
    first, second = ServingMetrics(), ServingMetrics()
    first.requests.labels("/v1/score", "POST", "200").inc()
    key = (
        "vibrasense_http_requests_total",
        (("endpoint", "/v1/score"), ("method", "POST"), ("status", "200")),
    )
    assert samples(first)[key] == 1 and key not in samples(second)


def test_refused_recordings_are_counted_by_the_name_of_their_field() -> None:
    metrics = ServingMetrics()
    for field in ("samples", "recordings[2].samples", "files[1]", "machine_id[0]"):
        metrics.reject(field)
    values = samples(metrics)
    assert values[("vibrasense_rejected_recordings_total", (("field", "samples"),))] == 2
    assert values[("vibrasense_rejected_recordings_total", (("field", "files"),))] == 1
    assert values[("vibrasense_rejected_recordings_total", (("field", "machine_id"),))] == 1
