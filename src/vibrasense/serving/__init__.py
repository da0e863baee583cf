"""The real-time scoring service: FastAPI app, request decoding, the score store and the dashboard."""
