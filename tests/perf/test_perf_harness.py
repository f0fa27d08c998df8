"""The harness's throughput by launcher, and its own overhead against the methods' compute, on the smoke suite.

Run with ``python -m pytest tests/perf/test_perf_harness.py --benchmark-only``. Nothing here asserts a time:
every figure is a ratio of runs measured in the same process, reported in ``extra_info``. Goals (issue 9):
joblib with 2 workers >= 1.8x the jobs per second of serial, a Dask LocalCluster >= 0.9x joblib, and the
harness's own time <= 10% of the total. Every run is a full ``run_suite`` with ``force=True`` over a directory
whose subject and oracle models are already cached. Throughput is the slope between a 10-job and a 40-job run,
so the one-off start-up (reported beside it) does not decide the comparison.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cowbench.runner import run_suite
from cowbench.suite import load_suite


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """The smoke suite at 2 and 8 replicates (10 and 40 jobs) and a results directory with the models cached.

    Smoke's jobs take a few tenths of a second against several seconds of worker start-up: with fewer jobs
    the slope is noise (5 against 15 jobs gave negative slopes on an idle machine).
    """
    small, large = load_suite("smoke", replicates=2), load_suite("smoke", replicates=8)
    out = tmp_path_factory.mktemp("perf") / "smoke"
    run_suite(large, out, launcher="serial", progress=False)
    return small, large, out


def _run(suite, out: Path, launcher: str, n_jobs: int) -> None:
    summary = run_suite(suite, out, launcher=launcher, n_jobs=n_jobs, force=True, progress=False)
    assert summary.ran == summary.planned  # every job ran: the time is for the whole suite


def _marginal(best_of, small, large, out: Path, launcher: str, n_jobs: int) -> tuple[float, float]:
    """(seconds per extra job, one-off seconds): the slope and intercept through a 10-job and a 40-job run.

    Worker start-up (an isolated child imports torch; Dask starts a LocalCluster; joblib keeps its workers
    between runs of one process) is paid once per run, so the slope compares launchers at the same footing.
    """
    n_small, n_large = len(small.plan()), len(large.plan())
    t_small = best_of(lambda: _run(small, out, launcher, n_jobs), rounds=2)
    t_large = best_of(lambda: _run(large, out, launcher, n_jobs), rounds=2)
    per_job = (t_large - t_small) / (n_large - n_small)
    return per_job, t_small - n_small * per_job


@pytest.mark.benchmark(group="harness-throughput")
def test_perf_throughput_joblib_and_dask_against_serial(benchmark, smoke, best_of):
    pytest.importorskip("dask.distributed")
    small, large, out = smoke
    benchmark.pedantic(_run, args=(large, out, "joblib", 2), rounds=1, iterations=1)
    per_job = {}
    for name, launcher, n_jobs in (("serial", "serial", 1), ("joblib2", "joblib", 2), ("dask2", "dask", 2)):
        per_job[name], startup = _marginal(best_of, small, large, out, launcher, n_jobs)
        benchmark.extra_info[f"jobs_per_s_{name}"] = 1 / per_job[name]
        benchmark.extra_info[f"one_off_s_{name}"] = startup
    benchmark.extra_info.update({
        "ratio_joblib2_to_serial": per_job["serial"] / per_job["joblib2"], "goal_joblib2_to_serial": 1.8,
        "ratio_dask2_to_joblib2": per_job["joblib2"] / per_job["dask2"], "goal_dask2_to_joblib2": 0.9,
    })


def _method_seconds(out: Path) -> float:
    return sum(json.loads(p.read_text())["method_wall_s"] for p in (out / "runs").glob("*/*.json"))


@pytest.mark.benchmark(group="harness-overhead")
def test_perf_harness_overhead_against_method_compute(benchmark, smoke, best_of):
    small, large, out = smoke
    benchmark.pedantic(_run, args=(large, out, "serial", 1), rounds=1, iterations=1)
    # the method's compute per job, from the 40 run records the last run wrote
    method_per_job = _method_seconds(out) / len(large.plan())
    per_job, startup = _marginal(best_of, small, large, out, "serial", 1)
    benchmark.extra_info.update({
        "seconds_per_job": per_job, "method_seconds_per_job": method_per_job, "one_off_s": startup,
        # everything per job that is not the method: dispatch to the isolated worker, lock, the replicate from
        # the cache, the shared-state fingerprint, scoring, writing
        "harness_share_per_job": 1 - method_per_job / per_job, "goal_harness_share": 0.10,
    })
