"""Per-job locks, so two runs (or two machines on a shared filesystem) split a results directory's work.

A job is run only by the process holding its lock (``<out>/locks/<id[:2]>/<id>.lock``). The locks are
operating-system file locks (``filelock``: ``flock`` on Unix), which the kernel releases when the holding
process dies, so a lock left by a ``kill -9`` never blocks anyone. The lock files themselves stay: an empty
file is harmless and deleting it could let two processes lock two different files of the same name.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout


def job_lock_path(out: Path, job_id: str) -> Path:
    return Path(out) / "locks" / job_id[:2] / f"{job_id}.lock"


def replicate_lock_path(cache_dir: Path, replicate_id: str) -> Path:
    return Path(cache_dir) / f"{replicate_id}.lock"


@contextlib.contextmanager
def hold(path: Path, *, wait: float | None = 0.0) -> Iterator[bool]:
    """Hold the lock at ``path`` for the ``with`` block; yields False (and holds nothing) if it is not free.

    ``wait`` is how long to wait for it: 0 tries once, None waits as long as it takes.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # thread_local=False: the lock belongs to the process; is_singleton=False: a second `hold` of the same path
    # in this process must conflict like any other holder instead of re-entering
    lock = FileLock(str(path), thread_local=False, is_singleton=False, preserve_lock_file=True)
    try:
        lock.acquire(timeout=-1 if wait is None else wait)
    except Timeout:
        yield False
        return
    try:
        yield True
    finally:
        lock.release()
