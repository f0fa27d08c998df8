"""Dask distributed: an existing cluster (``--scheduler ADDRESS``) or a `LocalCluster` started for the run.

On a cluster, every worker must import the same cowbench version (and the ``--plugins`` files at the same
paths) and see the results directory at the same path: workers write the job files themselves.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from cowbench.errors import InputError
from cowbench.launchers.base import EngineError, Launcher, Run, register_launcher

CONNECT_TIMEOUT = "30s"  # how long an existing scheduler (--scheduler) may take to answer


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def _session(n_jobs: int = 1, scheduler: str | None = None) -> Iterator[Run]:
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise InputError("--launcher dask needs dask.distributed: pip install 'cowbench[dask]'") from None
    cluster = None
    if scheduler:
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT)
        except OSError as exc:
            raise InputError(f"cannot reach the Dask scheduler at {scheduler!r}: {exc}") from None
    else:
        # one thread per worker process: jobs pin their own threads, and the isolated child does the work.
        # The worker processes are started with SIGINT ignored (a disposition they keep through exec): a Ctrl-C
        # at the terminal reaches the whole process group, and only the run must answer it, in one line
        with _sigint_ignored():
            cluster = LocalCluster(n_workers=n_jobs, threads_per_worker=1, processes=True, dashboard_address=None,
                                   silence_logs=logging.ERROR)
        client = Client(cluster)
    try:
        def run(fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
            items = list(items)
            futures = client.map(fn, items, pure=False)
            item_of = {f.key: item for f, item in zip(futures, items, strict=True)}
            for future in as_completed(futures):
                try:
                    yield future.result()
                except Exception as exc:  # e.g. KilledWorker: the engine gave up on this item
                    yield EngineError(item_of[future.key], f"{type(exc).__name__}: {exc}")

        yield run
    finally:
        with _quiet_close():
            client.close()
            if cluster is not None:
                cluster.close()


@contextlib.contextmanager
def _quiet_close() -> Iterator[None]:
    """Close the client and cluster without their shutdown chatter (a Ctrl-C ends with the run's one line)."""
    import logging

    loggers = [logging.getLogger(name) for name in ("distributed", "tornado", "asyncio")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    except Exception:  # a failing close after the results are in must not replace the run's outcome
        pass
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


register_launcher(Launcher("dask", _session, remote=True,
                           doc="Dask distributed: --scheduler ADDRESS, or a LocalCluster of --jobs workers"))
