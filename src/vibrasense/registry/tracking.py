"""Where runs and models are tracked: MLflow on SQLite in the work directory, or PostgreSQL by config.

A PostgreSQL tracking store that cannot be reached fails in seconds with the fix, instead of MLflow's long
retries: the TCP connection is checked first.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import mlflow
from mlflow.tracking import MlflowClient

from vibrasense.config import Settings
from vibrasense.errors import StoreError

CONNECT_TIMEOUT_S = 3.0
ARTIFACTS_DIR = "mlartifacts"  # run artifacts, in the work directory


def tracking_client(settings: Settings) -> MlflowClient:
    """Point MLflow at the configured tracking and registry store and return a client for it."""
    uri = settings.tracking_uri
    check_reachable(uri)
    if uri.startswith("sqlite:///"):
        settings.workdir.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def check_reachable(uri: str) -> None:
    """Raise :class:`StoreError` when a server-backed tracking store does not accept TCP connections."""
    parts = urlsplit(uri)
    scheme = parts.scheme.split("+")[0]
    default_ports = {"postgresql": 5432, "postgres": 5432, "mysql": 3306, "http": 80, "https": 443}
    if scheme not in default_ports:
        return
    host = parts.hostname or "localhost"
    port = parts.port or default_ports[scheme]
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as error:
        shown = uri.replace(f"{parts.password}@", "***@") if parts.password else uri
        raise StoreError(
            f"tracking store {shown} is unreachable at {host}:{port} ({error}); start the server, or set "
            "tracking.tracking_uri (VIBRASENSE_TRACKING__TRACKING_URI) to a reachable store or leave it unset "
            "for SQLite in the work directory"
        ) from None


def experiment_id(client: MlflowClient, settings: Settings, name: str) -> str:
    """The id of experiment ``name``, created when missing with its artifacts in ``<workdir>/mlartifacts``.

    Without a location MLflow would put the artifacts in ``./mlruns`` of the current directory.
    """
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    artifacts = (settings.workdir.resolve() / ARTIFACTS_DIR).as_uri()
    return client.create_experiment(name, artifact_location=artifacts)
