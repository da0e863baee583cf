"""The real-time scoring service: the scoring service itself (no HTTP), its FastAPI app, the score store,
its Prometheus metrics and the dashboard."""
