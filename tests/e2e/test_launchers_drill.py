"""The kill -9 drill: kill ``cowbench run`` at random moments, resume, and count jobs lost or corrupted.

A job is *lost* when, after the final resume, a planned job has no valid record; *corrupted* when its record
differs from the one a clean, uninterrupted run writes (job files are deterministic, so byte equality is the
check). Both counts must be 0.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cowbench.store import scan_store

ARGS = ["smoke", "--replicates", "2", "--methods", "logistic,erase_spurious,group_reweight"]


def _cmd(out: Path, launcher: str) -> list[str]:
    return [sys.executable, "-m", "cowbench", "run", *ARGS, "--out", str(out), "--launcher", launcher, "--jobs", "2"]


def drill(tmp_path: Path, kills: int, launcher: str, seed: int = 0, window: float = 12.0) -> dict[str, int]:
    """Run the drill, each kill at a uniform moment in (0.5, ``window``) s; returns the counts."""
    reference = tmp_path / "reference"
    ref = subprocess.run(_cmd(reference, launcher), capture_output=True, text=True, timeout=600)
    assert ref.returncode == 0, ref.stderr
    want = {p.name: p.read_bytes() for p in (reference / "jobs").glob("*/*.json")}
    out = tmp_path / "drilled"
    rng = random.Random(seed)
    mid_sweep = 0  # kills that landed with some but not all jobs stored
    processes = orphans = 0  # the run's descendants just before each kill, and those alive 20 s after it
    orphan_names: list[bytes] = []
    for _ in range(kills):
        proc = subprocess.Popen(_cmd(out, launcher), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.5, window))
        with_result = proc.poll() is not None
        if not with_result:
            procs = _descendants(proc.pid)
            os.kill(proc.pid, signal.SIGKILL)
            processes += len(procs)
            left = _orphans_after(procs)
            orphans += len(left)
            for pid in left:  # name them (for the report), then end them so the next kill starts clean
                with contextlib.suppress(OSError):
                    orphan_names.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")[:160])
                    os.kill(pid, signal.SIGKILL)
        proc.wait()
        present = len(list((out / "jobs").glob("*/*.json")))
        mid_sweep += not with_result and 0 < present < len(want)
        if with_result:  # it finished before the kill: start over so that later kills still hit work
            for path in (out / "jobs").glob("*/*.json"):
                path.unlink()
    scan = scan_store(out)
    invalid, done_before_resume = len(scan.invalid), len(scan.records)
    resumes = 0
    while True:
        resumes += 1
        done = subprocess.run(_cmd(out, launcher), capture_output=True, text=True, timeout=600)
        if done.returncode == 0 or resumes >= 3:
            break
    # a job running at two kills is stored as failed, reason killed_run (a poison job cannot block a suite);
    # counted here, then retried as a user would, with --retry-failed
    killed_run = sum(r.get("reason") == "killed_run" for r in scan_store(out).records)
    if killed_run:
        subprocess.run([*_cmd(out, launcher), "--retry-failed"], capture_output=True, text=True, timeout=600)
    got = {p.name: p.read_bytes() for p in (out / "jobs").glob("*/*.json")}
    return {"kills": kills, "kills_mid_sweep": mid_sweep, "lost": len(set(want) - set(got)),
            "corrupted": sum(got.get(k) != v for k, v in want.items() if k in got),
            "invalid_before_resume": invalid, "done_before_resume": done_before_resume, "planned": len(want),
            "resumes": resumes, "killed_run": killed_run, "processes_at_kills": processes, "orphans": orphans,
            "orphan_commands": orphan_names}


@pytest.mark.slow
def test_kill_9_drill_loses_and_corrupts_nothing(tmp_path):
    counts = drill(tmp_path, kills=12, launcher="joblib")
    assert counts["lost"] == 0 and counts["corrupted"] == 0 and counts["orphans"] == 0, counts



# -- orphans: every process a run started ends with it -----------------------------------------------------


def _descendants(pid: int) -> dict[int, str]:
    """pid -> start time of every live descendant of ``pid`` (from /proc)."""
    from cowbench.launchers import process_start_time

    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_bytes().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, stack = {}, list(children.get(pid, []))
    while stack:
        child = stack.pop()
        start = process_start_time(child)
        if start is not None:
            found[child] = start
        stack.extend(children.get(child, []))
    return found


def _alive(procs: dict[int, str]) -> list[int]:
    from cowbench.launchers import process_start_time

    return [pid for pid, start in procs.items() if process_start_time(pid) == start]


def _orphans_after(procs: dict[int, str], within: float = 20.0) -> list[int]:
    deadline = time.monotonic() + within
    while _alive(procs) and time.monotonic() < deadline:
        time.sleep(0.2)
    return _alive(procs)


WATCHED_POOL = """
import os, sys, time
from pathlib import Path
from cowbench.launchers import end_with_run, get_launcher, run_identity

