"""Launchers and worker isolation end to end: faulty methods fail their own job, two runs split a directory.

Every test runs the CLI on a tiny suite (one small cow scenario, a linear subject, one replicate) with
test-double methods registered from a plugin file (``--plugins``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

PLUGIN = '''
import os
import signal
import sys
import time

import numpy as np

from cowbench.methods import Method, MethodOutput, register_method

# the test's log, baked in by the fixture: a method's process keeps an allow-listed environment only, so a path
# in an environment variable would not reach the sandbox template
_LOG = "@LOG@"
with open(_LOG, "a") as fh:  # one line per execution of this file, by the process executing it (at import)
    fh.write(f"load {os.getpid()} {os.getppid()}\\n")
_GO = _LOG + ".go"  # t_gate waits for the test to create this file


class _Double(Method):
    """A test double.

    References
    ----------
    None (a test double).
    """
    family = "estimation"
    access = frozenset({"pooled"})
    outputs = frozenset({"world"})

    def __init__(self, *, random_state=None):
        self.random_state = random_state

    def coefs(self, task):
        return {v: 0.5 for v in task.variables}

    def run(self, task):
        self.act(task)
        return MethodOutput(world_coef=self.coefs(task), details=self.details())

    def act(self, task):
        pass

    def details(self):
        return {}


@register_method
class Sleeper(_Double):
    __doc__ = _Double.__doc__
    name = "t_sleeper"

    def act(self, task):
        while True:
            time.sleep(1)


@register_method
class OsExit(_Double):
    __doc__ = _Double.__doc__
    name = "t_os_exit"

    def act(self, task):
        os._exit(3)


@register_method
class SysExit(_Double):
    __doc__ = _Double.__doc__
    name = "t_sys_exit"

    def act(self, task):
        sys.exit(4)


@register_method
class SelfKill(_Double):
    __doc__ = _Double.__doc__
    name = "t_self_kill"

    def act(self, task):
        os.kill(os.getpid(), signal.SIGKILL)


@register_method
class Interrupt(_Double):
    __doc__ = _Double.__doc__
    name = "t_interrupt"

    def act(self, task):
        raise KeyboardInterrupt


@register_method
class NanDetails(_Double):
    __doc__ = _Double.__doc__
    name = "t_nan_details"

    def details(self):
        return {"x": float("nan"), "inf": np.float32("inf"), "arr": np.arange(3), "counts": {0: np.int64(7)},
                "pair": (np.float64(0.25), True)}


@register_method
class ObjectDetails(_Double):
    __doc__ = _Double.__doc__
    name = "t_object_details"

    def details(self):
        return {"model": object()}


@register_method
class Mutator(_Double):
    __doc__ = _Double.__doc__
    name = "t_mutator"

    def act(self, task):
        # the task hands out copies, but nothing in one process stops a method that looks for the shared
        # arrays (gc) and writes to their memory (ctypes): only a check after the job can catch it
        import ctypes
        import gc

        from cowbench.data import Split

        for obj in gc.get_objects():
            if isinstance(obj, Split) and obj.name == "train":
                ctypes.memset(obj.x.ctypes.data, 0, obj.x.nbytes)


@register_method
class Reader(_Double):
    """Reports the training inputs' mean as every coefficient: a clean job that shows which data it saw.

    References
    ----------
    None (a test double).
    """
    name = "t_reader"

    def coefs(self, task):
        return {v: float(np.mean(task.train.x)) for v in task.variables}


@register_method
class Counter(_Double):
    __doc__ = _Double.__doc__
    name = "t_counter"
    search_space = {"k": [0, 1, 2, 3, 4, 5]}

    def __init__(self, *, k=0, random_state=None):
        self.k = k
        self.random_state = random_state

    def details(self):
        # which process ran the method, and its parent: the job's own evidence, stored in its record (a method
        # that wrote a log file outside its private folder would be charged with audit:open)
        return {"pid": os.getpid(), "ppid": os.getppid()}


@register_method
class Gate(Counter):
    __doc__ = _Double.__doc__
    name = "t_gate"

    def act(self, task):
        # holds its job (and lock) until the test's go-ahead, at most 10 minutes (os.stat is not an audited event)
        deadline = time.monotonic() + 600
        while not os.path.exists(_GO) and time.monotonic() < deadline:
            time.sleep(0.2)
'''

SUITE = '''
[suite]
name = "tiny"
replicates = 1
[subject]
arch = "linear"
[[scenarios]]
name = "cow"
knobs = { n_train = 300, n_val = 100, n_test = 300 }
[methods]
include = [{methods}]
'''


def cowbench(*args, cwd=None, env=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "cowbench", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout, env={**os.environ, **(env or {})})


def write_suite(tmp_path: Path, methods: list[str | dict]) -> Path:
    def entry(m):
        if isinstance(m, str):
            return f'"{m}"'
        return "{ name = " + f'"{m["name"]}", params = ' + "{ " + ", ".join(
            f"{k} = {v}" for k, v in m["params"].items()) + " } }"

    path = tmp_path / "tiny.toml"
    path.write_text(textwrap.dedent(SUITE.replace("{methods}", ", ".join(entry(m) for m in methods))))
    return path


@pytest.fixture
def plugin(tmp_path) -> Path:
    path = tmp_path / "doubles.py"
    path.write_text(PLUGIN.replace('"@LOG@"', repr(str(load_log(tmp_path)))))
    return path


def load_log(tmp_path: Path) -> Path:
    return tmp_path / "plugin_loads.txt"


def plugin_loads(tmp_path: Path) -> dict[int, int]:
    """Pid -> parent pid of every process that executed the plugin file; each process at most once."""
    pairs = [tuple(map(int, line.split()[1:])) for line in load_log(tmp_path).read_text().splitlines()]
    pids = [pid for pid, _ in pairs]
    assert len(pids) == len(set(pids)), f"a process executed the plugin file twice: {pairs}"
    return dict(pairs)


def start(*args) -> subprocess.Popen:
    """``cowbench ARGS`` in the background (its pid is the CLI process's: ``python -m cowbench``)."""
    return subprocess.Popen([sys.executable, "-m", "cowbench", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def all_records(out: Path) -> dict[str, dict]:
    """Job file name -> job record."""
    return {name: json.loads(data) for name, data in job_files(out).items()}


def records(out: Path) -> dict[str, dict]:
    """Method name -> job record (one replicate, one setting per method)."""
    return {r["spec"]["method"]: r for r in (json.loads(p.read_bytes()) for p in (out / "jobs").glob("*/*.json"))}


def job_files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / "jobs").glob("*/*.json"))}


