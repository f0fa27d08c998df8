"""Launchers: how a list of independent calls is executed. Workers write their own result files.

Each launcher takes ``(fn, items, n_jobs)`` and yields ``fn(item)`` results in any order; resume and
results do not depend on the launcher, because every job is keyed by its id and stored by the worker.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from cowbench.errors import InputError


def serial(fn: Callable[[Any], Any], items: Iterable[Any], n_jobs: int) -> Iterator[Any]:
    """In this process, one after another (the one to use under a debugger)."""
    for item in items:
        yield fn(item)


def joblib_processes(fn: Callable[[Any], Any], items: Iterable[Any], n_jobs: int) -> Iterator[Any]:
    """joblib's process pool (loky), results as they finish."""
    from joblib import Parallel, delayed

    yield from Parallel(n_jobs=n_jobs, return_as="generator_unordered")(delayed(fn)(i) for i in items)


LAUNCHERS: dict[str, Callable[..., Iterator[Any]]] = {"serial": serial, "joblib": joblib_processes}


def get_launcher(name: str) -> Callable[..., Iterator[Any]]:
    if name not in LAUNCHERS:
        raise InputError(f"unknown launcher {name!r}; allowed: {', '.join(LAUNCHERS)}")
    return LAUNCHERS[name]
