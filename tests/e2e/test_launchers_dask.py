"""The Dask launcher on a LocalCluster with 2 workers; job files byte-identical whatever the launcher."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("dask.distributed")


def _sibling(name: str):
    # the test doubles and helpers live in test_launchers.py; tests are not a package (import-mode=importlib)
    spec = importlib.util.spec_from_file_location(f"_cowbench_{name}", Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_helpers = _sibling("test_launchers")
PLUGIN, cowbench, job_files, records, write_suite = (
    _helpers.PLUGIN, _helpers.cowbench, _helpers.job_files, _helpers.records, _helpers.write_suite)

SLOW_PLUGIN = PLUGIN + '''

@register_method
class Slow(_Double):
    __doc__ = _Double.__doc__
    name = "t_slow"
    search_space = {"k": [0, 1, 2, 3, 4, 5, 6, 7]}

    def __init__(self, *, k=0, random_state=None):
        self.k = k
        self.random_state = random_state

    def act(self, task):
        time.sleep(1.5)
'''

# a small slice of the standard suite that includes irm_linear, whose files differed between serial and joblib
# when BLAS threads were not pinned per worker
ARGS = ["--replicates", "1", "--methods", "logistic,irm_linear,erase_spurious,group_reweight"]


@pytest.fixture
def plugin(tmp_path) -> Path:
    path = tmp_path / "doubles.py"
    # the log path baked in as test_launchers' fixture does (else every run writes a file named @LOG@ in the
    # working folder)
    path.write_text(SLOW_PLUGIN.replace('"@LOG@"', repr(str(tmp_path / "plugin_loads.txt"))))
    return path


def test_dask_local_cluster_writes_the_same_job_files_as_serial(tmp_path):
    serial = cowbench("run", "smoke", "--out", tmp_path / "serial", "--launcher", "serial", *ARGS)
    dask = cowbench("run", "smoke", "--out", tmp_path / "dask", "--launcher", "dask", "--jobs", 2, *ARGS)
    assert serial.returncode == 0 and dask.returncode == 0, serial.stderr + dask.stderr
    assert len(job_files(tmp_path / "serial")) == 4
    assert job_files(tmp_path / "dask") == job_files(tmp_path / "serial")


@pytest.mark.slow
def test_job_files_are_byte_identical_across_serial_joblib_1_2_4_and_dask(tmp_path):
    runs = {"serial": ["--launcher", "serial"], "dask2": ["--launcher", "dask", "--jobs", "2"]}
    runs.update({f"joblib{n}": ["--launcher", "joblib", "--jobs", str(n)] for n in (1, 2, 4)})
    files = {}
    for name, flags in runs.items():
        run = cowbench("run", "smoke", "--out", tmp_path / name, *flags, *ARGS)
        assert run.returncode == 0, (name, run.stderr)
        files[name] = job_files(tmp_path / name)
    assert len(files["serial"]) == 4
    differ = {name: sorted(k for k in f if f[k] != files["serial"].get(k)) for name, f in files.items()}
    assert all(not d for d in differ.values()), differ


def test_a_failing_job_is_isolated_on_dask(tmp_path, plugin):
    out = tmp_path / "out"
    run = cowbench("run", write_suite(tmp_path, ["t_reader", "t_os_exit", "t_self_kill", "t_counter"]), "--out", out,
                   "--plugins", plugin, "--launcher", "dask", "--jobs", 2)
    assert run.returncode == 1, run.stderr
    got = records(out)
    assert got["t_reader"]["status"] == "ok" and got["t_counter"]["status"] == "ok"
    assert got["t_os_exit"]["reason"] == "exit" and got["t_self_kill"]["reason"] == "signal"


def test_a_run_on_an_existing_cluster_survives_a_killed_worker_and_resumes(tmp_path, plugin):
    from dask.distributed import Client, LocalCluster

    methods = [{"name": "t_slow", "params": {"k": k}} for k in range(8)]
    suite = write_suite(tmp_path, methods)
    out = tmp_path / "out"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        cmd = [sys.executable, "-m", "cowbench", "run", str(suite), "--out", str(out), "--plugins", str(plugin),
               "--launcher", "dask", "--scheduler", cluster.scheduler_address]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        start = time.time()
        while len(list((out / "jobs").glob("*/*.json"))) < 1 and time.time() - start < 240:
            time.sleep(0.2)
        pids = client.run(os.getpid)  # worker address -> pid
        os.kill(next(iter(pids.values())), signal.SIGKILL)  # a worker dies mid-sweep; its nanny restarts it
        _, stderr = proc.communicate(timeout=300)
    got = records(out)
    # Dask reran the killed worker's task elsewhere, or the run recorded it as lost: never a silent gap
    assert len(job_files(out)) == 8, stderr
    lost = [r for r in got.values() if r["status"] != "ok"]
    assert proc.returncode in (0, 1), stderr
    # resume: whatever is not ok is rerun and every job ends ok, each file valid JSON of its own id
    again = cowbench("run", suite, "--out", out, "--plugins", plugin, "--launcher", "serial",
                     *(["--retry-failed"] if lost else []))
    assert again.returncode == 0, again.stderr
    for path in (out / "jobs").glob("*/*.json"):
        record = json.loads(path.read_bytes())
        assert record["status"] == "ok" and record["job_id"] == path.stem


def test_a_job_that_kills_its_process_inside_a_bundle_fails_alone_and_every_job_is_stored_once(tmp_path, plugin):
    # one worker, one replicate: its 7 jobs run in 2 Dask tasks (bundles of 4 and 3), the deaths among them
    methods = [*({"name": "t_counter", "params": {"k": k}} for k in range(4)), "t_os_exit", "t_self_kill", "t_reader"]
    out = tmp_path / "out"
    run = cowbench("run", write_suite(tmp_path, methods), "--out", out, "--plugins", plugin, "--launcher", "dask",
                   "--jobs", 1)
    assert run.returncode == 1, run.stderr
    assert "ran 7 job(s): 5 ok, 2 failed" in run.stderr
    jobs = [json.loads(data) for data in job_files(out).values()]
    assert len(jobs) == 7
    failed = {r["spec"]["method"]: r["reason"] for r in jobs if r["status"] != "ok"}
    assert failed == {"t_os_exit": "exit", "t_self_kill": "signal"}
    # one record and one ledger entry per job, whatever the bundle
    entries = [json.loads(line) for line in (out / "ledger.jsonl").read_text().splitlines()]
    assert sorted(e["job_id"] for e in entries if e["kind"] == "job") == sorted(r["job_id"] for r in jobs)
    assert len(list((out / "runs").glob("*/*.json"))) == 7


def test_bundled_dask_writes_the_same_job_files_as_joblib(tmp_path):
    # one worker, two replicates: each replicate's 3 jobs run in one Dask task
    args = ["smoke", "--replicates", "2", "--methods", "logistic,erase_spurious,group_reweight"]
    joblib = cowbench("run", *args, "--out", tmp_path / "joblib", "--launcher", "joblib", "--jobs", 2)
    dask = cowbench("run", *args, "--out", tmp_path / "dask", "--launcher", "dask", "--jobs", 1)
    assert joblib.returncode == 0 and dask.returncode == 0, joblib.stderr + dask.stderr
    assert len(job_files(tmp_path / "joblib")) == 6
    assert job_files(tmp_path / "dask") == job_files(tmp_path / "joblib")
