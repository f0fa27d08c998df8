"""The audit hook of a method process: what a method does outside its lane is recorded, named by route.

A method runs blind in a fresh sandbox process (`cowbench.sandbox`) whose memory holds only its Task; this
module records, from the moment the Task is handed over until ``run`` returns, what a method could use to
look past it, as Python audit events (PEP 578, ``sys.addaudithook``):

``audit:open``
    a file opened (or a folder listed, a file created, renamed, removed, linked) outside the process's
    private folder, except reads of installed code and package data and a short list of system files
    (`SYSTEM_READS`: ``/proc/self``, ``/dev/null``, CPU and cgroup information);
``audit:frames``
    ``sys._getframe``, ``sys._current_frames``, a traceback's or generator's frame, ``sys.settrace`` /
    ``sys.setprofile`` (ways to read the callers' local variables);
``audit:gc``
    ``gc.get_objects``, ``gc.get_referrers``, ``gc.get_referents`` (ways to reach any live object);
``audit:subprocess``
    ``subprocess.Popen``, ``os.system``, ``os.exec*``, ``os.posix_spawn``, ``os.spawn*``, ``os.fork``,
    ``os.kill``;
``audit:socket``
    any socket;
``audit:ctypes``
    loading a native library or reading raw memory through ``ctypes``.

What honest library internals do during a run is on an explicit allow list (`ALLOWED`): per route, the
(module, function) pairs known to make such a call for their own bookkeeping and never hand the result to
their caller (``collections.namedtuple`` reads its caller's module name through ``sys._getframe``). The list is
what every built-in method needed on the test scenarios (``tests/unit/test_audit.py``), plus the standard
library's own bookkeeping; no package is excused wholesale (``torch.jit``'s resolution callbacks, for one,
hand back a lookup into a caller's frame).
An event is attributed to the innermost Python frame outside the plumbing modules that merely carry it
(``ctypes``, ``subprocess``, ``os``, ``importlib``), so calling the plumbing directly is never excused.

What this does not see: native code (a C extension or a ``ctypes`` call already set up) can read memory
and open files without an audit event; a method that finds and switches off the recorder must first walk
frames or the garbage collector, which is recorded. The sandbox's first defence is that the process holds
nothing worth finding; the hook makes an attempt visible, and a job with any route is unranked.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import sysconfig
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

READ_EVENT = "cowbench.task.read"  # a Task announces each guarded read: sys.audit(READ_EVENT, entry)
TAMPERED = 71  # exit code of a method process whose record pipe was closed or replaced
PIPE_LINE = 4096  # PIPE_BUF on Linux: a record line is written in one atomic write
ROUTES = ("audit:open", "audit:frames", "audit:gc", "audit:subprocess", "audit:socket", "audit:ctypes")

# events whose first argument is a path: checked against the private folder and the allowed reads
_PATH_EVENTS = {"open", "os.listdir", "os.scandir", "os.chdir", "os.mkdir", "os.rmdir", "os.remove", "os.rename",
                "os.symlink", "os.link", "os.truncate", "os.chmod", "os.chown", "os.utime", "shutil.rmtree",
                "shutil.copyfile", "shutil.copytree", "shutil.move", "os.chflags", "os.lchflags"}
_READ_ONLY_EVENTS = {"os.listdir", "os.scandir", "os.chdir"}  # never write: allowed wherever a read is allowed
_BY_EVENT = {
    "sys._getframe": "audit:frames", "sys._current_frames": "audit:frames", "sys._current_exceptions": "audit:frames",
    "sys.settrace": "audit:frames", "sys.setprofile": "audit:frames", "sys._getframemodulename": "audit:frames",
    "gc.get_objects": "audit:gc", "gc.get_referrers": "audit:gc", "gc.get_referents": "audit:gc",
    "subprocess.Popen": "audit:subprocess", "os.system": "audit:subprocess", "os.exec": "audit:subprocess",
    "os.posix_spawn": "audit:subprocess", "os.spawn": "audit:subprocess", "os.fork": "audit:subprocess",
    "os.forkpty": "audit:subprocess", "os.kill": "audit:subprocess", "os.killpg": "audit:subprocess",
    "pty.spawn": "audit:subprocess", "os.startfile": "audit:subprocess",
}
_FRAME_ATTRIBUTES = {"tb_frame", "gi_frame", "cr_frame", "ag_frame", "f_back"}
# modules that only carry an event raised on someone else's behalf: the origin is the first frame outside them
_PLUMBING = ("ctypes", "subprocess", "os", "posixpath", "importlib", "_bootstrap", "_bootstrap_external", "socket",
             "multiprocessing", "pty", "shutil", "io", "codecs", "tempfile", "genericpath")

# Reads of these system files (and of anything under the folders ending in "/") carry no job data.
SYSTEM_READS = ("/dev/null", "/dev/urandom", "/dev/random", "/proc/self/", "/proc/thread-self/", "/proc/cpuinfo",
                "/proc/meminfo", "/proc/stat", "/sys/devices/system/cpu/", "/sys/fs/cgroup/", "/etc/localtime",
                "/usr/share/zoneinfo/", "/etc/ld.so.cache")

# route -> (module, function) pairs whose calls honest libraries make for their own bookkeeping and whose results
# never reach the method (a module name ending in "." covers its submodules, a function "*" every function)
ALLOWED: dict[str, frozenset[tuple[str, str]]] = {
    "audit:frames": frozenset({
        ("collections", "namedtuple"),  # sets the new class's __module__ from its caller's name
        ("typing", "_caller"),  # the same for TypeVar, NamedTuple, TypedDict
        ("typing_extensions", "_caller"), ("typing_extensions", "_has_generic_or_protocol_as_origin"),
        ("enum", "__new__"), ("enum", "_convert_"),  # the caller's module name for pickling support
        ("dataclasses", "_create_fn"),
        ("threading", "settrace"), ("threading", "setprofile"),  # only when a profiler is set up by the harness
        ("warnings", "_next_external_frame"), ("warnings", "warn"),  # the pure-Python fallback of warnings
        ("logging", "findCaller"),  # log records name the calling line, never return the frame
        ("traceback", "format_stack"), ("traceback", "extract_stack"),  # text (file, line, name), no locals
    }),
    "audit:ctypes": frozenset({
        ("threadpoolctl", "*"),  # finds the loaded BLAS/OpenMP libraries to pin their thread counts
    }),
    "audit:subprocess": frozenset({
        # loky (scikit-learn's joblib) counts physical cores once by running `lscpu`: a fixed command, its
        # result cached (the template pays it first: `cowbench.sandbox._preload`)
        ("joblib.externals.loky.backend.context", "_count_physical_cores_linux"),
    }),
    "audit:gc": frozenset(),
    "audit:socket": frozenset(),
}


def _module_of(frame: Any) -> str:
    return str(frame.f_globals.get("__name__", "?"))


def _allowed(rules: frozenset[tuple[str, str]], module: str, function: str) -> bool:
    for mod, fn in rules:
        matches = module.startswith(mod) or module == mod.rstrip(".") if mod.endswith(".") else module == mod
        if matches and fn in ("*", function):
            return True
    return False


def installed_roots(extra: Iterable[str] = ()) -> tuple[str, ...]:
    """Folders whose files a method may read: the standard library, site-packages, cowbench's own packages,
    and ``extra`` (plugin files).

    Never a ``sys.path`` entry as such: an editable install or the working folder may put a checkout that holds
    ``results/`` on it; cowbench's packages are added folder by folder instead. The installed part is computed
    once per process (the sandbox's template computes it before forking its children).
    """
    return tuple(sorted({*_installed(), *(os.path.realpath(r) for r in extra if r)}))


@functools.lru_cache(maxsize=1)
def _installed() -> tuple[str, ...]:
    roots = set()
    paths = sysconfig.get_paths()
    for key in ("stdlib", "platstdlib", "purelib", "platlib", "include", "platinclude"):
        if paths.get(key):
            roots.add(paths[key])
    import site

    roots.update(site.getsitepackages())
    roots.update(p for p in sys.path if p and ("site-packages" in p or "dist-packages" in p or p.endswith(".zip")))
    for name, module in list(sys.modules.items()):
        if name == "cowbench" or name.startswith("cowbench."):
            roots.update(getattr(module, "__path__", None) or ())
    return tuple(sorted({os.path.realpath(r) for r in roots if r}))


@dataclass
class Record:
    """One recorded event: its route, the raw event name, what it touched and where it came from."""

    route: str
    event: str
    detail: str
    origin: str


@dataclass
class AuditRecorder:
    """Records audit events between `start` and `stop`; `install` adds its hook to this process for good.

    Parameters
    ----------
    private_dir : str
        The method process's own folder: anything may be done inside it.
    read_roots : tuple of str
        Folders (and files) whose contents may be read (installed code, package data, plugin files).
    sink_fd : int, optional
        A pipe each record is written to (one JSON line) the moment its event happens, before the audited
        action proceeds, so a method cannot take a record back: the result it sends at the end cannot hide one.
        Before each write the descriptor is checked to still be that pipe (a method that closed it or put
        another file in its place is ended on the spot: exit code `TAMPERED`).

    Attributes
    ----------
    reads : list of str
        Task reads announced with ``sys.audit(READ_EVENT, entry)`` while recording, in order of first read
        (streamed to the sink like the records).
    """

    private_dir: str
    read_roots: tuple[str, ...] = field(default_factory=installed_roots)
    sink_fd: int | None = None
    records: list[Record] = field(default_factory=list)
    reads: list[str] = field(default_factory=list)
    max_records: int = 200
    _on: bool = False
    # per thread: while the hook handles an event in one thread, another thread's events are still judged
    _local: threading.local = field(default_factory=threading.local)
    _seen: set[tuple[str, str]] = field(default_factory=set)

    def install(self) -> None:
        """Add the hook (a Python audit hook cannot be removed: install it only in a process that ends with the job)."""
        self.private_dir = os.path.realpath(self.private_dir)
        self._pid_dir = f"/proc/{os.getpid()}/"
        self._sink_id = None
        if self.sink_fd is not None:
            st = os.fstat(self.sink_fd)
            self._sink_id = (st.st_dev, st.st_ino)
        sys.addaudithook(self._hook)

    def start(self) -> None:
        self._on = True

    def stop(self) -> None:
        self._on = False

    def routes(self) -> list[str]:
        """The routes recorded so far, sorted."""
        return sorted({r.route for r in self.records})

    # -- the hook -------------------------------------------------------------------------------------

    def _hook(self, event: str, args: tuple[Any, ...]) -> None:
        if not self._on or getattr(self._local, "busy", False):
            return
        if event == READ_EVENT:
            self._local.busy = True
            try:
                entry = str(args[0]) if args else "?"
                if entry not in self.reads:
                    self.reads.append(entry)
                    self._emit({"read": entry})
            finally:
                self._local.busy = False
            return
        route = _BY_EVENT.get(event)
        if route is None:
            if event in _PATH_EVENTS:
                route = "audit:open"
            elif event.startswith("socket."):
                route = "audit:socket"
            elif event.startswith("ctypes."):
                route = "audit:ctypes"
            elif event == "object.__getattr__" and len(args) == 2 and args[1] in _FRAME_ATTRIBUTES:
                route = "audit:frames"
            else:
                return
        self._local.busy = True  # what the hook itself does (frames, realpath) raises events too
        try:
            self._judge(route, event, args)
        except Exception:
            self._add(route, event, "(unreadable arguments)", "?")
        finally:
            self._local.busy = False

    def _judge(self, route: str, event: str, args: tuple[Any, ...]) -> None:
        if route == "audit:open":
            problem = self._path_problem(event, args)
            if problem is not None:
                self._add(route, event, problem, self._origin()[0])
            return
        origin, module, function = self._origin()
        if _allowed(ALLOWED.get(route, frozenset()), module, function):
            return
        self._add(route, event, _short(args), origin)

    def _path_problem(self, event: str, args: tuple[Any, ...]) -> str | None:
        """None when the path event stays in the lane, else a short description."""
        if not args:
            return None
        target = args[0]
        if isinstance(target, int):  # an already open descriptor: its opening was judged
            return None
        try:
            path = os.fsdecode(os.fspath(target))
        except TypeError:
            return f"{event} {target!r}"
        if event == "os.listdir" and path in ("", "."):
            path = os.getcwd()
        real = os.path.realpath(path)
        if _inside(real, self.private_dir):
            return None
        writes = event not in ("open", *_READ_ONLY_EVENTS) or _writes(args)
        if not writes and (any(_inside(real, root) for root in self.read_roots) or _system(real, self._pid_dir)):
            return None
        return f"{event} {path!r}" + (" (write)" if writes else "")

    def _origin(self) -> tuple[str, str, str]:
        """Where the event came from: the innermost frame outside this hook and outside the plumbing modules."""
        own = {AuditRecorder._hook.__code__, AuditRecorder._judge.__code__, AuditRecorder._origin.__code__,
               AuditRecorder._path_problem.__code__}
        frame = sys._getframe(1)  # no recursion: the hook is busy
        while frame is not None and frame.f_code in own:
            frame = frame.f_back
        while frame is not None and _plumbing(frame):
            frame = frame.f_back
        if frame is None:
            return "?", "?", "?"
        module, function = _module_of(frame), frame.f_code.co_name
        return f"{module}.{function}:{frame.f_lineno}", module, function

    def _add(self, route: str, event: str, detail: str, origin: str) -> None:
        key = (route, detail, origin)
        if key in self._seen or len(self.records) >= self.max_records:
            if any(r.route == route for r in self.records):  # the route itself is never dropped
                return
        self._seen.add(key)
        record = Record(route, event, detail, origin)
        self.records.append(record)
        self._emit({"route": route, "event": event, "detail": detail, "origin": origin})

    def _emit(self, item: dict[str, str]) -> None:
        """Write one record to the sink now; end the process if the sink is no longer the pipe it was."""
        if self.sink_fd is None:
            return
        item = {k: v[:PIPE_LINE // 8] for k, v in item.items()}  # a line stays under PIPE_BUF: one atomic write
        line = json.dumps(item).encode() + b"\n"
        try:
            st = os.fstat(self.sink_fd)
            if (st.st_dev, st.st_ino) != self._sink_id:
                raise OSError("the record pipe was replaced")
            os.write(self.sink_fd, line)
        except OSError:
            os._exit(TAMPERED)


def _plumbing(frame: Any) -> bool:
    return frame.f_code.co_filename.startswith("<frozen") or _module_of(frame).split(".")[0] in _PLUMBING


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _system(path: str, pid_dir: str) -> bool:
    for allowed in (*SYSTEM_READS, pid_dir):
        if (allowed.endswith("/") and (path + "/").startswith(allowed)) or path == allowed:
            return True
    return False


def _writes(args: tuple[Any, ...]) -> bool:
    mode = args[1] if len(args) > 1 else None
    flags = args[2] if len(args) > 2 else 0
    if isinstance(mode, str) and any(c in mode for c in "wax+"):
        return True
    if isinstance(flags, int):
        return bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC))
    return False


def _short(args: tuple[Any, ...], limit: int = 120) -> str:
    try:
        text = ", ".join(repr(a) if isinstance(a, (str, bytes, int, float)) else type(a).__name__ for a in args)
    except Exception:
        text = "?"
    return text[:limit]
