"""The harness's throughput by launcher, and its own overhead against the methods' compute, on the smoke suite.

Run with ``python -m pytest tests/perf/test_perf_harness.py --benchmark-only``. Nothing here asserts a time:
every figure is a ratio of runs measured in the same process, reported in ``extra_info``. Goals (issue 9):
joblib with 2 workers >= 1.8x the jobs per second of serial, a Dask LocalCluster >= 0.9x joblib, and the
harness's own time <= 10% of the total. Every run is a full ``run_suite`` with ``force=True`` over a directory
whose subject and oracle models are already cached, so what is compared is running jobs (worker start-up
included, as a user pays it), not training the shared models.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cowbench.runner import run_suite
from cowbench.suite import load_suite


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """The smoke suite (15 jobs) and a results directory whose replicate models are cached."""
    suite = load_suite("smoke")
    out = tmp_path_factory.mktemp("perf") / "smoke"
    run_suite(suite, out, launcher="serial", progress=False)
    return suite, out


def _run(suite, out: Path, launcher: str, n_jobs: int) -> None:
    summary = run_suite(suite, out, launcher=launcher, n_jobs=n_jobs, force=True, progress=False)
    assert summary.ran == summary.planned  # every job ran: the time is for the whole suite


@pytest.mark.benchmark(group="harness-throughput")
def test_perf_throughput_joblib_and_dask_against_serial(benchmark, smoke, best_of):
    pytest.importorskip("dask.distributed")
    suite, out = smoke
    n = len(suite.plan())
    benchmark.pedantic(_run, args=(suite, out, "joblib", 2), rounds=1, iterations=1)
    t_serial = best_of(lambda: _run(suite, out, "serial", 1), rounds=2)
    t_joblib = best_of(lambda: _run(suite, out, "joblib", 2), rounds=2)
    t_dask = best_of(lambda: _run(suite, out, "dask", 2), rounds=2)
    benchmark.extra_info.update({
        "jobs": n, "jobs_per_s_serial": n / t_serial, "jobs_per_s_joblib2": n / t_joblib,
        "jobs_per_s_dask2": n / t_dask,
        "ratio_joblib2_to_serial": t_serial / t_joblib, "goal_joblib2_to_serial": 1.8,
        "ratio_dask2_to_joblib2": t_joblib / t_dask, "goal_dask2_to_joblib2": 0.9,
    })


@pytest.mark.benchmark(group="harness-overhead")
def test_perf_harness_overhead_against_method_compute(benchmark, smoke):
    suite, out = smoke
    import time

    def timed() -> float:
        start = time.perf_counter()
        _run(suite, out, "serial", 1)
        return time.perf_counter() - start

    total = benchmark.pedantic(timed, rounds=1, iterations=1)
    runs = [json.loads(p.read_text()) for p in (out / "runs").glob("*/*.json")]
    method = sum(r["method_wall_s"] for r in runs)
    in_job = sum(r["job_wall_s"] for r in runs)
    n = len(runs)
    benchmark.extra_info.update({
        "jobs": n, "total_s": total, "method_s": method, "in_job_s": in_job,
        # everything that is not the method: planning, worker start-up, dispatch, locks, data from the
        # replicate cache, scoring, writing
        "harness_share_of_total": 1 - method / total,
        # the same without the one-off worker start-up and planning: per job, inside run_job
        "harness_share_inside_jobs": 1 - method / in_job,
        "dispatch_ms_per_job": 1000 * (total - in_job) / n, "goal_harness_share": 0.10,
    })