DEATHS = {  # method -> (reason, words the error must contain)
    "t_os_exit": ("exit", "exited with code 3"),
    "t_sys_exit": ("exit", "sys.exit(4)"),
    "t_self_kill": ("signal", "SIGKILL"),
    "t_interrupt": ("interrupt", "KeyboardInterrupt"),
}


@pytest.mark.parametrize("launcher", ["serial", "joblib"])
def test_a_dying_or_hanging_method_fails_its_own_job_and_the_sweep_goes_on(tmp_path, plugin, launcher):
    # fast doubles only beside the sleeper: a real method can take seconds on a loaded machine
    methods = ["t_counter", *DEATHS, "t_sleeper", "t_reader"]
    out = tmp_path / "out"
    run = cowbench("run", write_suite(tmp_path, methods), "--out", out, "--plugins", plugin, "--launcher", launcher,
                   "--jobs", 2, "--time-limit", 8)
    assert run.returncode == 1, run.stderr
    got = records(out)
    assert set(got) == set(methods)  # every job stored, the dead ones included
    assert got["t_counter"]["status"] == "ok" and got["t_reader"]["status"] == "ok"
    for name, (reason, words) in DEATHS.items():
        assert got[name]["status"] == "failed" and got[name]["reason"] == reason, (name, got[name])
        assert words in got[name]["error"], (name, got[name]["error"])
    assert got["t_sleeper"]["status"] == "failed" and got["t_sleeper"]["reason"] == "timeout"
    assert "time limit of 8 s" in got["t_sleeper"]["error"]
    assert "ran 7 job(s): 2 ok, 5 failed" in run.stderr


