"""Native thread pools (BLAS, OpenMP, torch) on one thread: per block in one process, or once per process.

Parallelism comes from workers (processes, Dask workers, the service's request threads) and a clip is
small: intra-op threads would only fight over the cores, and one thread gives bit-identical results
wherever a batch runs. Changing the pools from concurrent threads races, so a worker process or a
service calls :func:`limit_process_threads` once (initialiser, start-up); a single-threaded caller may
use the :func:`one_native_thread` block instead. ``threadpoolctl`` scans the loaded libraries when its
controller is built (several ms), so the controller is built once per process.
"""

from __future__ import annotations

import functools
import os
import sys
from contextlib import AbstractContextManager

from threadpoolctl import ThreadpoolController


@functools.cache
def _controller() -> ThreadpoolController:
    return ThreadpoolController()


def one_native_thread() -> AbstractContextManager:
    """A block in which BLAS and OpenMP pools run on one thread (for a single-threaded caller)."""
    return _controller().limit(limits=1)


def limit_process_threads() -> None:
    """BLAS/OpenMP pools and (if loaded) torch on one thread for the rest of the process; idempotent.

    Call it again after loading a model that imports torch (a reload), from one thread.
    """
    _controller().limit(limits=1)
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != 1:
        torch.set_num_threads(1)


THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def single_thread_environment() -> None:
    """Default the native libraries to one thread through the environment, for every thread of the process.

    Effective only before numpy, torch and friends load (OpenMP reads it at start-up; a limit set later
    holds only in the thread that sets it): a server entry point calls it first. Values already set win.
    """
    for name in THREAD_VARIABLES:
        os.environ.setdefault(name, "1")
