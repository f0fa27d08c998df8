"""The sandbox a method runs in: a fresh process, forked from a clean preloaded template, holding only its Task.

A job is prepared by the harness (data, subject, truth, oracle), run by the method, and scored by the harness.
`run_blind` does the middle step somewhere the first and last cannot be reached from:

* The **template** is a Python process started by ``exec`` (never forked from a process that prepared a
  replicate), with the working folder off ``sys.path`` (``python -P``), an environment reduced to an allow list
  (`ENV_KEEP`), an empty private working folder and argv naming only pipe numbers. It imports torch, cowbench,
  every registered method and the run's plugins once, then forks one child per job. Its memory never holds a
  replicate, truth, oracle, evaluation split or results path: nothing was ever sent to it but plugin names.
* Each job's method runs in a **fresh child** forked from it: its own session and process group (the whole
  group is killed when the job ends, so a subprocess or forked child the method started dies with it), killed by
  the kernel when the template dies (``PR_SET_PDEATHSIG``), working in a fresh empty private folder that is
  removed afterwards, under a memory limit (a watchdog on the private memory of the job's process group, i.e.
  what it adds to the template's shared pages, with ``RLIMIT_AS`` as a backstop against faster allocations) and
  a time limit. The call comes in over a pipe; the `Task` is built from it in the child; the
  audit hook (`cowbench.audit`) records from the hand-over until ``run`` returns.
* The result goes back as JSON (the output's plain form, `MethodOutput.to_plain`) plus the edited model as
  cloudpickle bytes. The harness never unpickles those bytes: `SandboxedModel` evaluates them in another fresh
  child, so no method code ever runs where scoring runs.

A method that kills its template fails only its own job; the next job gets a fresh template. The template is
a subreaper: a grandchild that left the job's process group is killed when the job ends.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import importlib
import itertools
import json
import os
import pickle
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import numpy as np
import torch

import cowbench.access as access
import cowbench.scratch as scratch
from cowbench.audit import ROUTES as _ROUTES
from cowbench.audit import TAMPERED, AuditRecorder, installed_roots
from cowbench.determinism import deterministic
from cowbench.errors import Lost
from cowbench.method import MethodOutput
from cowbench.models import logits
from cowbench.registries import METHODS
from cowbench.replicate import scenario_from_spec

# Environment variables a method process keeps (by name or prefix): locale, numerics, thread counts. Anything
# else (a results path in a user's variable, the CLI's arguments in a wrapper's variable) is dropped.
ENV_KEEP = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "LC_", "TZ", "PYTHONHASHSEED", "PYTHONPATH",
            "VIRTUAL_ENV", "OMP_", "MKL_", "OPENBLAS_", "BLIS_", "GOTO_", "VECLIB_", "NUMEXPR_", "ATEN_",
            "CUDA_VISIBLE_DEVICES", "KMP_", "TORCH_", "CUBLAS_", "SYSTEMROOT")
MAX_HEADER_BYTES = 256 * 2**20  # the plain output, read log and audit records of one job
MAX_MODEL_BYTES = 2**31 - 1  # one edited model's pickle
WATCH_INTERVAL_S = 0.1  # how often the parent checks the job's time, exit and (for its first seconds) memory
# after `MEMORY_WATCH_CLOSELY_S` the memory is checked every `MEMORY_CHECK_S` only: a check scans /proc (4 to 18 ms
# of CPU), and ten a second cost a long method's job a fifth of a core; a job's memory mostly grows at its start,
# and RLIMIT_AS stops allocations faster than a check
MEMORY_WATCH_CLOSELY_S = 2.0
MEMORY_CHECK_S = 0.5
START_TIMEOUT_S = 600.0  # a template's imports (seconds, minutes on a loaded machine)
_PR_SET_PDEATHSIG, _PR_SET_CHILD_SUBREAPER = 1, 36


@dataclass(frozen=True)
class BlindCall:
    """One method run: what the sandbox needs and nothing of the harness.

    Attributes
    ----------
    method : str or type
        Registered method name (looked up in the template, where the plugins are loaded); or, for the
        conformance kit's unregistered classes, the class itself (pickled by value when its module is not
        importable in the template).
    hparams : dict
        Hyperparameters (``random_state`` among them, or absent).
    fit_seed : int
        The method's ``random_state`` when ``hparams`` gives none.
    inputs : Any
        The Task's contents as plain picklable data (`TaskInputs`); see `make_task`.
    plugins : tuple of str
        Plugin files or modules the template imports (never the scoring worker).
    """

    method: str | type
    hparams: dict[str, Any]
    fit_seed: int
    inputs: Any
    plugins: tuple[str, ...] = ()


@dataclass
class BlindResult:
    """What comes back from a method process: plain data only, and the edited model as bytes never loaded here.

    Attributes
    ----------
    output : dict
        `MethodOutput.to_plain` (neutral variable names: the job flow unblinds them).
    edited : bytes or None
        cloudpickle of the edited model; loaded only inside a sandbox process (`SandboxedModel`).
    read_log : list of str
        ``task.read_log`` when ``run`` returned (``sorted(task.used)`` for a Task without a read log).
    audit : list of str
        Sorted routes the audit hook recorded (``audit:open``, ...); empty for a method that stayed in its lane.
    wall_s : float
        Wall time of ``run`` (the Task's construction excluded).
    peak_rss_mb : float or None
        Peak resident memory of the method process.
    audit_details : list of str
        One line per recorded event (route, what, where from), for the job record's details.
    run_mode : str
        ``blind``, or ``inprocess (unsafe: not for published results)`` from `run_inprocess`.
    truth_objects : list of str or None
        Harness objects carrying truth found in the method process's memory (only when asked by the
        conformance kit's `probe_blind`).
    cpu_s : float or None
        CPU seconds of the method's process and everything it started, as the kernel counted them when the
        template reaped it (`sandbox_cpu_s`); None in-process.
    """

    output: dict[str, Any]
    edited: bytes | None
    read_log: list[str]
    audit: list[str]
    wall_s: float
    peak_rss_mb: float | None
    audit_details: list[str] = field(default_factory=list)
    run_mode: str = "blind"
    truth_objects: list[str] | None = None
    cpu_s: float | None = None


@dataclass(frozen=True)
class LegacyInputs:
    """A stand-in for `TaskInputs` until the blinded one exists: today's Task pieces, sent whole (NOT blind).

    The scenario travels as its spec and is rebuilt in the method process. The Task built from it holds the named
    scenario and the dataset, so the conformance kit's truth scan fails on it, as it should.
    """

    scenario_spec: dict[str, Any]
    data: Any
    subject: Any
    access: frozenset[str]
    subject_config: dict[str, Any]
    n_concept: int = 1000


def make_task(inputs: Any) -> Any:
    """The Task a method sees, built inside the method process from ``inputs`` (the one place to swap).

    A `TaskInputs` (cowbench.access, when present) gives ``Task(inputs)``; a `LegacyInputs` gives today's
    Task from its pieces; anything else is taken as the Task itself (tests hand a small stand-in).
    """
    task_inputs = getattr(access, "TaskInputs", None)
    if task_inputs is not None and isinstance(inputs, task_inputs):
        return access.Task(inputs)
    if isinstance(inputs, LegacyInputs):
        return access.Task(scenario_from_spec(inputs.scenario_spec), inputs.data, inputs.subject, inputs.access,
                           subject_config=inputs.subject_config, n_concept=inputs.n_concept)
    return inputs


class SandboxLost(RuntimeError):
    """A sandboxed model's evaluation returned no result (its process died, overran or raised)."""

    def __init__(self, lost: Lost):
        super().__init__(lost.message)
        self.lost = lost


# -- the parent side: one template per thread --------------------------------------------------------


def clean_env() -> dict[str, str]:
    """The environment a template (and every method process) gets: `ENV_KEEP` only."""
    return {k: v for k, v in os.environ.items()
            if any(k == p or (p.endswith("_") and k.startswith(p)) for p in ENV_KEEP)}


class _TemplateDied(RuntimeError):
    pass


class Template:
    """A clean, preloaded process that forks one fresh child per call (a zygote).

    Parameters
    ----------
    plugins : tuple of str
        Plugin files or modules it imports after cowbench and the registered methods.
    """

    def __init__(self, plugins: tuple[str, ...] = ()):
        self.plugins = tuple(plugins)
        self._lock = threading.Lock()
        self._home = scratch.private_dir("template-")
        parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            code = "from cowbench.sandbox import _template_main; _template_main()"
            self._proc = subprocess.Popen(
                [sys.executable, "-P", "-c", code, str(child_end.fileno())],
                pass_fds=(child_end.fileno(),), stdin=subprocess.DEVNULL,
                stdout=2,  # what a method prints goes to stderr, so the CLI's stdout stays the report
                cwd=self._home, env=clean_env(), start_new_session=True)
        finally:
            child_end.close()
        self._sock = parent_end
        self._sock.settimeout(START_TIMEOUT_S)
        try:
            self._sock.send(json.dumps({"plugins": list(self.plugins), "parent": os.getpid()}).encode())
            reply = json.loads(self._sock.recv(65536) or b"null")
        except (OSError, ValueError):
            reply = None
        if not isinstance(reply, dict) or not reply.get("ready"):
            self.close()
            why = reply.get("error") if isinstance(reply, dict) else f"exit code {self._proc.poll()}"
            raise RuntimeError(f"the sandbox template failed to start: {why}")
        self._sock.settimeout(None)
        self.pid = self._proc.pid
        self.startup_cpu_s = float(reply.get("cpu_s") or 0.0)  # the template's imports, before any job

    def alive(self) -> bool:
        return self._proc.poll() is None

    def _ask(self, message: dict[str, Any], fds: Sequence[int] = ()) -> dict[str, Any]:
        with self._lock:
            try:
                if fds:
                    socket.send_fds(self._sock, [json.dumps(message).encode()], list(fds))
                else:
                    self._sock.send(json.dumps(message).encode())
                data = self._sock.recv(65536)
            except OSError as exc:
                raise _TemplateDied(str(exc)) from None
        if not data:
            raise _TemplateDied("the template closed its socket")
        return json.loads(data)

    def fork(self, fds: Sequence[int], private_dir: str, memory_limit_mb: int | None,
             preload: Sequence[str] = ()) -> int:
        """Fork a child that reads its call from ``fds[0]``, writes its result to ``fds[1]`` and its audit records
        and Task reads, as they happen, to ``fds[2]``; its pid. ``preload``: modules the template imports first
        (once: the heavy imports the job's method declares, `Method.preload`)."""
        return int(self._ask({"op": "fork", "private": private_dir, "memory_mb": memory_limit_mb,
                              "preload": list(preload)}, fds)["pid"])

    def wait(self, pid: int) -> int | None:
        """Reap child ``pid`` (killed or done) and kill orphans it left; its wait status, None if the template died.
        The CPU seconds the child and its descendants used are added to `sandbox_cpu_s`."""
        try:
            reply = self._ask({"op": "wait", "pid": pid})
            status = int(reply["status"])
        except (_TemplateDied, ValueError, KeyError):
            return None
        _charge(float(reply.get("cpu_s") or 0.0))
        return status

    def close(self) -> None:
        """End the template (closing its socket ends it; a stuck one is killed)."""
        _ALL.discard(self)
        with contextlib.suppress(OSError):
            self._sock.close()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait()
        shutil.rmtree(self._home, ignore_errors=True)


_LOCAL = threading.local()  # one template per thread (a Dask worker may run several tasks at once)


def _charge(cpu_s: float, kind: str = "children") -> None:
    setattr(_LOCAL, f"cpu_{kind}", getattr(_LOCAL, f"cpu_{kind}", 0.0) + cpu_s)


def template_startup_cpu_s() -> float:
    """CPU seconds this thread's sandbox templates spent starting (their imports), so far."""
    return float(getattr(_LOCAL, "cpu_startup", 0.0))


def sandbox_cpu_s(*, startup: bool = True) -> float:
    """CPU seconds (user + system) of this thread's sandbox processes so far: the children its templates reaped
    (method runs and edited-model evaluations, with everything they started, as the kernel counted them:
    ``wait4``) and, with ``startup``, the templates' own start-up (`template_startup_cpu_s`). A job's share is
    the difference across it."""
    children = float(getattr(_LOCAL, "cpu_children", 0.0))
    return children + (template_startup_cpu_s() if startup else 0.0)


_ALL: weakref.WeakSet[Template] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for template in list(_ALL):
        with contextlib.suppress(Exception):
            template.close()


DEFAULT_MEMORY_SHARE = 0.5  # of the machine's physical memory, split between the jobs that run at once


def default_memory_limit_mb(n_jobs: int = 1) -> int:
    """The default per-job memory limit: `DEFAULT_MEMORY_SHARE` of physical memory over ``n_jobs``, in MB."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20
    return max(256, int(DEFAULT_MEMORY_SHARE * total / max(1, int(n_jobs))))


def _template(plugins: tuple[str, ...] | None) -> Template:
    """This thread's template with ``plugins`` loaded (None: whatever it has loaded, e.g. to evaluate a model)."""
    current = getattr(_LOCAL, "template", None)
    if current is not None and ((plugins is not None and current.plugins != tuple(plugins)) or not current.alive()):
        current.close()
        current = None
    if current is None:
        current = _LOCAL.template = Template(tuple(plugins or ()))
        _charge(current.startup_cpu_s, "startup")
        _ALL.add(current)
    return current


def close_template() -> None:
    """End this thread's template, if any (the next call starts a new one)."""
    current = getattr(_LOCAL, "template", None)
    if current is not None:
        current.close()
        _LOCAL.template = None


def _group_private_mb(pgid: int, *, unless_below: float | None = None) -> float:
    """Memory of its own (private pages, resident or swapped) of every process in group ``pgid``, MB.

    Private, not resident: a job's process shares the preloaded libraries' pages with its template (a few
    hundred MB of torch), and those are not the job's. ``unless_below``: when the group's resident plus swapped
    memory (an upper bound of the private memory, from counters the kernel keeps) is at most this, that bound is
    returned instead: the exact figure walks every page table (``smaps_rollup``: 18 ms of CPU per check of a
    torch process, ten checks a second while a method runs), and a watchdog only needs it near its limit.
    """
    members = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                if int(fh.read().rsplit(b")", 1)[1].split()[2]) == pgid:  # after the name: state, ppid, pgrp
                    members.append(entry.name)
        except (OSError, ValueError, IndexError):
            continue
    if unless_below is not None:
        bound = sum(_resident_and_swap_kb(pid) for pid in members) / 1024
        if bound <= unless_below:
            return bound
    total = 0
    for pid in members:
        try:
            with open(f"/proc/{pid}/smaps_rollup", "rb") as fh:
                for line in fh:
                    if line.startswith((b"Private_Clean:", b"Private_Dirty:", b"Swap:")):
                        total += int(line.split()[1])
        except (OSError, ValueError, IndexError):
            continue
    return total / 1024


def _resident_and_swap_kb(pid: str) -> int:
    """VmRSS + VmSwap of a process, kB (0 if it is gone)."""
    total = 0
    try:
        with open(f"/proc/{pid}/status", "rb") as fh:
            for line in fh:
                if line.startswith((b"VmRSS:", b"VmSwap:")):
                    total += int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    return total


def _gone(pid: int) -> bool:
    """The process exited (a zombie waiting to be reaped counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X")
    except OSError:
        return True


def _lost_from_status(status: int | None) -> Lost:
    if status is not None and os.WIFEXITED(status) and os.WEXITSTATUS(status) == TAMPERED:
        return Lost("tampered", "tampered: the method process closed or replaced its audit record pipe")
    if status is None:
        return Lost("signal", "the method's process was lost with its sandbox template (the job killed it?)")
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        return Lost("signal", f"the method's process was killed by {name}")
    return Lost("exit", f"the method's process exited with code {os.WEXITSTATUS(status)} without a result")


def _execute(kind: str, body: Any, plugins: tuple[str, ...] | None, *, time_limit: float | None,
             memory_limit_mb: int | None, options: dict[str, Any] | None = None) -> tuple[dict[str, Any], bytes] | Lost:
    """Run ``kind`` (``run`` or ``forward``) on ``body`` in a fresh child of this thread's template."""
    if time_limit is not None and not (isinstance(time_limit, int | float) and time_limit > 0):
        raise ValueError(f"time_limit must be a positive number of seconds or None, got {time_limit!r}")
    if memory_limit_mb is not None and not (isinstance(memory_limit_mb, int) and memory_limit_mb > 0):
        raise ValueError(f"memory_limit_mb must be a positive integer or None, got {memory_limit_mb!r}")
    import cloudpickle

    payload = cloudpickle.dumps((kind, body, dict(options or {})))
    private = scratch.private_dir("job-")
    try:
        template, pid, send, recv, records = _spawn(plugins, private, memory_limit_mb, _preload_of(body))
        try:
            got = _converse(template, pid, send, recv, records, payload, time_limit, memory_limit_mb)
        finally:
            send.close()
            recv.close()
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)  # the job's whole process group ends with the job
            records.close()
        return _checked(got, records)
    finally:
        shutil.rmtree(private, ignore_errors=True)