def test_the_time_limit_comes_from_the_suite_and_the_flag_overrides_it(tmp_path, plugin):
    suite = write_suite(tmp_path, ["t_sleeper"])
    suite.write_text(suite.read_text().replace("replicates = 1", "replicates = 1\ntime_limit = 2"))
    out = tmp_path / "out"
    run = cowbench("run", suite, "--out", out, "--plugins", plugin, "--launcher", "serial")
    assert run.returncode == 1
    assert "time limit of 2 s" in records(out)["t_sleeper"]["error"]
    bad = cowbench("run", suite, "--out", tmp_path / "other", "--plugins", plugin, "--time-limit", "-1")
    assert bad.returncode == 2 and "time limit must be a positive number" in bad.stderr
    assert not (tmp_path / "other").exists()


def test_preparing_a_replicate_is_not_on_the_methods_clock(tmp_path, plugin):
    # a plugin whose import takes 12 s in the sandbox template (which loads it while the replicate is prepared):
    # with an 8 s time limit for methods (a fast double's job fits in it on a busy machine), the job must still
    # run and succeed: the limit is the method's (before, the preparation ran under it and the job failed, timeout)
    slow = tmp_path / "slow_template.py"
    slow.write_text("import sys, time\nif sys.argv[:1] == ['cowbench-sandbox']:\n    time.sleep(12)\n")
    out = tmp_path / "out"
    run = cowbench("run", write_suite(tmp_path, ["t_counter"]), "--out", out, "--plugins", plugin, "--plugins", slow,
                   "--launcher", "serial", "--time-limit", 8)
    assert run.returncode == 0, run.stderr
    assert records(out)["t_counter"]["status"] == "ok"


def test_details_are_cleaned_or_fail_their_own_job(tmp_path, plugin):
    out = tmp_path / "out"
    run = cowbench("run", write_suite(tmp_path, ["t_nan_details", "t_object_details", "logistic"]), "--out", out,
                   "--plugins", plugin, "--launcher", "serial")
    assert run.returncode == 1, run.stderr
    got = records(out)
    assert got["t_nan_details"]["status"] == "ok"
    assert got["t_nan_details"]["outputs"]["details"] == {
        "x": None, "inf": None, "arr": [0, 1, 2], "counts": {"0": 7}, "pair": [0.25, True]}
    assert got["t_object_details"]["status"] == "failed" and got["t_object_details"]["reason"] == "unstorable"
    assert "details['model'] is a object" in got["t_object_details"]["error"]
    assert got["logistic"]["status"] == "ok"


def test_a_method_that_overwrites_shared_data_fails_and_the_next_job_sees_clean_data(tmp_path, plugin):
    # the planned order within a replicate is the suite's: the reader runs right after the mutator, in the same worker
    out, clean = tmp_path / "out", tmp_path / "clean"
    run = cowbench("run", write_suite(tmp_path, ["t_mutator", "t_reader", "logistic"]), "--out", out,
                   "--plugins", plugin, "--launcher", "serial")
    ref = cowbench("run", write_suite(tmp_path, ["t_reader", "logistic"]), "--out", clean, "--plugins", plugin,
                   "--launcher", "serial")
    assert ref.returncode == 0, ref.stderr
    got, want = records(out), records(clean)
    # the mutator writes into its own Task's copies, in its own sandbox process: nothing shared changes, so its job
    # is not even a failure (under the in-process shortcut it would be stored as failed, reason ``mutation``)
    assert run.returncode == 0, run.stderr
    assert got["t_mutator"]["status"] == "ok" or got["t_mutator"]["reason"] == "mutation"
    assert got["t_reader"]["outputs"] == want["t_reader"]["outputs"]
    assert got["t_reader"]["outputs"]["world_coef"]["moo"] != 0.0  # the zeroed inputs would give exactly 0
    assert got["logistic"]["metrics"] == want["logistic"]["metrics"]


