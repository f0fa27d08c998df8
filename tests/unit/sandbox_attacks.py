"""Attack methods for the sandbox tests, loaded as a plugin file (``--plugins``) by the sandbox's template.

Each walks through one door of issue 15 or 17 (frames, the garbage collector, the results folder, processes
that outlive their job, the template, memory, time). The Task they get is a plain dict (the tests' stand-in).
"""

from __future__ import annotations

import ctypes
import gc
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np

from cowbench.method import Method, MethodOutput, register_method

_REF = "References\n    ----------\n    .. [1] cowbench issue 15, 'Methods run blind'.\n"


def _attack(name: str, **params):
    """Register ``run`` as a pooled-access method named ``name`` with keyword-only ``params``."""

    def wrap(run):
        def __init__(self, *, random_state=None, **kwargs):
            self.random_state = random_state
            for key, default in params.items():
                setattr(self, key, kwargs.pop(key, default))
            if kwargs:
                raise TypeError(f"unknown {sorted(kwargs)}")

        import inspect

        sig = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
               *(inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=v) for k, v in params.items()),
               inspect.Parameter("random_state", inspect.Parameter.KEYWORD_ONLY, default=None)]
        __init__.__signature__ = inspect.Signature(sig)
        cls = type(name, (Method,), {"name": name, "family": "estimation", "access": frozenset({"pooled"}),
                                     "outputs": frozenset({"world", "edit"}), "__init__": __init__,
                                     "run": lambda self, task: run(self, task),
                                     "__doc__": f"Attack {name}.\n\n    {_REF}"})
        return register_method(cls)

    return wrap


@_attack("attack_honest")
def _honest(self, task):
    x = np.asarray(task["x"])
    return MethodOutput(world_coef={"v0": float(x[:, 0].mean())}, details={"rows": len(x), "arr": np.arange(3)},
                        localized={"point": "hidden.0", "unit_scores": np.arange(4, dtype=np.float32)})


@_attack("attack_frames")
def _frames(self, task):
    names, frame = [], sys._getframe(1)
    while frame is not None:
        names.extend(frame.f_locals)
        frame = frame.f_back
    return MethodOutput(details={"locals": len(names)})


@_attack("attack_traceback")
def _traceback(self, task):
    try:
        raise ValueError
    except ValueError as exc:
        frame = exc.__traceback__.tb_frame.f_back
    return MethodOutput(details={"caller": frame.f_code.co_name})


@_attack("attack_gc")
def _gc(self, task):
    return MethodOutput(details={"objects": len(gc.get_objects())})


@_attack("attack_open", path="")
def _open(self, task):
    with open(self.path) as fh:
        return MethodOutput(details={"read": fh.read()})


@_attack("attack_subprocess")
def _subprocess(self, task):
    return MethodOutput(details={"code": subprocess.run(["true"]).returncode})


@_attack("attack_socket")
def _socket(self, task):
    socket.socket().close()
    return MethodOutput()


@_attack("attack_ctypes")
def _ctypes(self, task):
    ctypes.CDLL("libc.so.6")
    return MethodOutput()


@_attack("attack_orphans")
def _orphans(self, task):
    """A subprocess, a new-session subprocess (outside the job's process group) and a forked child, all asleep."""
    plain = subprocess.Popen(["sleep", "600"])
    detached = subprocess.Popen(["sleep", "600"], start_new_session=True)
    pid = os.fork()
    if pid == 0:
        time.sleep(600)
        os._exit(0)
    return MethodOutput(details={"pids": [plain.pid, detached.pid, pid]})


@_attack("attack_kill_template")
def _kill_template(self, task):
    os.kill(os.getppid(), signal.SIGKILL)
    time.sleep(30)
    return MethodOutput()


@_attack("attack_memory", mb=4000, step=50, delay=0.0)
def _memory(self, task):
    time.sleep(self.delay)  # past the watchdog's first seconds, when it checks memory less often
    held = []
    for _ in range(self.mb // self.step):
        held.append(np.ones(self.step * 2**20 // 8))  # touched: resident, not just reserved
        time.sleep(0.02)
    return MethodOutput(details={"held": len(held)})


@_attack("attack_sleep", seconds=600.0)
def _sleep(self, task):
    time.sleep(self.seconds)
    return MethodOutput()


@_attack("attack_raise")
def _raise(self, task):
    raise ValueError("boom from the method")


@_attack("attack_exit")
def _exit(self, task):
    sys.exit(3)


@_attack("attack_wrong_output")
def _wrong_output(self, task):
    return {"world_coef": {"v0": 1.0}}


@_attack("attack_environment")
def _environment(self, task):
    return MethodOutput(details={
        "cwd": os.getcwd(), "listdir": sorted(os.listdir(".")), "argv": list(sys.argv),
        "environ": dict(os.environ), "path": list(sys.path), "own_group": os.getpgid(0) == os.getpid(),
        "session": os.getsid(0) == os.getpid()})


def _pipes_for_writing() -> list[int]:
    """This process's pipe descriptors open for writing, lowest first (found through /proc/self/fd)."""
    found = []
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("pipe:") and os.get_blocking(fd) is not None:
                with open(f"/proc/self/fdinfo/{fd}") as fh:
                    flags = int(next(line for line in fh if line.startswith("flags:")).split()[1], 8)
                if flags & (os.O_WRONLY | os.O_RDWR):
                    found.append(fd)
        except OSError:
            continue
    return sorted(found)


@_attack("attack_forge", target="result")
def _forge(self, task):
    """Walks the gc, then writes a forged result claiming no audit route into its result pipe (or writes into,
    closes, or replaces its record pipe)."""
    import json
    import struct

    if self.target == "hide_read":
        sys.audit("cowbench.task.read", "edit_target")  # what the Task announces when the edit target is read
    else:
        gc.get_objects()
    pipes = [fd for fd in _pipes_for_writing() if fd > 2]
    result_fd, record_fd = pipes[0], pipes[-1]
    if self.target in ("result", "hide_read"):
        header = json.dumps({"output": MethodOutput().to_plain(), "read_log": [], "audit": [], "audit_details": [],
                             "wall_s": 0.0, "peak_rss_mb": None, "blob": False}).encode()
        os.write(result_fd, struct.pack("!i", len(header)) + header)
        time.sleep(30)
    elif self.target == "garbage":
        os.write(record_fd, b'{"unfinished')
    elif self.target == "close":
        os.close(record_fd)
    elif self.target == "replace":
        _keep_open, w = os.pipe()
        os.dup2(w, record_fd)
    gc.get_referrers(task)  # the next record: it must not be lost
    return MethodOutput()


def _burn(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


@_attack("attack_cpu", seconds=0.6)
def _cpu(self, task):
    """Burn CPU in a forked child it waits for and in itself, then claim to have used none (a cost account the
    method could under-report would let a costly method look cheap)."""
    pid = os.fork()
    if pid == 0:
        _burn(self.seconds)
        os._exit(0)
    os.waitpid(pid, 0)
    _burn(self.seconds)
    import resource

    resource.getrusage = lambda who: None  # the harness must not ask the method's process how much it used
    return MethodOutput(details={"claimed_cpu_s": 0.0})
