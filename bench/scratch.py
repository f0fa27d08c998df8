"""The sandbox's scratch folders: one per harness process, holding its template's home and each job's private folder.

A run killed with ``kill -9`` cannot remove what it made: each such run used to leave a few empty
``cowbench-job-*`` and ``cowbench-template-*`` folders in the temporary directory (474 on a development machine
after a few hundred test runs). Now every folder the sandbox makes lives in
``cowbench-sandbox-PID-*`` (PID: the harness process that made it), removed at exit; and whenever a process makes
its own, the folders of processes that no longer exist are removed first. A folder whose PID is alive is never
touched (its process, or an unrelated one that reused the number, may own it), nor one another user owns.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import tempfile
from pathlib import Path

PREFIX = "cowbench-sandbox-"
_NAME = re.compile(rf"^{PREFIX}(\d+)-")
_made: dict[int, str] = {}  # pid -> this process's folder (a forked child gets its own, not its parent's)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # PermissionError: another user's process, alive
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def sweep_dead(root: str | os.PathLike[str] | None = None) -> list[str]:
    """Remove the scratch folders in ``root`` (default: the temporary directory) whose process is gone; their names."""
    base = Path(root or tempfile.gettempdir())
    removed = []
    try:
        entries = list(os.scandir(base))
    except OSError:
        return removed
    for entry in entries:
        match = _NAME.match(entry.name)
        pid = int(match.group(1)) if match else None
        if pid is None or pid == os.getpid() or _alive(pid):
            continue
        try:
            if not entry.is_dir(follow_symlinks=False) or entry.stat(follow_symlinks=False).st_uid != os.getuid():
                continue
        except OSError:
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(entry.name)
    return removed


def scratch_dir() -> str:
    """This process's scratch folder, made (after a sweep of dead processes' folders) on first use."""
    pid = os.getpid()
    made = _made.get(pid)
    if made is None or not os.path.isdir(made):
        sweep_dead()
        made = tempfile.mkdtemp(prefix=f"{PREFIX}{pid}-")
        _made[pid] = made
        atexit.register(_remove, pid, made)
    return made


def _remove(pid: int, path: str) -> None:
    if os.getpid() == pid:  # not in a forked child that inherited the handler: the folder is its parent's
        shutil.rmtree(path, ignore_errors=True)


def private_dir(prefix: str) -> str:
    """A new empty folder for one template or job, inside this process's scratch folder."""
    return tempfile.mkdtemp(prefix=prefix, dir=scratch_dir())