def _checked(got: tuple[dict[str, Any], bytes] | Lost, records: _Records) -> tuple[dict[str, Any], bytes] | Lost:
    if isinstance(got, Lost):
        return got
    if records.malformed:
        return Lost("tampered", "tampered: the method process wrote into its audit record pipe "
                                f"({records.malformed[0][:80]!r})")
    header, blob = got
    _merge_records(header, records)
    return header, blob


def _preload_of(body: Any) -> tuple[str, ...]:
    """The modules a run's method declares for the template to import (`Method.preload`); none for a forward."""
    method = getattr(body, "method", None)
    if method is None:
        return ()
    if not isinstance(method, str):
        return tuple(getattr(method, "preload", ()))
    try:
        return tuple(getattr(METHODS.get(method), "preload", ()))
    except Exception:  # a plugin's method this worker never loaded: its template imports what it needs
        return ()


def _spawn(plugins: tuple[str, ...] | None, private: str, memory_limit_mb: int | None,
           preload: Sequence[str] = ()) -> tuple[Template, int, Connection, Connection, _Records]:
    """A fresh child of this thread's template, with its call, result and record pipes."""
    for attempt in (0, 1):  # a template that died between two jobs is replaced once
        template = _template(plugins)
        in_r, in_w = os.pipe()
        out_r, out_w = os.pipe()
        rec_r, rec_w = os.pipe()
        try:
            pid = template.fork((in_r, out_w, rec_w), private, memory_limit_mb, preload)
        except _TemplateDied:
            for fd in (in_w, out_r, rec_r):
                os.close(fd)
            close_template()
            if attempt:
                raise RuntimeError("the sandbox template died twice before forking a job") from None
            continue
        finally:  # the child has its own copies now
            for fd in (in_r, out_w, rec_w):
                os.close(fd)
        return template, pid, Connection(in_w, readable=False), Connection(out_r, writable=False), _Records(rec_r)
    raise AssertionError("unreachable")