RUN = run_identity()

def work(i):
    end_with_run(*RUN)
    Path(sys.argv[1], str(os.getpid())).touch()
    time.sleep(120)
    return i

with get_launcher("joblib").session(2) as run:
    for _ in run(work, range(4)):
        pass
"""


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_joblib_workers_end_when_their_run_is_killed(tmp_path, sig):
    """The cheap drill: a joblib session whose workers sleep; kill the parent; no worker outlives it."""
    script = tmp_path / "pool.py"
    script.write_text(WATCHED_POOL)
    marks = tmp_path / "marks"
    marks.mkdir()
    proc = subprocess.Popen([sys.executable, str(script), str(marks)], cwd=tmp_path)
    deadline = time.monotonic() + 120
    while len(list(marks.iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(list(marks.iterdir())) == 2, "the workers never started"
    procs = _descendants(proc.pid)
    assert {int(p.name) for p in marks.iterdir()} <= set(procs)
    os.kill(proc.pid, sig)
    proc.wait(timeout=60)
    assert _orphans_after(procs) == []


SMALL = ["smoke", "--replicates", "1", "--methods", "logistic,erase_spurious", "--jobs", "2", "--quiet"]


def _start_run(out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "cowbench", "run", *SMALL, "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _wait_for_isolated_children(proc: subprocess.Popen, want: int = 2, within: float = 300.0) -> dict[int, str]:
    """The run's processes once ``want`` workers each have their isolated child (jobs are running)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and proc.poll() is None:
        procs = _descendants(proc.pid)
        isolated = [p for p in procs if b"cowbench.isolation" in Path(f"/proc/{p}/cmdline").read_bytes()]
        if len(isolated) >= want:
            return procs
        time.sleep(0.5)
    raise AssertionError("the run never started its isolated children")


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_a_killed_or_terminated_joblib_run_leaves_no_process_behind(tmp_path, sig):
    """The kill drill with process counts: every worker and isolated child of a joblib run ends with it."""
    proc = _start_run(tmp_path / "out")
    procs = _wait_for_isolated_children(proc)
    os.kill(proc.pid, sig)
    code = proc.wait(timeout=120)
    err = proc.stderr.read()
    assert _orphans_after(procs) == [], f"{len(procs)} processes, some alive after the run"
    if sig == signal.SIGTERM:  # as clean as Ctrl-C: one line, exit 130
        assert code == 130 and err.strip().splitlines()[-1] == "cowbench: error: interrupted", err
        assert "Traceback" not in err, err


# -- the working folder is not on the workers' import path --------------------------------------------------

FIND_TORCH = """
import importlib.util, json, sys
from cowbench.launchers import get_launcher, safe_import_path


def where_is_torch(_):
    import sys
    return importlib.util.find_spec("torch").origin, "" in sys.path or any(p.endswith("here") for p in sys.path)


with safe_import_path():
    with get_launcher("joblib").session(1) as run:
        pool = list(run(where_is_torch, [0]))[0]
    from cowbench.isolation import call_isolated, close_isolated

    # a builtin, as the child cannot import this script's functions (they live in __main__)
    isolated = call_isolated(eval, ("(__import__('importlib.util').util.find_spec('torch').origin, "
                                    "'' in __import__('sys').path or any(p.endswith('here') "
                                    "for p in __import__('sys').path))",))
    close_isolated()
print(json.dumps({"pool": pool, "isolated": isolated}))
"""


