"""joblib's process pool (loky), results as they finish: the default on one machine.

A worker that dies (a job killed the process supervising it) breaks loky's whole pool. The session then starts
a new pool for the calls that returned nothing, one worker at a time, so a job that kills its worker again is
found alone and the jobs beside it are not counted against it (the runner stores a job that dies with its
process twice as failed, ``killed_run``). Calls still without a result after `MAX_RESTARTS` new pools are
yielded as `EngineError`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import as_completed
from typing import Any

from cowbench.launchers.base import EngineError, Launcher, Run, init_local_worker, register_launcher, run_identity

MAX_RESTARTS = 8


def _indexed(fn: Callable[[Any], Any], index: int, item: Any) -> tuple[int, Any]:
    return index, fn(item)


@contextlib.contextmanager
def _session(n_jobs: int = 1, scheduler: str | None = None) -> Iterator[Run]:
    from joblib import Parallel, delayed
    from joblib._parallel_backends import LokyBackend
    from joblib.externals.loky import get_reusable_executor
    from joblib.externals.loky.process_executor import BrokenProcessPool

    # every worker ends with the run from its start, even idle, even after a kill -9 of the run
    init = {"initializer": init_local_worker, "initargs": run_identity()}
    # one Parallel for the whole session: its workers (and their isolated children, which hold the imports
    # and the replicate cache) are reused by every call
    try:
        with Parallel(n_jobs=n_jobs, backend=LokyBackend(**init), return_as="generator_unordered") as parallel:
            def one_worker(calls: list[Any]) -> Iterator[tuple[int, Any]]:
                # loky itself with one worker process (a Parallel of one job would run in this process)
                executor = get_reusable_executor(max_workers=1, **init)
                futures = [executor.submit(f, *args, **kwargs) for f, args, kwargs in calls]
                for future in as_completed(futures):
                    yield future.result()

            def run(fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
                todo = dict(enumerate(items))
                pool, restarts = parallel, 0
                while todo:
                    try:
                        calls = [delayed(_indexed)(fn, i, item) for i, item in todo.items()]  # todo shrinks
                        for index, result in pool(calls):
                            del todo[index]
                            yield result
                    except BrokenProcessPool as exc:  # TerminatedWorkerError: a worker died, the pool with it
                        restarts += 1
                        if restarts > MAX_RESTARTS:
                            for item in todo.values():
                                yield EngineError(item, f"{type(exc).__name__}: worker processes kept dying")
                            return
                        get_reusable_executor().shutdown(wait=True, kill_workers=True)
                        pool = one_worker

            yield run
    finally:
        # loky keeps idle workers for minutes after the session, each holding an isolated child with torch
        # loaded (~400 MB): a CLI run that exits would leave them behind. End them with the session.
        get_reusable_executor().shutdown(wait=True, kill_workers=True)


register_launcher(Launcher("joblib", _session, doc="joblib (loky) worker processes on this machine"))