class _Records:
    """The parent's end of a job's record pipe: audit records and Task reads, one JSON line each, as they happen.

    Lines only add to what the job is charged with; a line that does not parse (a method writing into the pipe)
    is kept in ``malformed`` and fails the job as ``tampered``.
    """

    def __init__(self, fd: int):
        os.set_blocking(fd, False)
        self._fd, self._buffer = fd, b""
        self.routes: list[dict[str, str]] = []
        self.reads: list[str] = []
        self.malformed: list[str] = []

    def drain(self) -> None:
        while True:
            try:
                chunk = os.read(self._fd, 1 << 16)
            except BlockingIOError:
                return
            if not chunk:
                return
            self._buffer += chunk
            *lines, self._buffer = self._buffer.split(b"\n")
            for line in lines:
                self._take(line)
            if len(self.routes) + len(self.reads) + len(self.malformed) > 100_000:
                self.malformed.append("more than 100000 records")
                return

    def _take(self, line: bytes) -> None:
        try:
            item = json.loads(line)
            if not isinstance(item, dict) or not all(isinstance(v, str) for v in item.values()):
                raise ValueError
        except ValueError:
            self.malformed.append(line.decode(errors="replace"))
            return
        if set(item) == {"read"}:
            if item["read"] not in self.reads:
                self.reads.append(item["read"])
        elif set(item) == {"route", "event", "detail", "origin"} and item["route"] in _ROUTES:
            self.routes.append(item)
        else:
            self.malformed.append(line.decode(errors="replace"))

    def close(self, wait_s: float = 2.0) -> None:
        """Read what is left until every write end is closed (the job's group is dead by now), for at most
        ``wait_s`` seconds (a grandchild that escaped the group may hold its end open), then close."""
        import select

        deadline = time.monotonic() + wait_s
        try:
            while (left := deadline - time.monotonic()) > 0 and select.select([self._fd], [], [], left)[0]:
                chunk = os.read(self._fd, 1 << 16)
                if not chunk:
                    break
                self._buffer += chunk
                *lines, self._buffer = self._buffer.split(b"\n")
                for line in lines:
                    self._take(line)
        except OSError:
            pass
        if self._buffer:
            self.malformed.append(self._buffer.decode(errors="replace"))
            self._buffer = b""
        os.close(self._fd)


def _merge_records(header: dict[str, Any], records: _Records) -> None:
    """What the job is charged with: the streamed records and reads, plus whatever its final message adds."""
    header["audit"] = sorted({*map(str, header.get("audit", [])), *(r["route"] for r in records.routes)})
    details = [f"{r['route']}: {r['detail']} (from {r['origin']})" for r in records.routes]
    header["audit_details"] = details + [d for d in map(str, header.get("audit_details", [])) if d not in details]
    header["read_log"] = records.reads + [r for r in map(str, header.get("read_log", [])) if r not in records.reads]


