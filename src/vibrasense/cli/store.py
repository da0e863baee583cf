"""``vibrasense store init|apply|materialize|get|training-set``: the Feast feature store."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer
from rich.table import Table

from vibrasense.cli.common import console, settings
from vibrasense.errors import InputError

store_app = typer.Typer(help="The Feast feature store: offline Parquet, online SQLite/PostgreSQL/Redis.")

FEATURES_HELP = "Features folder or its features.parquet (default <workdir>/features)."


def register(app: typer.Typer) -> None:
    """Add the ``store`` group."""
    app.add_typer(store_app, name="store", no_args_is_help=True)


def _source(features: Path | None) -> Path | None:
    if features is None:
        return None
    return features / "features.parquet" if features.is_dir() else features


@store_app.command("init")
def init(features: Path | None = typer.Option(None, "--features", "-f", help=FEATURES_HELP)) -> None:
    """Write the Feast repository (feature_store.yaml and definitions) into <workdir>/feature_repo."""
    from vibrasense.store import write_repo

    root = write_repo(settings(), _source(features))
    console.print(f"feature repository written to {root} (Feast CLI: `feast -c {root} plan`)", highlight=False)


@store_app.command("apply")
def apply(features: Path | None = typer.Option(None, "--features", "-f", help=FEATURES_HELP)) -> None:
    """Regenerate the repository from the configuration and register its definitions."""
    from vibrasense.store import apply as apply_definitions
    from vibrasense.store import write_repo

    config = settings()
    write_repo(config, _source(features))
    names = apply_definitions(config)
    console.print(f"applied {len(names)} definitions: {', '.join(names)}", highlight=False)


@store_app.command("materialize")
def materialize(
    start: datetime | None = typer.Option(None, help="Start of the event-time range (default: incremental)."),
    end: datetime | None = typer.Option(None, help="End of the event-time range (default: now)."),
) -> None:
    """Load the latest features of every machine into the online store (incremental since the last run)."""
    from vibrasense.store import materialize as load_online

    result = load_online(settings(), start, end)
    console.print(
        f"materialised {result.rows} rows of {result.machines} machines ({result.start:%Y-%m-%d %H:%M:%S} to "
        f"{result.end:%Y-%m-%d %H:%M:%S} UTC) in {result.seconds:.2f} s",
        highlight=False,
    )


@store_app.command("get")
def get(machine_id: str = typer.Argument(..., help="The machine whose latest online features to show.")) -> None:
    """Show a machine's latest online features; exits 1 when it has none yet."""
    from vibrasense.store import OnlineFeatureClient

    features = OnlineFeatureClient(settings()).get(machine_id)
    if features is None:
        console.print(
            f"no features for machine {machine_id!r} in the online store (run `vibrasense store materialize`)"
        )
        raise typer.Exit(1)
    table = Table("feature", "value")
    for name, value in features.items():
        table.add_row(name, f"{value:.6g}" if isinstance(value, float) else str(value))
    console.print(table)


@store_app.command("training-set")
def training_set(
    entities: Path = typer.Argument(
        ..., help="CSV or Parquet with machine_id, event_timestamp (and any extra columns)."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output Parquet file."),
    service: str = typer.Option("detector_features", help="Feature service to retrieve."),
) -> None:
    """Point-in-time training set: each row gets the features as they were at its timestamp."""
    import pandas as pd

    from vibrasense.store import build_training_set

    if not entities.is_file():
        raise InputError(str(entities), "the entity file does not exist")
    try:
        frame = pd.read_parquet(entities) if entities.suffix == ".parquet" else pd.read_csv(entities)
    except Exception as error:
        raise InputError(str(entities), f"not a readable CSV or Parquet file ({error})") from None
    result = build_training_set(settings(), frame, service)
    out.parent.mkdir(parents=True, exist_ok=True)
    result.to_parquet(out, index=False)
    console.print(f"{len(result)} rows x {result.shape[1]} columns written to {out}", highlight=False)
