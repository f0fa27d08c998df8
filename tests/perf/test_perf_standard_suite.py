"""The standard suite's wall time on this machine, against its 20-minute budget (issue 10 §7).

Run with ``python -m pytest tests/perf/test_perf_standard_suite.py --benchmark-only`` (about a fifth of the
suite: a few minutes on 2 cores). Nothing here asserts a time. One replicate of every (scenario, method)
pair runs with 2 joblib workers from an empty directory (replicate preparation included); the suite's
replicates are independent and equally sized, so its wall time is this run's times the replicate count.
``extra_info`` reports that estimate and its ratio to the 1200 s budget (goal <= 1), and the share of the
learned edits' SAE and DAS fits.
"""

from __future__ import annotations

import json
import time

import pytest

from cowbench.runner import run_suite
from cowbench.suite import load_suite

BUDGET_S = 1200.0


@pytest.mark.benchmark(group="standard-suite")
def test_perf_standard_suite_one_replicate(benchmark, tmp_path):
    full = load_suite("standard")
    one = load_suite("standard", replicates=1)
    out = tmp_path / "standard"
    started = time.perf_counter()
    summary = benchmark.pedantic(run_suite, args=(one, out), kwargs={"launcher": "joblib", "n_jobs": 2,
                                                                  "progress": False}, rounds=1, iterations=1)
    wall = time.perf_counter() - started
    assert summary.ran == summary.planned
    per_method: dict[str, float] = {}
    count: dict[str, int] = {}
    for path in (out / "runs").rglob("*.json"):
        record = json.loads(path.read_text())
        job = json.loads(next((out / "jobs").rglob(f"{record['job_id']}.json")).read_text())
        method = job["spec"]["method"]
        per_method[method] = per_method.get(method, 0.0) + record.get("job_wall_s", 0.0)
        count[method] = count.get(method, 0) + 1
    total = sum(per_method.values()) or 1.0
    estimate = wall * full.replicates
    benchmark.extra_info.update({
        "jobs_one_replicate": summary.planned,
        "wall_one_replicate_s": round(wall, 1),
        "estimated_suite_wall_s": round(estimate, 1),
        "ratio_to_20_min_budget": round(estimate / BUDGET_S, 3),
        "sae_share_of_job_time": round(per_method.get("sae_ablation", 0.0) / total, 3),
        "das_share_of_job_time": round(per_method.get("das", 0.0) / total, 3),
        "sae_s_per_job": round(per_method.get("sae_ablation", 0.0) / max(1, count.get("sae_ablation", 0)), 2),
        "das_s_per_job": round(per_method.get("das", 0.0) / max(1, count.get("das", 0)), 2),
    })
