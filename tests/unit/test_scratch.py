"""The sandbox's scratch folders: a killed harness's folder is removed by the next one; a live one's never."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from cowbench import scratch


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_sweep_removes_the_folders_of_dead_processes_only(tmp_path):
    dead = tmp_path / f"{scratch.PREFIX}{_dead_pid()}-abc"
    (dead / "job-x").mkdir(parents=True)
    (dead / "job-x" / "file").write_text("left by a killed run")
    live = tmp_path / f"{scratch.PREFIX}{os.getppid()}-abc"  # the process that started this one: alive
    mine = tmp_path / f"{scratch.PREFIX}{os.getpid()}-abc"
    other = tmp_path / f"cowbench-job-{_dead_pid()}"  # not a scratch folder's name: not ours to judge
    for folder in (live, mine, other):
        folder.mkdir()
    assert scratch.sweep_dead(tmp_path) == [dead.name]
    assert not dead.exists() and live.exists() and mine.exists() and other.exists()
    assert scratch.sweep_dead(tmp_path) == []  # nothing left to remove


def test_private_folders_live_in_this_processs_scratch_folder_which_exit_removes(tmp_path):
    code = ("from cowbench import scratch\nimport os\n"
            "a, b = scratch.private_dir('job-'), scratch.private_dir('job-')\n"
            "print(a, b, scratch.scratch_dir(), flush=True)\n")
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    a, b, root = map(Path, out.split())
    assert a.parent == b.parent == root and a != b and root.parent == tmp_path
    assert root.name.startswith(scratch.PREFIX)
    assert not root.exists()  # removed at a normal exit


def test_a_run_killed_with_sigkill_leaves_a_folder_the_next_process_removes(tmp_path):
    code = ("from cowbench import scratch\nimport time\n"
            "print(scratch.private_dir('job-'), flush=True)\ntime.sleep(60)\n")
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
    left = Path(proc.stdout.readline().strip())
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert left.exists()  # nothing ran at exit: the contrast that makes the next check able to fail
    out = subprocess.run([sys.executable, "-c", "from cowbench import scratch; print(scratch.scratch_dir())"],
                         env=env, capture_output=True, text=True, check=True).stdout
    assert not left.parent.exists() and Path(out.strip()).parent == tmp_path
