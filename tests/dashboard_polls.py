"""What the browser tests share about the dashboard's polling: its ``#updated`` stamp changes on every poll."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def after_two_polls(look: Callable[[], dict], wait: Any) -> dict:
    """The page (``look()``, which holds ``updated``) two polls later: the second poll began after the call, so
    the page shows everything stored before it. ``wait`` is a selenium ``WebDriverWait``."""
    for _ in range(2):
        before = look()["updated"]
        wait.until(lambda _, before=before: look()["updated"] != before)
    return look()
