"""End-to-end runs: the demo, Dask scale-out, scheduled retraining."""
