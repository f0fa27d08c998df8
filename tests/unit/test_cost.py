"""The run's CPU account (`cowbench.cost`): every process's CPU, counted where the method cannot touch it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from cowbench.cost import record_prepare, run_cpu
from cowbench.sandbox import BlindCall, BlindResult, run_blind, sandbox_cpu_s
from cowbench.store import run_path, write_json_atomic

PLUGIN = str(Path(__file__).with_name("sandbox_attacks.py"))
INPUTS = {"x": np.arange(12, dtype=np.float32).reshape(6, 2)}


def test_a_methods_cpu_is_counted_by_the_kernel_with_its_children_whatever_it_claims():
    before = sandbox_cpu_s(startup=False)
    result = run_blind(BlindCall("attack_cpu", {"seconds": 0.6}, 0, INPUTS, (PLUGIN,)), time_limit=120)
    assert isinstance(result, BlindResult), result
    # 0.6 s in the forked child plus 0.6 s in the method's own process; the kernel's tick is 10 ms
    assert result.cpu_s >= 1.2 - 0.05, result.cpu_s
    assert sandbox_cpu_s(startup=False) - before >= result.cpu_s  # the thread's running account moved with it


def test_an_idle_method_costs_little():
    result = run_blind(BlindCall("attack_honest", {}, 0, INPUTS, (PLUGIN,)), time_limit=120)
    assert isinstance(result, BlindResult), result
    assert 0.0 <= result.cpu_s < 0.5  # a fork of a preloaded template, not a fresh interpreter's imports


def _write_run(out: Path, job_id: str, started: float, harness: float, sandbox: float, method: float) -> None:
    write_json_atomic(run_path(out, job_id), {"job_id": job_id, "status": "ok", "started_unix": started,
                                              "job_cpu_s": harness + sandbox, "harness_cpu_s": harness,
                                              "sandbox_cpu_s": sandbox, "method_cpu_s": method})


def test_run_cpu_adds_this_runs_records_and_nothing_older(tmp_path):
    since = time.time()
    _write_run(tmp_path, "a" * 64, since + 1, 0.5, 2.0, 1.5)  # this run's
    _write_run(tmp_path, "b" * 64, since + 2, 0.25, 1.0, 1.0)  # this run's
    _write_run(tmp_path, "c" * 64, since - 100, 9.0, 9.0, 9.0)  # stored by an earlier run: not this run's cost
    record_prepare(tmp_path / "cache", "r" * 64, 3.0, 4.0)
    old = tmp_path / "cache" / ("s" * 64) / "cpu-1-1.json"
    old.parent.mkdir(parents=True)
    old.write_text(json.dumps({"cpu_s": 7.0, "written_unix": since - 50}))
    cpu = run_cpu(tmp_path, ["a" * 64, "b" * 64, "c" * 64, "d" * 64], since, run_process_s=0.125)
    assert cpu.jobs == 2
    assert (cpu.harness_s, cpu.method_s, cpu.evaluation_s, cpu.prepare_s) == pytest.approx((0.75, 2.5, 0.5, 3.0))
    assert cpu.total_s == pytest.approx(0.75 + 3.0 + 3.0 + 0.125)
    assert "CPU 7 s over the process tree" in cpu.line()


def test_a_job_record_carries_its_cpu_over_the_process_tree(tmp_path):
    from cowbench.jobs import run_job
    from cowbench.suite import load_suite

    job = next(j for j in load_suite("smoke").plan() if j.method == "no_edit")
    assert run_job(job, tmp_path, tmp_path / "cache") == "ok"
    record = json.loads(run_path(tmp_path, job.id).read_text())
    assert record["job_cpu_s"] == pytest.approx(record["harness_cpu_s"] + record["sandbox_cpu_s"])
    # an edit job: the method's process and the edited model's evaluation are both sandbox processes
    assert record["sandbox_cpu_s"] >= record["method_cpu_s"] > 0
    assert record["harness_cpu_s"] > 0
