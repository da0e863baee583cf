"""One exception family: every error a user can cause names the file or field and the fix."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote


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


class OutputError(VibrasenseError):
    """An output folder or file cannot be created or written; names it and why."""

    exit_code = 6


_URL_CREDENTIALS = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@'\"]*):(?P<password>[^\s/'\"]*)@")
_PASSWORD_PAIR = re.compile(
    r"(?P<head>\b(?:password|passwd|pwd)(?P<key_quote>['\"])?\s*(?(key_quote):|=)\s*)"
    r"(?:(?P<quote>['\"])(?P<quoted>.*?)(?P=quote)|(?P<bare>[^\s,;&'\"]+))",
    re.IGNORECASE,
)
REDACTED = "***"


def redact(text: object, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with every password hidden: in URLs (``scheme://user:***@host``), ``password=`` pairs, and ``secrets``.

    The one helper every message, log line and response that may name an address goes through; the known
    ``secrets`` are hidden as written and URL-quoted, wherever they appear.
    """
    shown = str(text)
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        shown = shown.replace(quote(secret, safe=""), REDACTED).replace(secret, REDACTED)
    shown = _URL_CREDENTIALS.sub(lambda m: f"{m['head']}:{REDACTED}@" if m["password"] else m[0], shown)
    return _PASSWORD_PAIR.sub(_hide_pair, shown)


def _hide_pair(match: re.Match[str]) -> str:
    quote_mark = match["quote"] or ""
    return f"{match['head']}{quote_mark}{REDACTED}{quote_mark}"
