"""``vibrasense serve``: the real-time scoring service under uvicorn."""

from __future__ import annotations

import logging

import typer

from vibrasense.cli.common import console, settings

log = logging.getLogger(__name__)


def register(app: typer.Typer) -> None:
    """Add the ``serve`` command."""
    app.command("serve")(serve)


def serve(
    host: str | None = typer.Option(None, help="Interface to listen on (serving.host)."),
    port: int | None = typer.Option(None, help="TCP port (serving.port)."),
    model_alias: str | None = typer.Option(None, help="Registry alias to serve (serving.model_alias)."),
    model_version: int | None = typer.Option(None, help="Registry version to serve; wins over the alias."),
    score_store_url: str | None = typer.Option(
        None, help="Where scores are recorded (SQLAlchemy URL; default sqlite:///<workdir>/scores.db)."
    ),
    access_log: bool = typer.Option(False, help="Log every request (Prometheus counts them anyway)."),
) -> None:
    """Load the champion model, warm it, and serve /v1/score, /v1/machines, /metrics and the dashboard.

    A model that cannot be loaded fails here, before the server starts; the app warms it when it starts.
    The API key for POST /v1/models/reload comes from serving.api_key (VIBRASENSE_SERVING__API_KEY), the keys
    that may score from serving.scoring_api_keys; client timeouts and limits from serving.* (see the README).
    Native thread pools run one thread per request thread (OMP_NUM_THREADS etc. default to 1).
    """
    from vibrasense.features.threads import single_thread_environment

    single_thread_environment()
    from vibrasense.errors import redact
    from vibrasense.serving.app import create_app
    from vibrasense.serving.model import load_registered_scorer
    from vibrasense.serving.server import serve as serve_app

    config = settings(
        serving={
            "host": host,
            "port": port,
            "model_alias": model_alias,
            "model_version": model_version,
            "score_store_url": score_store_url,
        }
    )
    with console.status("loading the model from the registry"):
        scorer = load_registered_scorer(config)
    console.print(
        f"serving [bold]{scorer.name}[/] v{scorer.version} on http://{config.serving.host}:{config.serving.port}"
        f" (dashboard at /, API docs at /docs); scores go to {redact(config.score_store_url)}",
        highlight=False,
    )
    serve_app(create_app(config, scorer), config, access_log=access_log)
