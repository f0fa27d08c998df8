"""Worker process isolation: a call runs in a persistent child process, so its death or overrun fails that call alone.

A job may hang, call ``os._exit``, ``sys.exit``, kill its own process or raise ``KeyboardInterrupt``; none
of that may abort the sweep or lose the job's record. Each engine worker (the main process for ``serial``,
each joblib or Dask worker) therefore hands its calls to one child process that it keeps for many calls: the
child pays the imports (torch) and the replicate cache once, not per job. When the child dies or runs past
the time limit, the caller gets a `Lost` describing why, kills and forgets the child, and starts a new one
for the next call.

The child talks over two pipes with `multiprocessing.connection` framing (the calls are cowbench's own
functions and specs). It runs in its own session, so a Ctrl-C at the terminal reaches the parent only, and
it asks Linux to kill it when its parent dies, so a killed run leaves no orphan behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable, Mapping
from multiprocessing.connection import Connection
from typing import Any

from cowbench.errors import Lost


def _lost_from_returncode(code: int) -> Lost:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return Lost("signal", f"the worker process was killed by {name} while running the job")
    return Lost("exit", f"the worker process exited with code {code} while running the job")


class IsolatedWorker:
    """One persistent child process that runs calls one at a time; restarted after it dies or overruns."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._send: Connection | None = None
        self._recv: Connection | None = None

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def _start(self) -> None:
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        try:
            self._proc = subprocess.Popen(
                # -P: the working folder is not put on sys.path (``-m`` would put it first, so a ``torch.py`` in
                # the folder ``cowbench run`` starts from would be imported instead of torch)
                [sys.executable, "-P", "-m", "cowbench.isolation", str(to_child_r), str(from_child_w),
                 str(os.getpid())],
                pass_fds=(to_child_r, from_child_w), stdin=subprocess.DEVNULL,
                stdout=2,  # whatever a method prints goes to stderr, so the CLI's stdout stays the report
                start_new_session=True)
        finally:
            os.close(to_child_r)
            os.close(from_child_w)
        self._send = Connection(to_child_w, readable=False)
        self._recv = Connection(from_child_r, writable=False)
        # wait for the child's imports (seconds under load) before any job's clock starts
        try:
            self._recv.recv()
        except (EOFError, OSError):
            code = self._proc.wait()
            self.close()
            raise RuntimeError(f"the isolated worker process failed to start (exit code {code})") from None

    def close(self) -> None:
        """Stop the child (closing its pipe ends it; a stuck one is killed)."""
        for conn in (self._send, self._recv):
            if conn is not None:
                conn.close()
        if self._proc is not None:
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = self._send = self._recv = None

    def _kill(self) -> None:
        if self._proc is not None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()
        self.close()

    def call(self, fn: Callable[..., Any], args: tuple[Any, ...] = (), kwargs: Mapping[str, Any] | None = None,
             time_limit: float | None = None) -> Any:
        """``fn(*args, **kwargs)`` in the child; a `Lost` when it dies, exits, is interrupted or overruns."""
        if self._proc is None or self._proc.poll() is not None:
            self.close()
            self._start()
        assert self._send is not None and self._recv is not None
        try:
            self._send.send((fn, tuple(args), dict(kwargs or {})))
        except OSError:  # the child died between two calls: one fresh start, then give up honestly
            self._kill()
            self._start()
            self._send.send((fn, tuple(args), dict(kwargs or {})))
        if not self._recv.poll(time_limit):
            self._kill()
            return Lost("timeout", f"timeout: the job ran past the time limit of {time_limit:g} s and was stopped")
        try:
            kind, payload = self._recv.recv()
        except (EOFError, OSError):
            assert self._proc is not None
            code = self._proc.wait()
            self.close()
            return _lost_from_returncode(code)
        if kind == "lost":
            return Lost(*payload)
        return payload


_LOCAL = threading.local()  # one child per thread: a Dask worker may run several tasks at once


def call_isolated(fn: Callable[..., Any], args: tuple[Any, ...] = (), kwargs: Mapping[str, Any] | None = None,
                  time_limit: float | None = None) -> Any:
    """`IsolatedWorker.call` on this thread's persistent child (started on first use)."""
    worker = getattr(_LOCAL, "worker", None)
    if worker is None:
        worker = _LOCAL.worker = IsolatedWorker()
    return worker.call(fn, args, kwargs, time_limit)


def close_isolated() -> None:
    """Stop this thread's child, if any (the next `call_isolated` starts a new one)."""
    worker = getattr(_LOCAL, "worker", None)
    if worker is not None:
        worker.close()
        _LOCAL.worker = None


def _die_with_parent(parent_pid: int) -> None:
    # Linux only: PR_SET_PDEATHSIG asks the kernel to SIGKILL us when the parent goes, so a `kill -9` of the
    # run (or a hung job whose parent was killed) leaves no orphan computing for nobody
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(0)


def _warm_up() -> None:
    """Pay the imports every job needs before the parent starts timing jobs (seconds on a loaded machine)."""
    import torch

    import cowbench.jobs
    import cowbench.scores  # noqa: F401

    # the first call imports torch._inductor (about 5 s under load): it must not count against a job's limit
    torch.use_deterministic_algorithms(torch.are_deterministic_algorithms_enabled())


def _child_main(argv: list[str]) -> int:
    recv = Connection(int(argv[0]), writable=False)
    send = Connection(int(argv[1]), readable=False)
    _die_with_parent(int(argv[2]))
    _warm_up()
    send.send(("ready", None))
    while True:
        try:
            fn, args, kwargs = recv.recv()
        except (EOFError, OSError):  # the parent closed the pipe: no more work
            return 0
        try:
            result = fn(*args, **kwargs)
        except SystemExit as exc:  # sys.exit inside the job is that job's failure, not the worker's end
            send.send(("lost", ("exit", f"the job called sys.exit({exc.code!r})", traceback.format_exc())))
            continue
        except KeyboardInterrupt:
            send.send(("lost", ("interrupt", "the job raised KeyboardInterrupt", traceback.format_exc())))
            continue
        except BaseException as exc:  # the callers store their own failures; this is a last resort
            send.send(("lost", ("exception", f"{type(exc).__name__}: {exc}", traceback.format_exc())))
            continue
        send.send(("ok", result))


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
