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
from cowbench.launchers import EngineError, Launcher, Run, register_launcher


@contextlib.contextmanager
def _session(n_jobs: int = 1, scheduler: str | None = None) -> Iterator[Run]:
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise InputError("--launcher dask needs dask.distributed: pip install 'cowbench[dask]'") from None
    cluster = None
    if scheduler:
        try:
            client = Client(scheduler, timeout="30s")
        except OSError as exc:
            raise InputError(f"cannot reach the Dask scheduler at {scheduler!r}: {exc}") from None
    else:
        # one thread per worker process: jobs pin their own threads, and the isolated child does the work
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
        client.close()
        if cluster is not None:
            cluster.close()


register_launcher(Launcher("dask", _session, remote=True,
                           doc="Dask distributed: --scheduler ADDRESS, or a LocalCluster of --jobs workers"))