def test_a_plugin_file_is_executed_once_per_process_that_imports_it_never_once_per_job(tmp_path, plugin):
    # serial launcher: the CLI (it plans the jobs), its isolated worker (it prepares the replicate and scores) and
    # that worker's sandbox template (exec'd with an allow-listed environment) each execute the file once; every
    # job's method runs in a fresh child forked from the template, which has the plugin imported already
    methods = [{"name": "t_counter", "params": {"k": k}} for k in range(6)]
    out = tmp_path / "out"
    run = start("run", write_suite(tmp_path, methods), "--out", out, "--plugins", plugin, "--launcher", "serial")
    _, err = run.communicate(timeout=300)
    assert run.returncode == 0, err
    loaded = plugin_loads(tmp_path)
    workers = [pid for pid, parent in loaded.items() if parent == run.pid]
    assert len(workers) == 1, loaded
    templates = [pid for pid, parent in loaded.items() if parent == workers[0]]
    assert len(templates) == 1, loaded
    assert sorted(loaded) == sorted([run.pid, workers[0], templates[0]])  # three executions for six jobs
    jobs = list(all_records(out).values())
    assert len(jobs) == 6 and all(r["status"] == "ok" for r in jobs), jobs
    ran_in = [r["outputs"]["details"] for r in jobs]
    assert len({d["pid"] for d in ran_in}) == 6  # a fresh process per job ...
    assert {d["ppid"] for d in ran_in} == {templates[0]}  # ... forked from the template that loaded the plugin ...
    assert not {d["pid"] for d in ran_in} & set(loaded)  # ... and none of them executed the file again


def test_two_runs_on_one_directory_split_the_work(tmp_path, plugin):
    # the gate (each replicate's first job) holds whichever run takes it first until a job file shows that the
    # other run, finding the gate's lock held, went past it and ran other jobs: so both runs always do some work
    methods = ["t_gate", *({"name": "t_counter", "params": {"k": k}} for k in range(5))]
    suite = write_suite(tmp_path, methods)
    suite.write_text(suite.read_text().replace("replicates = 1", "replicates = 2"))
    out = tmp_path / "out"
    procs = [start("run", suite, "--out", out, "--plugins", plugin, "--launcher", "serial") for _ in range(2)]
    go = Path(str(load_log(tmp_path)) + ".go")
    try:
        start_time = time.time()
        while (not any((out / "jobs").glob("*/*.json")) and time.time() - start_time < 480
               and all(p.poll() is None for p in procs)):
            time.sleep(0.2)
        go.touch()
        outs = [p.communicate(timeout=300) for p in procs]
    finally:
        go.touch()
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert [p.returncode for p in procs] == [0, 0], outs
    jobs = all_records(out)
    assert len(jobs) == 12 and all(r["status"] == "ok" for r in jobs.values())
    assert len(list((out / "runs").glob("*/*.json"))) == 12
    # each job stored once: a job run by both runs would be stored, and entered in the ledger, twice
    entries = [json.loads(line) for line in (out / "ledger.jsonl").read_text().splitlines()]
    stored = [e["job_id"] for e in entries if e["kind"] == "job"]
    assert sorted(stored) == sorted(r["job_id"] for r in jobs.values())
    # which run ran each job: the job's process -> its template -> the template's isolated worker -> the run
    loaded = plugin_loads(tmp_path)
    by_run = {p.pid: 0 for p in procs}
    for record in jobs.values():
        by_run[loaded[loaded[record["outputs"]["details"]["ppid"]]]] += 1
    said = {p.pid: int(o[1].split("ran ")[1].split(" job")[0]) for p, o in zip(procs, outs, strict=True)}
    assert by_run == said and sum(said.values()) == 12, (by_run, said)
    assert min(said.values()) >= 1, said  # the work was split, not done by one run while the other waited


