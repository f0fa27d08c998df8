"""Launchers: the engines that execute a list of independent calls. A registry, one module per engine.

A launcher opens a *session* (``with get_launcher(name).session(n_jobs, scheduler=...) as run:``) in which
``run(fn, items)`` yields ``fn(item)`` for every item, in any order. Workers write their own result files, so
resume and results do not depend on the launcher. When an engine loses an item without a result (a Dask worker
that died too often), it yields an `EngineError` for it instead, and the caller records the failure.

Isolation is not the engine's business: the runner hands each job to a persistent isolated child process
(`cowbench.isolation`) from inside whichever engine worker runs it, except under the ``inprocess`` launcher,
which runs everything in this process for debuggers. A new engine is one module that calls
`register_launcher`.
"""

from __future__ import annotations

# the built-in engines register themselves; dask and joblib are imported only when a session opens
from cowbench.launchers import dask_cluster, joblib_pool, serial  # noqa: F401
from cowbench.launchers.base import (
    _WATCHED,
    LAUNCHERS,
    WATCH_INTERVAL_S,
    EngineError,
    Launcher,
    Run,
    end_with_run,
    get_launcher,
    ignore_interrupts_in_worker,
    init_local_worker,
    launcher_names,
    process_start_time,
    register_launcher,
    run_identity,
    safe_import_path,
)

__all__ = ["LAUNCHERS", "WATCH_INTERVAL_S", "_WATCHED", "EngineError", "Launcher", "Run", "end_with_run",
           "get_launcher", "ignore_interrupts_in_worker", "init_local_worker", "launcher_names",
           "process_start_time", "register_launcher", "run_identity", "safe_import_path"]
