"""Monitoring: Prometheus metrics of the scoring service, and drift of the scores it records."""