def _converse(template: Template, pid: int, send: Connection, recv: Connection, records: _Records, payload: bytes,
              time_limit: float | None, memory_limit_mb: int | None) -> tuple[dict[str, Any], bytes] | Lost:
    try:
        send.send_bytes(payload)
    except OSError:  # the child died before reading its call
        pass
    send.close()
    return _receive(template, pid, recv, records, time_limit, memory_limit_mb, reap=True)


def _receive(template: Template, pid: int, recv: Connection, records: _Records, time_limit: float | None,
             memory_limit_mb: int | None, *, reap: bool) -> tuple[dict[str, Any], bytes] | Lost:
    """Wait for the child's next message within the limits (killing and reaping it past one); ``reap``: also when
    the message came (a one-call child)."""
    deadline = None if time_limit is None else time.monotonic() + time_limit
    started = next_memory_check = time.monotonic()
    while not recv.poll(WATCH_INTERVAL_S):
        records.drain()
        if memory_limit_mb is not None and time.monotonic() >= next_memory_check:
            closely = time.monotonic() - started < MEMORY_WATCH_CLOSELY_S
            next_memory_check = time.monotonic() + (WATCH_INTERVAL_S if closely else MEMORY_CHECK_S)
            rss = _group_private_mb(pid, unless_below=memory_limit_mb)
            if rss > memory_limit_mb:
                _kill_and_reap(template, pid)
                return Lost("memory", f"memory: the job used {rss:.0f} MB, over the limit of {memory_limit_mb} MB, "
                                      "and was stopped")
        if deadline is not None and time.monotonic() > deadline:
            _kill_and_reap(template, pid)
            return Lost("timeout", f"timeout: the job ran past the time limit of {time_limit:g} s and was stopped")
        if _gone(pid) and not recv.poll(0):  # a grandchild may hold the pipe open after the child died
            break
    try:
        records.drain()
        header = json.loads(recv.recv_bytes(MAX_HEADER_BYTES))
        blob = recv.recv_bytes(MAX_MODEL_BYTES) if isinstance(header, dict) and header.get("blob") else b""
    except (EOFError, OSError, ValueError):
        status = _kill_and_reap(template, pid)
        return _lost_from_status(status)
    if reap:
        _kill_and_reap(template, pid)
    if not isinstance(header, dict):
        return Lost("exception", "the method's process sent a malformed result")
    if "lost" in header:
        reason, message, tb = [*list(header["lost"]), "", "", ""][:3]
        return Lost(str(reason), str(message), str(tb))
    return header, blob


def _kill_and_reap(template: Template, pid: int) -> int | None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    status = template.wait(pid)
    if status is None:
        close_template()  # the job killed its template: the next job gets a fresh one
    return status


# -- the public calls ------------------------------------------------------------------------------


def run_blind(call: BlindCall, *, time_limit: float | None = None,
              memory_limit_mb: int | None = None) -> BlindResult | Lost:
    """Run ``call``'s method in a fresh sandbox process; its `BlindResult`, or a `Lost` saying why there is none.

    `Lost` reasons: ``timeout``, ``memory``, ``exit`` (``sys.exit``, ``os._exit``), ``signal`` (killed, or its
    template killed), ``interrupt``, ``exception`` (the method raised: the message starts with the exception's
    type, the traceback is the method process's).
    """
    return _run(call, time_limit, memory_limit_mb, {})


def probe_blind(call: BlindCall, *, time_limit: float | None = None) -> BlindResult | Lost:
    """`run_blind` that also scans the method process's memory after ``run`` for harness objects carrying truth
    (`truth_objects`): the conformance kit's proof that the real job process holds none."""
    return _run(call, time_limit, None, {"scan": True})


def _run(call: BlindCall, time_limit: float | None, memory_limit_mb: int | None,
         options: dict[str, Any]) -> BlindResult | Lost:
    before = sandbox_cpu_s(startup=False)
    got = _execute("run", call, tuple(call.plugins), time_limit=time_limit, memory_limit_mb=memory_limit_mb,
                   options=options)
    if isinstance(got, Lost):
        return got
    header, blob = got
    return BlindResult(output=header["output"], edited=blob if header.get("blob") else None,
                       cpu_s=sandbox_cpu_s(startup=False) - before,
                       read_log=[str(r) for r in header["read_log"]], audit=sorted(map(str, header["audit"])),
                       wall_s=float(header["wall_s"]),
                       peak_rss_mb=None if header["peak_rss_mb"] is None else float(header["peak_rss_mb"]),
                       audit_details=[str(r) for r in header.get("audit_details", [])],
                       truth_objects=header.get("truth_objects"))


def run_inprocess(call: BlindCall) -> BlindResult:
    """`run_blind`'s contract in this process (the debugger's shortcut): UNSAFE for published results.

    The method runs where the caller's objects live (a replicate, its truth), with no audit hook and no limits;
    ``run_mode`` says so, and the job record must carry it. Exceptions propagate to the debugger.
    """
    import cloudpickle

    with _determinism():
        task = make_task(call.inputs)
        method = _method(call)
        start = time.perf_counter()
        output = method.run(task)
        wall = time.perf_counter() - start
    if not isinstance(output, MethodOutput):
        raise TypeError(f"run() must return a MethodOutput, got {type(output).__name__}")
    return BlindResult(output=output.to_plain(),
                       edited=None if output.edited is None else cloudpickle.dumps(output.edited),
                       read_log=_read_log(task), audit=[], wall_s=wall, peak_rss_mb=None,
                       run_mode="inprocess (unsafe: not for published results)")


# -- the edited model, evaluated where it cannot touch the scorer -----------------------------------


