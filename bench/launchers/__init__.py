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

from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from cowbench.errors import InputError

Run = Callable[[Callable[[Any], Any], Iterable[Any]], Iterator[Any]]


@dataclass(frozen=True)
class EngineError:
    """An item the engine could not run (its result is missing), with the engine's message."""

    item: Any
    message: str


@dataclass(frozen=True)
class Launcher:
    """A registered engine.

    Attributes
    ----------
    name : str
        The ``--launcher`` value.
    session : callable
        ``session(n_jobs, scheduler=None)``: a context manager giving ``run(fn, items)``.
    isolates : bool
        Whether the runner runs each job in an isolated child process (time limit, deaths recorded).
    remote : bool
        Whether it accepts ``--scheduler`` (the address of an existing cluster).
    doc : str
        One line for ``--help``.
    """

    name: str
    session: Callable[..., AbstractContextManager[Run]]
    isolates: bool = True
    remote: bool = False
    doc: str = ""


LAUNCHERS: dict[str, Launcher] = {}


def register_launcher(launcher: Launcher) -> Launcher:
    if launcher.name in LAUNCHERS:
        raise ValueError(f"launcher {launcher.name!r} is already registered")
    LAUNCHERS[launcher.name] = launcher
    return launcher


def get_launcher(name: str) -> Launcher:
    """The launcher called ``name``; `InputError` naming the allowed ones otherwise."""
    if name not in LAUNCHERS:
        raise InputError(f"unknown launcher {name!r}; allowed: {', '.join(LAUNCHERS)}")
    return LAUNCHERS[name]


def launcher_names() -> list[str]:
    return list(LAUNCHERS)


# the built-in engines register themselves; dask and joblib are imported only when a session opens
from cowbench.launchers import dask_cluster, joblib_pool, serial  # noqa: E402, F401