def test_a_torch_py_in_the_working_folder_is_never_imported_by_workers(tmp_path):
    here = tmp_path / "here"
    here.mkdir()
    (here / "torch.py").write_text("raise SystemExit('the torch.py of the working folder was imported')\n")
    (here / "run.py").write_text(FIND_TORCH)
    # run as `python run.py` from that folder: the folder is first on this process's sys.path, as with
    # `python -m cowbench`, and the workers would inherit it
    done = subprocess.run([sys.executable, "run.py"], cwd=here, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    import json

    found = json.loads(done.stdout.strip().splitlines()[-1])
    for where in ("pool", "isolated"):
        origin, cwd_on_path = found[where]
        assert not origin.startswith(str(here)) and "site-packages" in origin, (where, origin)
        assert not cwd_on_path, where


# -- a job that kills the process running it cannot block a suite -------------------------------------------

POISON = b'''
import os
import signal

from cowbench.method import Method, MethodOutput, register_method


@register_method
class KillsItsSupervisor(Method):
    """Kills the process that supervises it (its parent), every time it runs.

    References
    ----------
    None: a test fixture.
    """

    name = "test_kills_supervisor"
    family = "robust_training"
    access = frozenset({"pooled"})
    outputs = frozenset({"world"})

    def __init__(self, *, random_state=None):
        self.random_state = random_state

    def run(self, task):
        os.kill(os.getppid(), signal.SIGKILL)
        return MethodOutput(world_coef={v: 0.0 for v in task.variables})
'''

POISON_SUITE = ('[suite]\nname = "poison"\nreplicates = 1\n[[scenarios]]\nname = "cow"\n[methods]\n'
                'include = ["logistic", "test_kills_supervisor"]\n')


def _poison_run(tmp_path: Path, launcher: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cowbench", "run", str(tmp_path / "poison.toml"), "--out",
                           str(tmp_path / "out"), "--launcher", launcher, "--jobs", "2", "--quiet", "--plugins",
                           str(tmp_path / "poison.py")], capture_output=True, text=True, timeout=900)


def _records(out: Path) -> dict[str, dict]:
    import json

    return {json.loads(p.read_bytes())["spec"]["method"]: json.loads(p.read_bytes())
            for p in (out / "jobs").glob("*/*.json")}


@pytest.mark.slow
@pytest.mark.parametrize("launcher,runs", [("serial", 3), ("joblib", 1)])
def test_a_job_that_kills_its_supervisor_is_retried_once_then_stored_as_killed_run(tmp_path, launcher, runs):
    """serial: the job kills the run itself, twice; the third run stores it as failed. joblib: it kills its
    worker, the pool restarts one worker at a time, twice; the same run stores it as failed."""
    (tmp_path / "poison.py").write_bytes(POISON)
    (tmp_path / "poison.toml").write_text(POISON_SUITE)
    for attempt in range(runs):
        done = _poison_run(tmp_path, launcher)
        if attempt < runs - 1:  # the run died with the job (SIGKILL of the run: -9)
            assert done.returncode == -9, done.stderr
    assert done.returncode == 1, done.stderr  # a failed job, not a crash
    records = _records(tmp_path / "out")
    assert records["logistic"]["status"] == "ok"
    poison = records["test_kills_supervisor"]
    assert poison["status"] == "failed" and poison["reason"] == "killed_run", poison
    assert "died 2 times" in poison["error"]
    assert not list((tmp_path / "out" / "attempts").glob("*/*.json"))


DIES_ONCE = """
import os, signal, sys
from pathlib import Path
from cowbench.launchers import EngineError, get_launcher


def work(i):
    mark = Path(sys.argv[1])
    if i == 1 and not mark.exists():  # the first time only: kill the worker process running this call
        mark.touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return i


with get_launcher("joblib").session(2) as run:
    print(sorted(r if not isinstance(r, EngineError) else "lost" for r in run(work, range(4))))
"""


def test_a_joblib_worker_that_dies_costs_no_other_call(tmp_path):
    """loky breaks its whole pool when a worker dies; the session reruns what returned nothing."""
    (tmp_path / "dies.py").write_text(DIES_ONCE)
    done = subprocess.run([sys.executable, str(tmp_path / "dies.py"), str(tmp_path / "mark")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[0, 1, 2, 3]" and (tmp_path / "mark").exists()


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["dask", "joblib"])
def test_ctrl_c_ends_a_run_with_one_line_and_no_worker_tracebacks(tmp_path, launcher):
    """Ctrl-C at a terminal reaches the whole process group: only the run answers, in one line."""
    if launcher == "dask":
        pytest.importorskip("dask.distributed")
    proc = subprocess.Popen([sys.executable, "-m", "cowbench", "run", *SMALL, "--out", str(tmp_path / "out"),
                             "--launcher", launcher], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # its own process group, as a terminal's foreground job
    procs = _wait_for_isolated_children(proc)
    os.killpg(proc.pid, signal.SIGINT)
    code = proc.wait(timeout=180)
    err = proc.stderr.read()
    assert code == 130, err
    assert err.strip().splitlines()[-1] == "cowbench: error: interrupted", err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert _orphans_after(procs) == []


if __name__ == "__main__":  # python tests/e2e/test_launchers_drill.py DIR [KILLS] [LAUNCHER]
    import tempfile

    where = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp())
    print(drill(where, int(sys.argv[2]) if len(sys.argv) > 2 else 12, sys.argv[3] if len(sys.argv) > 3 else "joblib",
                window=float(sys.argv[4]) if len(sys.argv) > 4 else 12.0))