def flock_holders(path: Path) -> set[int]:
    """Pids holding a ``flock`` on ``path``, from ``/proc/locks`` (Linux)."""
    st = os.stat(path)
    holders = set()
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if len(fields) < 6 or fields[1] != "FLOCK":
            continue
        major, minor, inode = fields[5].split(":")
        if (int(major, 16), int(minor, 16), int(inode)) == (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino):
            holders.add(int(fields[4]))
    return holders


def test_a_lock_left_by_a_killed_run_does_not_block(tmp_path, plugin):
    # the gate holds its job until the go-ahead, which comes only after its run is killed: so the job that the second
    # run finishes (status ok) is the very one whose lock the killed run held
    suite = write_suite(tmp_path, ["t_gate", "t_reader"])
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "cowbench", "run", str(suite), "--out", str(out), "--plugins", str(plugin),
           "--launcher", "serial"]
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        # kill the run while its isolated worker holds the gate's job lock (the run's own process takes it only
        # for a moment, to count the job's start): the job is inside run_job, its method waiting in the sandbox
        start_time, lock = time.time(), None
        while lock is None and time.time() - start_time < 300 and first.poll() is None:
            lock = next((p for p in out.glob("locks/*/*.lock") if flock_holders(p) - {first.pid}), None)
            time.sleep(0.2)
        assert lock is not None, "the first run never held the gate's job lock"
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    start_time = time.time()  # its worker dies with it (parent-death signal), and the kernel drops its lock
    while flock_holders(lock) and time.time() - start_time < 30:
        time.sleep(0.2)
    assert lock.exists() and not flock_holders(lock)  # the lock file is left behind, held by nobody
    assert not any((out / "jobs").glob("*/*.json"))  # the killed run stored nothing
    Path(str(load_log(tmp_path)) + ".go").touch()
    second = start("run", suite, "--out", out, "--plugins", plugin, "--launcher", "serial")
    try:
        _, err = second.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        second.kill()
        second.wait()
        pytest.fail("the second run was still running after 300 s: blocked by the killed run's lock")
    assert second.returncode == 0, err
    got = records(out)
    assert got["t_gate"]["status"] == "ok" and got["t_reader"]["status"] == "ok"
    loaded = plugin_loads(tmp_path)  # the gate's process -> its template -> that template's worker -> the second run
    assert loaded[loaded[got["t_gate"]["outputs"]["details"]["ppid"]]] == second.pid


def test_inprocess_launcher_runs_in_this_process_without_isolation(tmp_path, plugin):
    # the same jobs give the same records under the in-process shortcut and the blind path, except what says
    # how they ran: run_mode, and the pid of the process that ran the method (t_counter's details)
    args = ["smoke", "--replicates", "1", "--methods", "logistic,group_reweight,t_counter", "--plugins", plugin]
    runs = {launcher: start("run", *args, "--out", tmp_path / launcher, "--launcher", launcher)
            for launcher in ("inprocess", "serial")}
    for run in runs.values():
        _, err = run.communicate(timeout=600)
        assert run.returncode == 0, err
    got = {launcher: all_records(tmp_path / launcher) for launcher in runs}
    assert got["inprocess"].keys() == got["serial"].keys()
    assert {r["spec"]["method"] for r in got["serial"].values()} == {"logistic", "group_reweight", "t_counter"}
    modes = {"inprocess": "inprocess (unsafe: not for published results)", "serial": "blind"}
    ran_in = {}
    for launcher, recs in got.items():
        for name, record in recs.items():
            assert record.pop("run_mode") == modes[launcher], (launcher, name)
            if record["spec"]["method"] == "t_counter":
                ran_in.setdefault(launcher, []).append(record["outputs"].pop("details"))
    assert got["inprocess"] == got["serial"]
    cli = {launcher: run.pid for launcher, run in runs.items()}
    assert ran_in["inprocess"] and all(d["pid"] == cli["inprocess"] for d in ran_in["inprocess"])  # in the CLI
    # blind: in a process forked from a template, two processes below the CLI (its isolated worker's child)
    assert ran_in["serial"] and all(cli["serial"] not in (d["pid"], d["ppid"]) for d in ran_in["serial"])
