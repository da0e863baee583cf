"""The ``vibrasense`` command: one sub-command per stage of the pipeline."""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path

import typer

from vibrasense.cli.common import error_console, set_global_options
from vibrasense.errors import VibrasenseError, redact

NOISY_LOGGERS = ("feast", "mlflow", "lightning", "lightning.pytorch", "httpx", "alembic", "urllib3")

app = typer.Typer(
    name="vibrasense",
    help="Learn what healthy machines sound like, flag what does not, tell how far they have degraded.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _global_options(
    config: Path | None = typer.Option(
        None, "--config", "-c", help="YAML configuration file (default: ./vibrasense.yaml if present)."
    ),
    workdir: Path | None = typer.Option(None, "--workdir", "-w", help="Work directory (outputs, stores)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug messages."),
) -> None:
    """Options every command shares."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not verbose:
        quiet_libraries()
    set_global_options(config=config, workdir=workdir)


def quiet_libraries() -> None:
    """Keep the libraries' chatter (registry refreshes, tips, progress bars) out of the console."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*(noload|LeafSpec|CloudPickle|python_model).*")
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def _register_commands() -> None:
    from vibrasense.cli import demo, features, gateway, monitoring, pipeline, prognostics, serving, store, training

    features.register(app)
    gateway.register(app)
    monitoring.register(app)
    pipeline.register(app)
    prognostics.register(app)
    serving.register(app)
    store.register(app)
    training.register(app)
    demo.register(app)


_register_commands()


def main() -> None:
    """Entry point: runs the CLI and prints vibrasense errors without a traceback."""
    try:
        app()
    except VibrasenseError as error:
        error_console.print(f"[bold red]error:[/] {redact(error)}", highlight=False)
        sys.exit(error.exit_code)
