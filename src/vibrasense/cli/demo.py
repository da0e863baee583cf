"""``vibrasense demo``: the main job end to end on a synthetic plant."""

from __future__ import annotations

import typer

from vibrasense.cli.common import console, settings


def register(app: typer.Typer) -> None:
    """Add the ``demo`` command."""
    app.command("demo")(demo)


def demo() -> None:
    """Generate a synthetic plant and run every stage on it with the embedded defaults."""
    from vibrasense.pipelines.demo import run_demo

    run_demo(settings(), console)
