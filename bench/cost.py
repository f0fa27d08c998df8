"""What a run cost: CPU seconds over its whole process tree, from records its processes wrote as they worked.

``/usr/bin/time cowbench run`` sees only the processes the run itself reaped: engine workers and their children
are killed at the end of a run and re-parented, so their CPU is lost from the run's own account (23.6 of 477
CPU-s on a 45-job run, issue 20). Instead every piece of work writes its own CPU as it ends:

* a job's run record (``runs/<id[:2]>/<id>.json``): ``harness_cpu_s`` (the process that prepared, blinded and
  scored it) and ``sandbox_cpu_s`` (the sandbox processes it used: the method's run and the edited model's
  evaluation, counted by the kernel when they were reaped, `cowbench.sandbox.sandbox_cpu_s`); their sum is
  ``job_cpu_s``, and ``method_cpu_s`` is the method's process alone;
* a preparation that trained or loaded a replicate, or started a sandbox template
  (``cache/<replicate>/cpu-<pid>-<ns>.json``): its CPU, with the imports of the process that did it when it
  was that process's first piece of work, and the template's start-up.

`run_cpu` adds them up for one run (the records written since it started) with the run's own process. Not
counted: the engine's worker processes outside these calls (dispatch, a few ms per job).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cowbench.store import read_json, run_path, write_json_atomic

PREPARE_GLOB = "*/cpu-*.json"


def record_prepare(cache_dir: str | Path, replicate_id: str, cpu_s: float, wall_s: float) -> None:
    """Store the CPU of one preparation of ``replicate_id`` (a new file each time: workers write concurrently)."""
    folder = Path(cache_dir) / replicate_id
    folder.mkdir(parents=True, exist_ok=True)
    write_json_atomic(folder / f"cpu-{os.getpid()}-{time.time_ns()}.json",
                      {"replicate": replicate_id, "cpu_s": float(cpu_s), "wall_s": float(wall_s),
                       "written_unix": time.time()})


@dataclass(frozen=True)
class RunCpu:
    """CPU seconds of one run, by where they were spent."""

    jobs: int
    harness_s: float
    method_s: float
    evaluation_s: float  # sandbox processes other than the methods' runs: edited models evaluated
    prepare_s: float
    run_process_s: float

    @property
    def total_s(self) -> float:
        return self.harness_s + self.method_s + self.evaluation_s + self.prepare_s + self.run_process_s

    def line(self, wall_s: float | None = None) -> str:
        """One line for the CLI: the total and its parts."""
        in_jobs = self.harness_s + self.method_s + self.evaluation_s
        per_job = f", {in_jobs / self.jobs:.2f} per job" if self.jobs else ""
        wall = f" in {wall_s:.0f} s of wall time" if wall_s is not None else ""
        return (f"CPU {self.total_s:.0f} s over the process tree{wall}: methods {self.method_s:.0f} s, edited models' "
                f"evaluation {self.evaluation_s:.0f} s, harness {self.harness_s:.0f} s (jobs{per_job}), preparing "
                f"replicates {self.prepare_s:.0f} s, this process {self.run_process_s:.0f} s")


def run_cpu(out: str | Path, job_ids: Iterable[str], since: float, *, run_process_s: float = 0.0) -> RunCpu:
    """Add up the CPU records under ``out`` that this run wrote: the run records of ``job_ids`` whose job
    started at or after ``since`` (unix time) and the preparation records written since then."""
    out = Path(out)
    jobs, harness, method, sandbox = 0, 0.0, 0.0, 0.0
    for job_id in job_ids:
        try:
            record = read_json(run_path(out, job_id), 1 << 20)
        except (OSError, ValueError):
            continue
        started = record.get("started_unix") if isinstance(record, dict) else None
        if not isinstance(started, int | float) or started < since or record.get("job_cpu_s") is None:
            continue
        jobs += 1
        harness += float(record.get("harness_cpu_s") or 0.0)
        sandbox += float(record.get("sandbox_cpu_s") or 0.0)
        method += float(record.get("method_cpu_s") or 0.0) + float(record.get("loeo_method_cpu_s") or 0.0)
    prepare = 0.0
    cache = out / "cache"
    if cache.is_dir():
        for path in cache.glob(PREPARE_GLOB):
            try:
                entry = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if isinstance(entry, dict) and float(entry.get("written_unix") or 0.0) >= since:
                prepare += float(entry.get("cpu_s") or 0.0)
    return RunCpu(jobs, harness, method, max(0.0, sandbox - method), prepare, run_process_s)
