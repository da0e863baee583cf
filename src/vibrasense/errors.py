"""One exception family: every error a user can cause names the file or field and the fix."""

from __future__ import annotations


class VibrasenseError(Exception):
    """Base of every error vibrasense raises on purpose; the CLI prints it without a traceback."""

    exit_code = 1


class ConfigError(VibrasenseError):
    """The configuration (file, environment variable or flag) is invalid."""

    exit_code = 2


class InputError(VibrasenseError):
    """A recording, folder or table cannot be used; names the source and the reason."""

    exit_code = 3

    def __init__(self, source: object, reason: str) -> None:
        self.source = str(source)
        self.reason = reason
        super().__init__(f"{self.source}: {reason}")


class LayoutError(InputError):
    """A path exists but no known dataset layout or recording format matches it."""


class StoreError(VibrasenseError):
    """A feature store, tracking store or score store cannot be used."""

    exit_code = 4


class ModelError(VibrasenseError):
    """A model cannot be found, trained, loaded or applied."""

    exit_code = 5
