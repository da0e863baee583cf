"""Native thread pools (BLAS, OpenMP) limited to one thread, cheaply enough for every request.

``threadpoolctl.threadpool_limits`` scans the loaded libraries on every call (several ms: it reads
``/proc/self/maps``); the controller here scans once per process and is reused.
"""

from __future__ import annotations

import functools
from contextlib import AbstractContextManager

from threadpoolctl import ThreadpoolController


@functools.cache
def _controller() -> ThreadpoolController:
    return ThreadpoolController()


def one_native_thread() -> AbstractContextManager:
    """A context in which BLAS and OpenMP pools run on one thread (a clip is small; threads only contend)."""
    return _controller().limit(limits=1)
