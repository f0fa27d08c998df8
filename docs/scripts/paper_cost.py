"""The paper suite's CPU, extrapolated from a measured one-replicate slice (the figure in `bench/suites/paper.toml`).

Measure the slice, then extrapolate::

    cowbench run paper --replicates 1 --trials 1 --jobs 2 --out /tmp/paper-slice
    python docs/scripts/paper_cost.py /tmp/paper-slice [OVERRIDE_DIR ...]

Each (scenario preset, method) pair's job CPU (the run records' ``job_cpu_s``: harness, method and evaluation
processes, loeo refits included) times its job count in the full suite (draws assumed to cost what draw 0 costs),
plus each replicate preparation at the slice's mean (its CPU records under ``cache/``), over the suite's
replicates. An ``OVERRIDE_DIR`` (e.g. the loeo jobs rerun after a change) replaces the slice's record of any loeo
job it holds.
"""

from __future__ import annotations

import collections
import glob
import json
import os
import statistics
import sys

from cowbench.suite import load_suite


def _key(scenario: dict) -> str:
    return json.dumps({"g": scenario["generator"], "k": scenario.get("knobs", {})}, sort_keys=True, default=list)


def _records(root: str) -> dict[str, tuple[dict, dict]]:
    """job id -> (run record, job file) for every job of ``root`` with a CPU record."""
    out = {}
    for path in glob.glob(f"{root}/runs/*/*.json"):
        run = json.load(open(path))
        job_path = f"{root}/jobs/{run['job_id'][:2]}/{run['job_id']}.json"
        if os.path.exists(job_path) and run.get("job_cpu_s") is not None:
            out[run["job_id"]] = (run, json.load(open(job_path)))
    return out


def main(root: str, overrides: list[str]) -> None:
    records = _records(root)
    for extra in overrides:
        for job_id, (run, job) in _records(extra).items():
            if job_id in records and job["spec"].get("loeo"):
                records[job_id] = (run, job)
    prep_files = glob.glob(f"{root}/cache/*/cpu-*.json")
    prep_total = sum(json.load(open(p)).get("cpu_s", 0.0) for p in prep_files)
    prep_each = prep_total / max(1, len({os.path.dirname(p) for p in prep_files}))
    plan = load_suite("paper").plan(())
    pair_of = {job.id: (_key(dict(job.replicate.scenario)), job.method) for job in plan}
    measured: dict[tuple[str, str], list[float]] = collections.defaultdict(list)
    by_method: dict[str, list[float]] = collections.defaultdict(list)
    for job_id, (run, job) in records.items():
        if job_id in pair_of:
            measured[pair_of[job_id]].append(run["job_cpu_s"])
            by_method[job["spec"]["method"]].append(run["job_cpu_s"])
    overall = statistics.median(c for cs in measured.values() for c in cs)
    counts = collections.Counter(pair_of.values())
    loeo_pairs = {pair_of[i] for i, (_, job) in records.items() if job["spec"].get("loeo") and i in pair_of}
    total, loeo, guessed = 0.0, 0.0, 0
    per_method: collections.Counter = collections.Counter()
    for pair, n in counts.items():
        if measured.get(pair):
            cpu = statistics.mean(measured[pair])
        else:
            guessed += 1
            cpu = statistics.median(by_method[pair[1]]) if by_method.get(pair[1]) else overall
        total += n * cpu
        loeo += n * cpu if pair in loeo_pairs else 0.0
        per_method[pair[1]] += n * cpu
    n_reps = len({(_key(dict(j.replicate.scenario)), j.replicate.replicate) for j in plan})
    hours = (total + n_reps * prep_each) / 3600
    print(f"{len(plan)} jobs, {len(counts)} pairs ({guessed} without a measured job: their method's median)")
    print(f"jobs {total / 3600:.1f} CPU-h + {n_reps} preparations x {prep_each:.1f} CPU-s = {hours:.1f} CPU-h, "
          f"{hours / 2:.1f} h on 2 cores at full use")
    n_loeo = sum(n for p, n in counts.items() if p in loeo_pairs)
    print(f"loeo jobs: {n_loeo}, {100 * loeo / total:.1f}% of the jobs' CPU")
    for method, cpu in per_method.most_common(10):
        print(f"  {method:24s} {100 * cpu / total:5.1f}%")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit("usage: python docs/scripts/paper_cost.py SLICE_DIR [OVERRIDE_DIR ...]")
    main(sys.argv[1], sys.argv[2:])
