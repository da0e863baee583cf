"""``python -m vibrasense`` runs the CLI."""

from vibrasense.cli import main

main()
