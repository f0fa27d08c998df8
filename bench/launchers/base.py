"""The launcher registry and what every engine shares: `Launcher`, `register_launcher`, the worker helpers.

Below the engines (one module each), which register themselves here; `cowbench.launchers` re-exports it all.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
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
    bundles : bool
        Whether its ``run`` also takes ``group=key``: a function of an item, whose items may run together, in
        their order, in one engine task (the result of each is still yielded when it ends). Results of grouped
        calls must be plain data (str, numbers, lists, dicts, tuples of them).
    doc : str
        One line for ``--help``.
    """

    name: str
    session: Callable[..., AbstractContextManager[Run]]
    isolates: bool = True
    remote: bool = False
    bundles: bool = False
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


# -- process hygiene shared by the engines ----------------------------------------------------------------


def process_start_time(pid: int) -> str | None:
    """The start time of process ``pid`` (clock ticks since boot, from ``/proc``), or None if it is gone, a
    zombie, or ``/proc`` is not there. With the pid it names a process for good (pids are reused)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if fields[0] in (b"Z", b"X"):  # dead, not yet reaped by its parent: gone for our purpose
        return None
    return fields[19].decode()  # field 22 of stat; fields here start at field 3


def run_identity() -> tuple[int, str | None]:
    """(pid, start time) of this process: what workers watch to end with the run."""
    return os.getpid(), process_start_time(os.getpid())


_WATCHED: set[tuple[int, str]] = set()
WATCH_INTERVAL_S = 0.5


def end_with_run(run_pid: int, run_start: str | None, *, local: bool = False) -> None:
    """In an engine worker: end this process (and so, by their parent-death signal, its isolated children) as
    soon as the run that started it is gone, even after a ``kill -9`` of the run.

    A daemon thread polls the run's process every `WATCH_INTERVAL_S` seconds. A no-op in the run's own process,
    when the run is not visible from here (a remote Dask worker, another pid namespace), or when already
    watching. ``local``: the worker is known to run on the run's machine (a loky worker), so a run that is
    already gone ends it at once. (A parent-death signal would not do for engine workers: loky and Dask start
    them from threads that may end before the run does, and a Dask worker's parent is its nanny, not the run.)
    """
    if run_pid == os.getpid() or run_start is None or (run_pid, run_start) in _WATCHED:
        return
    if process_start_time(run_pid) != run_start:  # gone already, or not visible from here (remote, reused pid)
        if local:
            os.kill(os.getpid(), signal.SIGKILL)
        return
    _WATCHED.add((run_pid, run_start))

    def watch() -> None:
        while process_start_time(run_pid) == run_start:
            time.sleep(WATCH_INTERVAL_S)
        os.kill(os.getpid(), signal.SIGKILL)  # the run is gone: nobody will read what this worker computes

    threading.Thread(target=watch, name="cowbench-end-with-run", daemon=True).start()


def init_local_worker(run_pid: int, run_start: str | None) -> None:
    """The initializer of a local engine worker (loky): end with the run from the start, not from the first
    call (a worker still starting or idle when the run is killed would otherwise live on), and leave Ctrl-C to
    the run."""
    end_with_run(run_pid, run_start, local=True)
    ignore_interrupts_in_worker(run_pid)


def ignore_interrupts_in_worker(run_pid: int) -> None:
    """In an engine worker (not the run's own process): ignore SIGINT, so a Ctrl-C at the terminal, which reaches
    the whole process group, is handled by the run alone (one line) and not printed as worker tracebacks."""
    if run_pid != os.getpid() and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def safe_import_path() -> Iterator[None]:
    """While a run lasts: processes it starts do not put the working folder on ``sys.path``.

    ``python -m`` and ``python -c`` put the working folder first on ``sys.path``, so a ``torch.py`` in the folder
    ``cowbench run`` starts from would be imported by every worker instead of torch. ``PYTHONSAFEPATH=1``
    (Python 3.11) stops that in every child (loky and Dask workers, isolated children), and the working folder
    is taken out of this process's ``sys.path``, which loky and multiprocessing hand to their workers.
    """
    saved_env, saved_path = os.environ.get("PYTHONSAFEPATH"), list(sys.path)
    here = {"", ".", os.getcwd()}
    os.environ["PYTHONSAFEPATH"] = "1"
    sys.path[:] = [p for p in sys.path if p not in here]
    try:
        yield
    finally:
        if saved_env is None:
            os.environ.pop("PYTHONSAFEPATH", None)
        else:
            os.environ["PYTHONSAFEPATH"] = saved_env
        sys.path[:] = saved_path
