"""One job after another: ``serial`` (in one isolated child process) and ``inprocess`` (for debuggers)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from cowbench.launchers.base import Launcher, Run, register_launcher


def _run(fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
    for item in items:
        yield fn(item)


@contextlib.contextmanager
def _session(n_jobs: int = 1, scheduler: str | None = None) -> Iterator[Run]:
    yield _run


register_launcher(Launcher(
    "serial", _session, isolates=True,
    doc="one job at a time in one isolated worker process (time limit, a dying job fails alone)"))
register_launcher(Launcher(
    "inprocess", _session, isolates=False,
    doc="one job at a time in this process, no isolation and no time limit: for pdb and profilers"))