class SandboxedModel(torch.nn.Module):
    """An edited model evaluated in a fresh sandbox process per call: the scoring process never unpickles it.

    ``forward(x)`` sends the pickled model and the whole batch to a new child of the template, which loads the
    model, computes its output under ``torch.no_grad`` and returns it; nothing is kept between calls, so a model
    cannot remember earlier batches. `forward_chunks` evaluates several batches in one process (one load,
    one ``forward`` per chunk), for `check_row_independent`. Gradients do not flow through it.

    Parameters
    ----------
    model_bytes : bytes
        ``BlindResult.edited``.
    plugins : tuple of str, optional
        Plugins to load first; None (the default) evaluates in this thread's current template, whatever it loaded
        (a plugin file's classes travel by value inside the pickle).
    time_limit, memory_limit_mb
        Per evaluation, as in `run_blind`; an evaluation that returns nothing raises `SandboxLost`.

    Attributes
    ----------
    audit : set of str
        Audit routes recorded while the model ran (a model's forward is method code too).
    """

    def __init__(self, model_bytes: bytes, *, plugins: tuple[str, ...] | None = None,
                 time_limit: float | None = None, memory_limit_mb: int | None = None):
        super().__init__()
        if not isinstance(model_bytes, bytes):
            raise TypeError(f"model_bytes must be bytes, got {type(model_bytes).__name__}")
        self._bytes = model_bytes
        self._plugins = None if plugins is None else tuple(plugins)
        self._session: _Session | None = None
        self._limits = {"time_limit": time_limit, "memory_limit_mb": memory_limit_mb}
        self.audit: set[str] = set()
        self.calls = 0  # forward calls answered
        self.processes = 0  # sandbox processes started for them

    @contextlib.contextmanager
    def session(self) -> Iterator[SandboxedModel]:
        """Within it, every ``forward`` runs in ONE sandbox process (the model loaded once, one ``forward`` per
        call): for `check_row_independent`, whose many small calls would otherwise fork a process each. A model
        that keeps state between calls shows it there as batch dependence; scoring never uses a session."""
        if self._session is not None:
            yield self
            return
        self._session = _Session(self._bytes, bool(self.training), self._plugins, **self._limits)
        self.processes += 1
        try:
            yield self
        finally:
            session, self._session = self._session, None
            self.audit.update(session.close())

    def forward_chunks(self, xs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The model's outputs on each of ``xs`` (float32 inputs), each computed by its own ``forward`` call."""
        chunks = [np.ascontiguousarray(np.asarray(x, dtype=np.float32)) for x in xs]
        self.calls += 1
        if self._session is not None:
            return [self._session.call(c) for c in chunks]
        self.processes += 1
        got = _execute("forward", {"model": self._bytes, "xs": chunks, "training": bool(self.training)},
                       self._plugins, **self._limits)
        if isinstance(got, Lost):
            raise SandboxLost(got)
        header, blob = got
        self.audit.update(map(str, header.get("audit", [])))
        return _outputs(header, blob)

    def forward(self, x: Any) -> torch.Tensor:
        arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        return torch.from_numpy(self.forward_chunks([arr])[0])

    def close(self) -> None:
        """Nothing to end: each call's process ends with the call (kept for the contract)."""


def _outputs(header: dict[str, Any], blob: bytes) -> list[np.ndarray]:
    """The arrays a forward child sent: float dtypes only, shapes that add up to the bytes."""
    try:
        shapes, dtypes = list(header["shapes"]), list(header["dtypes"])
        if len(shapes) != len(dtypes):
            raise ValueError
    except (KeyError, TypeError, ValueError):
        raise SandboxLost(Lost("exception", "the edited model's process sent a malformed result")) from None
    outs, offset = [], 0
    for shape, dtype in zip(shapes, dtypes, strict=True):
        if dtype not in ("float16", "float32", "float64"):
            raise SandboxLost(Lost("exception", f"the edited model returned dtype {dtype}, not a float"))
        dt = np.dtype(dtype)
        n = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
        if n < 0 or offset + n > len(blob):
            raise SandboxLost(Lost("exception", "the edited model's outputs do not match their declared shapes"))
        outs.append(np.frombuffer(blob, dtype=dt, count=n // dt.itemsize, offset=offset).reshape(shape).copy())
        offset += n
    if offset != len(blob):
        raise SandboxLost(Lost("exception", "the edited model's outputs do not match their declared shapes"))
    return outs


class _Session:
    """One sandbox child that loads a model once and answers forward calls until closed."""

    def __init__(self, model_bytes: bytes, training: bool, plugins: tuple[str, ...] | None, *,
                 time_limit: float | None, memory_limit_mb: int | None):
        import cloudpickle

        self._limits = (time_limit, memory_limit_mb)
        self._private = scratch.private_dir("job-")
        self._template, self._pid, self._send, self._recv, self._records = _spawn(plugins, self._private,
                                                                                  memory_limit_mb)
        self._audit: set[str] = set()
        with contextlib.suppress(OSError):
            self._send.send_bytes(cloudpickle.dumps(("session", {"model": model_bytes, "training": training}, {})))

    def call(self, x: np.ndarray) -> np.ndarray:
        return self.call_many([x])[0]

    def call_many(self, xs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """One round trip: the model's output on each of ``xs``, one ``forward`` each, in order."""
        try:
            self._send.send_bytes(pickle.dumps(list(xs)))
        except OSError:
            pass  # the child is gone: _receive says why
        got = _receive(self._template, self._pid, self._recv, self._records, *self._limits, reap=False)
        got = _checked(got, self._records)
        if isinstance(got, Lost):
            raise SandboxLost(got)
        header, blob = got
        self._audit.update(map(str, header.get("audit", [])))
        outs = _outputs(header, blob)
        if len(outs) != len(xs):
            raise SandboxLost(Lost("exception", "the edited model's process sent a malformed result"))
        return outs

    def close(self) -> set[str]:
        """End the child (and its group); the audit routes recorded while it ran."""
        self._send.close()
        self._recv.close()
        _kill_and_reap(self._template, self._pid)
        self._records.close()
        shutil.rmtree(self._private, ignore_errors=True)
        return self._audit | {r["route"] for r in self._records.routes}


def _chunked_logits(model: Any, chunks: list[np.ndarray]) -> list[np.ndarray]:
    """``logits(model, chunk)`` for each chunk; every `SandboxedModel` inside ``model`` (itself, or wrapped, e.g.
    by the unblinder's column permutation) answers them all from one process."""
    with contextlib.ExitStack() as stack:
        for module in model.modules() if isinstance(model, torch.nn.Module) else ():
            if isinstance(module, SandboxedModel):
                stack.enter_context(module.session())
        return [logits(model, c) for c in chunks]


ROW_TOLERANCE = 1e-4  # relative to the largest |logit| on the split: float32 round-off with room to spare
N_SINGLE_ROWS = 64  # rows checked one by one (chunks of size 1)


def check_row_independent(model: Any, x: np.ndarray, *, seed: int, rtol: float = ROW_TOLERANCE) -> str | None:
    """None when ``model``'s output on each row of ``x`` does not depend on the other rows of its batch.

    Compares the outputs on ``x`` whole with the outputs on the same rows shuffled, in chunks of one row (on
    ``N_SINGLE_ROWS`` rows drawn at random) and in chunks of a random size (between 2 and ``n/2``), all in one
    sandbox process for a `SandboxedModel`. Tolerance: ``|a - b| <= rtol * max(max|a|, 1e-3)``, with ``rtol``
    1e-4 by default: float32 summation order (a batch of one runs a matrix-vector product, a batch a
    matrix-matrix one) moves a logit by a few units of 1e-7 of the largest logit, and a model that reads its
    batch moves it by a visible fraction. Returns a one-line reason otherwise (the job fails as
    ``batch_dependent``).
    """
    x = np.asarray(x, dtype=np.float32)
    n = len(x)
    if n < 2:
        return None
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    singles = rng.choice(n, size=min(N_SINGLE_ROWS, n), replace=False)
    size = int(rng.integers(2, max(3, n // 2 + 1)))
    bounds = [*range(0, n, size), n]
    chunks = [x, x[perm], *(x[i:i + 1] for i in singles), *(x[perm][a:b] for a, b in itertools.pairwise(bounds))]
    outs = _chunked_logits(model, chunks)
    full = outs[0]
    if full.shape != (n,):
        return f"the model returned {full.shape[0] if full.ndim else 0} outputs for {n} rows"
    tol = rtol * max(float(np.max(np.abs(full))) if np.all(np.isfinite(full)) else 1.0, 1e-3)
    shuffled = np.empty(n)
    shuffled[perm] = outs[1]
    single = np.concatenate(outs[2:2 + len(singles)])
    chunked = np.empty(n)
    chunked[perm] = np.concatenate(outs[2 + len(singles):])
    for label, got, want in (("in shuffled order", shuffled, full), ("one row at a time", single, full[singles]),
                             (f"in chunks of {size} rows", chunked, full)):
        diff = np.abs(got - want)
        bad = ~(diff <= tol) & ~(np.isnan(got) & np.isnan(want))
        if bad.any():
            worst = float(np.nanmax(np.where(bad, diff, 0.0))) if np.isfinite(diff[bad]).any() else float("inf")
            return (f"batch_dependent: the edited model's outputs change {label} ({int(bad.sum())} of {len(got)} "
                    f"rows, by up to {worst:.3g}, tolerance {tol:.3g})")
    return None


# -- the child side ---------------------------------------------------------------------------------


def _prctl(option: int, arg: int) -> None:
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(option, arg, 0, 0, 0)


def _die_with(parent_pid: int) -> None:
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(0)


@contextlib.contextmanager
def _determinism() -> Iterator[None]:
    with deterministic(1):  # as the harness's jobs: deterministic torch, one thread in every pool
        yield


def _method(call: BlindCall) -> Any:
    cls = call.method if isinstance(call.method, type) else METHODS.get(call.method)
    params = dict(call.hparams)
    cls.check_params({k: v for k, v in params.items() if k != "random_state"})
    method = cls(**params)
    if method.random_state is None:
        method = method.clone(random_state=call.fit_seed)
    return method


def _read_log(task: Any) -> list[str]:
    log = getattr(task, "read_log", None)
    if log is None:
        log = sorted(getattr(task, "used", ()))
    return [str(entry) for entry in log]


def _preload(plugins: Sequence[str]) -> None:
    """What every job needs, imported once in the template: torch, cowbench, every method, the plugins."""
    import cloudpickle  # noqa: F401
    import scipy.linalg  # noqa: F401
    import sklearn.linear_model  # noqa: F401
    import threadpoolctl  # noqa: F401
    import torch

    import cowbench.access
    import cowbench.audit
    import cowbench.determinism
    import cowbench.method
    import cowbench.models
    from cowbench.registries import METHODS
    from cowbench.registry import load_plugin

    METHODS.scan()
    for plugin in plugins:
        load_plugin(plugin)
    with contextlib.suppress(Exception):  # loky counts physical cores once (a subprocess): cached here, not per job
        from joblib.externals.loky import cpu_count

        cpu_count(only_physical_cores=True)
    cowbench.audit.installed_roots()  # computed once here, inherited by every child
    # the first call imports torch._inductor (seconds): paid here, not by every job
    torch.use_deterministic_algorithms(torch.are_deterministic_algorithms_enabled())
    # unpickling a model imports torch's serialization config on first use (20 ms): paid here, not by every
    # edited model's evaluation
    pickle.loads(pickle.dumps(torch.nn.Linear(1, 1)))
    with _determinism():
        pass
    # everything loaded so far lives as long as the template: out of the cyclic collector's sight, so a child's
    # collections neither walk it nor write to its pages (which fork shares copy-on-write)
    gc.collect()
    gc.freeze()


def _template_main() -> None:
    """The template's loop: preload, then fork one child per ``fork`` request and reap it on ``wait``."""
    sock = socket.socket(fileno=int(sys.argv[1]))
    sys.argv = ["cowbench-sandbox"]
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)  # first: the parent may die while the imports run
    _prctl(_PR_SET_CHILD_SUBREAPER, 1)  # a job's double-forked grandchild is re-parented here, then killed
    try:
        hello = json.loads(sock.recv(65536))
        _die_with(int(hello["parent"]))  # (the parent's pid comes over the socket: argv names only the socket)
        _preload(hello["plugins"])
    except BaseException as exc:
        with contextlib.suppress(OSError):
            sock.send(json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode())
        os._exit(1)
    usage = resource.getrusage(resource.RUSAGE_SELF)  # its start-up (the imports), for the run's CPU account
    sock.send(json.dumps({"ready": True, "cpu_s": usage.ru_utime + usage.ru_stime}).encode())
    jobs: set[int] = set()
    while True:
        try:
            data, fds, _flags, _addr = socket.recv_fds(sock, 65536, 3)
        except OSError:
            os._exit(0)
        if not data:
            os._exit(0)  # the parent closed the socket: no more work
        message = json.loads(data)
        if message["op"] == "fork":
            for module in message.get("preload") or ():  # once per template: later jobs inherit the import
                if isinstance(module, str) and module not in sys.modules:
                    with contextlib.suppress(Exception):
                        importlib.import_module(module)
            pid = os.fork()
            if pid == 0:
                sock.close()
                _child_main(fds, message["private"], message["memory_mb"], os.getppid())
            for fd in fds:
                os.close(fd)
            jobs.add(pid)
            sock.send(json.dumps({"pid": pid}).encode())
        elif message["op"] == "wait":
            pid = int(message["pid"])
            status, cpu = -1, 0.0
            if pid in jobs:
                with contextlib.suppress(ChildProcessError):
                    # the kernel's account of the child and every descendant it reaped: what the job cost,
                    # measured outside the method's process (a method cannot under-report it)
                    _, status, usage = os.wait4(pid, 0)
                    cpu = usage.ru_utime + usage.ru_stime
                jobs.discard(pid)
            cpu += _kill_orphans(jobs)
            sock.send(json.dumps({"status": status, "cpu_s": cpu}).encode())


def _kill_orphans(jobs: set[int]) -> float:
    """Kill and reap every child of this template that is not a running job (a job's escaped grandchild); the CPU
    seconds of those reaped (an escaped grandchild's work is its job's cost)."""
    me = os.getpid()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) in jobs:
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                ppid = int(fh.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == me:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry.name), signal.SIGKILL)
    cpu = 0.0
    while True:
        try:
            pid, _, usage = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            return cpu
        if pid == 0:
            return cpu
        cpu += usage.ru_utime + usage.ru_stime
        jobs.discard(pid)


def _child_main(fds: Sequence[int], private: str, memory_mb: int | None, template_pid: int) -> None:
    """One job in a fresh child of the template; never returns."""
    in_fd, out_fd, rec_fd = fds
    code = 0
    try:
        os.setsid()  # its own session and process group: killed as a whole when the job ends
        _die_with(template_pid)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        recv, send = Connection(in_fd, writable=False), Connection(out_fd, readable=False)
        os.chdir(private)
        os.environ["TMPDIR"] = private
        tempfile.tempdir = private
        if memory_mb is not None:
            _limit_address_space(memory_mb)
        kind, body, options = pickle.loads(recv.recv_bytes())  # the harness's own call
        if kind != "session":
            recv.close()
        try:
            if kind == "run":
                header, blob = _serve_run(body, private, rec_fd, options)
            elif kind == "session":
                _serve_session(body, private, rec_fd, recv, send)
                header, blob = None, b""
            else:
                header, blob = _serve_forward(body, private, rec_fd)
        except SystemExit as exc:
            header, blob = {"lost": ["exit", f"the job called sys.exit({exc.code!r})", traceback.format_exc()]}, b""
        except KeyboardInterrupt:
            header, blob = {"lost": ["interrupt", "the job raised KeyboardInterrupt", traceback.format_exc()]}, b""
        except MemoryError:
            header, blob = {"lost": ["memory", f"memory: the job ran out of its {memory_mb} MB limit",
                                     traceback.format_exc()]}, b""
        except _Unstorable as exc:  # the output holds what no record can: the job's failure, not the method's
            header, blob = {"lost": ["unstorable", f"unstorable: the method's output cannot be stored: {exc}",
                                     traceback.format_exc()]}, b""
        except BaseException as exc:
            reason = "memory" if memory_mb is not None and _out_of_memory(exc) else "exception"
            header, blob = {"lost": [reason, f"{type(exc).__name__}: {exc}", traceback.format_exc()]}, b""
        if header is not None:
            header["blob"] = bool(blob)
            send.send_bytes(json.dumps(header, default=_json_default).encode())
            if blob:
                send.send_bytes(blob)
        send.close()
    except BaseException:
        traceback.print_exc()
        code = 70
    finally:
        os._exit(code)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not plain data")


def _out_of_memory(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "can't allocate memory" in text or "not enough memory" in text or "cannot allocate memory" in text


def _limit_address_space(memory_mb: int) -> None:
    """A backstop for allocations faster than the parent's watchdog: address space = what is mapped now + the
    limit + 1 GB of slack (mapped but untouched pages of the preloaded libraries do not count against the job)."""
    import resource

    with open("/proc/self/status") as fh:
        vm = next((int(line.split()[1]) for line in fh if line.startswith("VmSize:")), 0) * 1024
    cap = vm + (memory_mb + 1024) * 2**20
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))


def _peak_rss_mb() -> float | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


class _Unstorable(Exception):
    """The method's output cannot cross to the harness (an object in ``details``, an unpicklable edit)."""


def _serve_run(call: BlindCall, private: str, rec_fd: int, options: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    import cloudpickle

    plugin_files = tuple(p for p in call.plugins if p.endswith(".py"))
    recorder = AuditRecorder(private, installed_roots(extra=plugin_files), sink_fd=rec_fd)
    with _determinism():
        task = make_task(call.inputs)
        recorder.install()
        with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # reset the peak resident set: the job's peak, not the template's
        start = time.perf_counter()
        recorder.start()  # from the hand-over of the Task until run returns (and its output is taken apart)
        try:
            method = _method(call)
            output = method.run(task)
            wall = time.perf_counter() - start
            if not isinstance(output, MethodOutput):
                raise TypeError(f"run() must return a MethodOutput, got {type(output).__name__}")
            try:
                plain = output.to_plain()
                blob = b"" if output.edited is None else cloudpickle.dumps(output.edited)
            except (TypeError, ValueError, AttributeError, pickle.PicklingError) as exc:
                raise _Unstorable(f"{type(exc).__name__}: {exc}") from exc
        finally:
            recorder.stop()
    header = {"output": plain, "read_log": _read_log(task), "audit": recorder.routes(),
              "audit_details": [f"{r.route}: {r.detail} (from {r.origin})" for r in recorder.records],
              "wall_s": wall, "peak_rss_mb": _peak_rss_mb(), "has_model": output.edited is not None}
    if options.get("scan"):  # while the Task, the method and its output are alive, as during run
        header["truth_objects"] = scan_for_truth()
    return header, blob


def _serve_forward(body: dict[str, Any], private: str, rec_fd: int) -> tuple[dict[str, Any], bytes]:
    import torch

    recorder = AuditRecorder(private, installed_roots(), sink_fd=rec_fd)
    recorder.install()
    outs = []
    with _determinism():
        recorder.start()
        try:
            model = pickle.loads(body["model"])
            model.train(bool(body["training"]))
            with torch.no_grad():
                for x in body["xs"]:
                    out = model(torch.from_numpy(x))
                    outs.append(np.ascontiguousarray(out.detach().cpu().numpy()))
        finally:
            recorder.stop()
    for out in outs:
        if out.dtype.name not in ("float16", "float32", "float64"):
            raise TypeError(f"the edited model returned dtype {out.dtype}, not a float")
    header = {"shapes": [list(o.shape) for o in outs], "dtypes": [o.dtype.name for o in outs],
              "audit": recorder.routes()}
    return header, b"".join(o.tobytes() for o in outs)


def _serve_session(body: dict[str, Any], private: str, rec_fd: int, recv: Connection, send: Connection) -> None:
    """Load the model once, then answer one ``forward`` per request until the parent closes the pipe."""
    recorder = AuditRecorder(private, installed_roots(), sink_fd=rec_fd)
    recorder.install()
    with _determinism():
        recorder.start()
        model = pickle.loads(body["model"])  # only ever here, in a sandbox child
        model.train(bool(body["training"]))
        while True:
            try:
                xs = pickle.loads(recv.recv_bytes())  # the harness's own array, or list of arrays (one forward each)
            except (EOFError, OSError):
                return
            outs = []
            for x in xs if isinstance(xs, list) else [xs]:
                with torch.no_grad():
                    out = np.ascontiguousarray(model(torch.from_numpy(x)).detach().cpu().numpy())
                if out.dtype.name not in ("float16", "float32", "float64"):
                    raise TypeError(f"the edited model returned dtype {out.dtype}, not a float")
                outs.append(out)
            blob = b"".join(o.tobytes() for o in outs)
            header = {"shapes": [list(o.shape) for o in outs], "dtypes": [o.dtype.name for o in outs],
                      "audit": recorder.routes(), "blob": bool(blob)}
            send.send_bytes(json.dumps(header).encode())
            if blob:
                send.send_bytes(blob)


# -- what the conformance kit looks for in a method process -----------------------------------------


def truth_types() -> dict[str, Callable[[Any], bool]]:
    """Harness types that carry truth, each with a test of whether an instance does (by qualified class name)."""

    revealing = ("causal", "spurious", "core", "instrument")

    def revealing_truth(obj: Any) -> bool:
        roles = getattr(obj, "roles", {}) or {}
        return bool(getattr(obj, "world_coef", None)) or any(r in revealing for r in roles.values())

    def revealing_scm(obj: Any) -> bool:  # the Task's anonymous generator keeps no roles, texts or truth
        return revealing_truth(getattr(obj, "truth", None)) or any(
            getattr(v, "role", None) in revealing or getattr(v, "text", "") for v in getattr(obj, "variables", ()))

    def revealing_scenario(obj: Any) -> bool:
        spec = getattr(obj, "spec", None) or {}
        named = not (isinstance(spec, dict) and spec.get("generator") == "anonymous")
        return named or revealing_scm(getattr(obj, "scm", None))

    def revealing_variable(obj: Any) -> bool:
        return getattr(obj, "role", None) in revealing or bool(getattr(obj, "text", ""))

    def split_with_concepts(obj: Any) -> bool:
        return getattr(obj, "concepts", None) is not None

    def always(obj: Any) -> bool:
        return True

    return {"cowbench.jobs.Replicate": always, "cowbench.data.Truth": revealing_truth,
            "cowbench.data.Dataset": always, "cowbench.data.Split": split_with_concepts,
            "cowbench.generators.scm.Scenario": revealing_scenario, "cowbench.generators.scm.SCM": revealing_scm,
            "cowbench.generators.scm.Variable": revealing_variable,
            "cowbench.planted.PlantedTruth": always, "cowbench.scores.context.ScoreContext": always,
            "cowbench.jobs.JobSpec": always, "cowbench.jobs.ReplicateSpec": always}


def scan_for_truth() -> list[str]:
    """Every object tracked by the garbage collector in this process whose type is a truth-carrying harness type
    (`truth_types`), as sorted distinct type names."""
    import gc

    tests = truth_types()
    found = set()
    for obj in gc.get_objects():
        cls = type(obj)
        name = f"{cls.__module__}.{cls.__qualname__}"
        test = tests.get(name)
        if test is not None:
            with contextlib.suppress(Exception):
                if test(obj):
                    found.add(name)
    return sorted(found)


# -- scoring an edited model: every row it will be asked for, evaluated once in one sandbox process -------------


class InputRecorder(torch.nn.Module):
    """Stands in for the edited model during a dry run of the scores: records every batch it is given (float32,
    as the scorer feeds models) and answers zeros. The batches it saw are the rows `evaluate_once` needs."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[np.ndarray] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        arr = x.detach().cpu().numpy().astype(np.float32, copy=True)
        self.batches.append(arr)
        return torch.zeros(arr.shape[0], dtype=torch.float32)


class UnrecordedBatch(RuntimeError):
    """The scores asked the edited model about a batch their dry run did not record."""


class LookupModel(torch.nn.Module):
    """The edited model's outputs on the batches `evaluate_once` computed them for, answered in the order the
    scorer asks: the ``k``-th call gets ``outputs[k]`` when its input equals ``batches[k]`` (the scores are
    deterministic, so the real scoring asks what the dry run recorded); a recorded batch asked out of order still
    gets its answer. Any other input raises `UnrecordedBatch`. It used to be answered by a fresh process, which
    saw that batch alone and unchecked, and whose audit routes reached no record: the door `evaluate_once` closes.
    The standard suite asks none: 0 of 290 edit jobs on twelve scenarios did while that path was still open."""

    def __init__(self, batches: Sequence[np.ndarray], outputs: Sequence[np.ndarray]):
        super().__init__()
        self._batches = list(batches)
        self._outputs = list(outputs)
        self._next = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        arr = np.ascontiguousarray(x.detach().cpu().numpy().astype(np.float32))
        k = self._next
        if k < len(self._batches) and self._batches[k].shape == arr.shape and np.array_equal(self._batches[k], arr):
            self._next += 1
            return torch.from_numpy(np.asarray(self._outputs[k], dtype=np.float64))
        for j, b in enumerate(self._batches):  # asked out of order: any recorded batch still answers
            if b.shape == arr.shape and np.array_equal(b, arr):
                return torch.from_numpy(np.asarray(self._outputs[j], dtype=np.float64))
        raise UnrecordedBatch(
            f"the scores asked the edited model about a batch of shape {tuple(arr.shape)} that their dry run did not "
            f"record ({len(self._batches)} recorded): scores must ask the same batches whatever the model answers")


def evaluate_once(model_bytes: bytes, batches: Sequence[np.ndarray], *, seed: int,
                  rtol: float = ROW_TOLERANCE, plugins: tuple[str, ...] | None = None,
                  time_limit: float | None = None, memory_limit_mb: int | None = None,
                  audit: set[str] | None = None) -> tuple[list[np.ndarray], str | None]:
    """The edited model's outputs on each of ``batches`` and the row-independence verdict, from two fresh sandbox
    processes, one after the other.

    In the first, in this order: ``N_SINGLE_ROWS`` rows one at a time, every row of every batch shuffled
    together in chunks of a random size, the same mixture whole (every split and intervention the scorer asks
    about at once, so no batch statistic tells them apart: the scores use THESE outputs). In the second, started
    once the first has sent the mixture's outputs back and ended: each batch alone, as the scorer would send it.
    Every other evaluation must agree with the mixture's within ``rtol`` of the largest |logit| (as
    `check_row_independent`); otherwise the reason is returned (the job fails as ``batch_dependent``). So the
    model never sees a batch of one split alone before its scored outputs are fixed (sent with them, a model
    could read the batches alone from its process's memory while computing the mixture), and a model that keeps
    state across calls cannot replay, on the batches alone, answers it adapted to the pooled rows (in one
    process it could: a test model did). ``audit``: gets the audit routes the model's processes took (a model's
    ``forward`` is method code too: the job's record names them).
    """
    arrays = [np.ascontiguousarray(np.asarray(b, dtype=np.float32)) for b in batches]
    sizes = [len(a) for a in arrays]
    rows = np.concatenate([a.reshape(len(a), -1) for a in arrays]) if arrays else np.zeros((0, 0), np.float32)
    n = len(rows)
    if n == 0:
        return [np.zeros(0) for _ in arrays], None
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    mixed = np.ascontiguousarray(rows[perm]).reshape((n, *arrays[0].shape[1:])) if len(
        {a.shape[1:] for a in arrays}) == 1 else None
    if mixed is None:
        return [], "the scored batches have different row shapes"
    singles = rng.choice(n, size=min(N_SINGLE_ROWS, n), replace=False)
    size = int(rng.integers(2, max(3, n // 2 + 1)))
    bounds = [*range(0, n, size), n]
    chunks = [*(mixed[i:i + 1] for i in singles), *(mixed[a:b] for a, b in itertools.pairwise(bounds)), mixed,
              *arrays]
    # one message per process (a round trip per chunk was most of an edit job's evaluation time): each child loads
    # the model once and calls it on each of its chunks in order. The batches alone go to a second fresh process,
    # started after the first has answered and ended: a model that keeps state across calls (adapting to the rows
    # it has seen, then replaying its answers) starts there with none, so an adaptation shows as a difference
    n_scored = len(chunks) - len(arrays)
    raw: list[np.ndarray] = []
    for part in (chunks[:n_scored], chunks[n_scored:]):
        session = _Session(model_bytes, False, plugins, time_limit=time_limit, memory_limit_mb=memory_limit_mb)
        try:
            raw += session.call_many(part)
        finally:
            routes = session.close()
            if audit is not None:
                audit.update(routes)
    outs = [np.asarray(o, dtype=np.float64).reshape(-1) for o in raw]
    k, n_chunks = len(singles), len(bounds) - 1
    got = outs[k + n_chunks]
    if got.shape != (n,):
        return [], f"batch_dependent: the edited model returned {got.size} outputs for {n} rows"
    full = np.empty(n)
    full[perm] = got  # full[i]: row i of the concatenated batches
    per_batch = np.split(full, np.cumsum(sizes)[:-1])
    finite = np.isfinite(got)
    tol = rtol * max(float(np.max(np.abs(got[finite]))) if finite.any() else 1.0, 1e-3)

    def differs(label: str, a: np.ndarray, b: np.ndarray) -> str | None:
        if a.shape != b.shape:
            return f"batch_dependent: the edited model returned {a.size} outputs for {b.size} rows {label}"
        diff = np.abs(a - b)
        bad = ~(diff <= tol) & ~(np.isnan(a) & np.isnan(b))
        if not bad.any():
            return None
        worst = float(np.nanmax(np.where(bad, diff, 0.0))) if np.isfinite(diff[bad]).any() else float("inf")
        return (f"batch_dependent: the edited model's outputs change {label} ({int(bad.sum())} of {a.size} rows, "
                f"by up to {worst:.3g}, tolerance {tol:.3g})")

    checks = [("one row at a time", np.concatenate(outs[:k]), got[singles]),
              (f"in chunks of {size} rows", np.concatenate(outs[k:k + n_chunks]), got)]
    checks += [(f"on scored batch {j} alone ({sizes[j]} rows)", outs[k + n_chunks + 1 + j], per_batch[j])
               for j in range(len(arrays))]
    for label, a, b in checks:
        reason = differs(label, a, b)
        if reason:
            return per_batch, reason
    return per_batch, None
