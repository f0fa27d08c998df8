"""joblib's process pool (loky), results as they finish: the default on one machine."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from cowbench.launchers import Launcher, Run, register_launcher


@contextlib.contextmanager
def _session(n_jobs: int = 1, scheduler: str | None = None) -> Iterator[Run]:
    from joblib import Parallel, delayed

    # one Parallel for the whole session: its workers (and their isolated children, which hold the imports
    # and the replicate cache) are reused by every call
    try:
        with Parallel(n_jobs=n_jobs, return_as="generator_unordered") as parallel:
            def run(fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
                yield from parallel(delayed(fn)(i) for i in items)

            yield run
    finally:
        # loky keeps idle workers for minutes after the session, each holding an isolated child with torch
        # loaded (~400 MB): a CLI run that exits would leave them behind. End them with the session.
        from joblib.externals.loky import get_reusable_executor

        get_reusable_executor().shutdown(wait=True, kill_workers=True)


register_launcher(Launcher("joblib", _session, doc="joblib (loky) worker processes on this machine"))
