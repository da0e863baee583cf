"""Where runs and models are tracked: MLflow on SQLite in the work directory, or PostgreSQL by config.

A server-backed tracking store that cannot be used fails in seconds with the fix, instead of after MLflow's
retries (its SQL store retries creating its engine ten times, about 100 s, whatever the cause; its
``MLFLOW_HTTP_REQUEST_*`` settings cover only HTTP servers): the TCP connection is checked first, then a
database one with a short connect and statement timeout, so a wrong password or a missing database is named
at once. Every message shows the URI with its password hidden.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import mlflow
from mlflow.tracking import MlflowClient

from vibrasense.config import Settings
from vibrasense.errors import StoreError, redact

CONNECT_TIMEOUT_S = 3.0
ARTIFACTS_DIR = "mlartifacts"  # run artifacts, in the work directory
_DEFAULT_PORTS = {"postgresql": 5432, "postgres": 5432, "mysql": 3306, "http": 80, "https": 443}
_FIX = (
    "set tracking.tracking_uri (VIBRASENSE_TRACKING__TRACKING_URI) to a usable store, or leave it unset for "
    "SQLite in the work directory"
)


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
    """Raise :class:`StoreError` when a server-backed tracking store refuses connections or logins."""
    parts = urlsplit(uri)
    scheme = parts.scheme.split("+")[0]
    if scheme not in _DEFAULT_PORTS:
        return
    host = parts.hostname or "localhost"
    port = parts.port or _DEFAULT_PORTS[scheme]
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as error:
        raise StoreError(
            redact(f"tracking store {uri} is unreachable at {host}:{port} ({error}); start the server, or {_FIX}")
        ) from None
    if scheme in ("postgresql", "postgres", "mysql"):
        _check_database(uri)


def _check_database(uri: str) -> None:
    """Log in and run ``SELECT 1`` within :data:`CONNECT_TIMEOUT_S`, as MLflow's engine would, but once."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError
    from sqlalchemy.pool import NullPool

    try:
        url = make_url(uri)
        timeout = int(CONNECT_TIMEOUT_S)
        if url.get_backend_name() == "postgresql":
            if url.drivername in ("postgresql", "postgres"):
                url = url.set(drivername="postgresql+psycopg")  # the driver installed with vibrasense
            arguments = {"connect_timeout": timeout, "options": f"-c statement_timeout={timeout * 1000}"}
        else:
            arguments = {"connect_timeout": timeout}
        engine = create_engine(url, poolclass=NullPool, connect_args=arguments)
    except (ArgumentError, ImportError, ValueError) as error:
        raise StoreError(redact(f"tracking store {uri} is not a usable URI ({error}); {_FIX}")) from None
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as error:
        reason = " ".join(str(getattr(error, "orig", None) or error).split())[:300]
        raise StoreError(redact(f"tracking store {uri} refuses the connection: {reason}; {_FIX}")) from None
    finally:
        engine.dispose()


def experiment_id(client: MlflowClient, settings: Settings, name: str) -> str:
    """The id of experiment ``name``, created when missing with its artifacts in ``<workdir>/mlartifacts``.

    Without a location MLflow would put the artifacts in ``./mlruns`` of the current directory.
    """
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    artifacts = (settings.workdir.resolve() / ARTIFACTS_DIR).as_uri()
    return client.create_experiment(name, artifact_location=artifacts)
