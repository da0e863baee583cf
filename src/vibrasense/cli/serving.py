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
    The API key for POST /v1/models/reload comes from serving.api_key (VIBRASENSE_SERVING__API_KEY).
    Native thread pools run one thread per request thread (OMP_NUM_THREADS etc. default to 1).
    """
    from vibrasense.features.threads import single_thread_environment

    single_thread_environment()
    import uvicorn

    from vibrasense.serving.app import create_app
    from vibrasense.serving.model import load_registered_scorer

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
        f" (dashboard at /, API docs at /docs); scores go to "
        f"{config.score_store_url.split('@')[-1]}",
        highlight=False,
    )
    uvicorn.run(
        create_app(config, scorer),
        host=config.serving.host,
        port=config.serving.port,
        access_log=access_log,
        log_level="info",
    )
