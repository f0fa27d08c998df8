"""Running a suite: plan, skip what is done, prepare shared models, run the rest, never lose a result."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cowbench.jobs import JobSpec, ReplicateSpec, prepare, run_job
from cowbench.launchers import get_launcher
from cowbench.store import job_status, write_json_atomic
from cowbench.suite import Suite


@dataclass
class RunSummary:
    planned: int
    done_before: int
    failed_before: int
    ran: int = 0
    ok: int = 0
    failed: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0 when every planned job is done and ok, 1 when some job failed."""
        return 1 if self.failed or self.failed_before else 0


def _prepare_worker(args: tuple[ReplicateSpec, str, tuple[str, ...]]) -> str | None:
    from cowbench.registry import load_plugin

    replicate, cache_dir, plugins = args
    try:
        for plugin in plugins:
            load_plugin(plugin)
        prepare(replicate, Path(cache_dir))
    except Exception as exc:  # the jobs of this replicate will record the failure with its traceback
        return f"{type(exc).__name__}: {exc}"
    return None


def _job_worker(args: tuple[JobSpec, str, str, tuple[str, ...]]) -> tuple[str, str]:
    spec, out, cache_dir, plugins = args
    return spec.id, run_job(spec, Path(out), Path(cache_dir), plugins)


def default_n_jobs() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def plan_run(suite: Suite, out: Path, *, force: bool = False, retry_failed: bool = False
             ) -> tuple[list[JobSpec], list[JobSpec], RunSummary]:
    """(all planned jobs, the ones to run, the summary of what is already there)."""
    jobs = suite.plan()
    status = {j.id: job_status(out, j.id) for j in jobs}
    done = sum(s == "ok" for s in status.values())
    failed = sum(s == "failed" for s in status.values())
    if force:
        todo = jobs
    else:
        todo = [j for j in jobs if status[j.id] is None or (retry_failed and status[j.id] == "failed")]
    failed_kept = 0 if (force or retry_failed) else failed
    return jobs, todo, RunSummary(planned=len(jobs), done_before=done, failed_before=failed_kept)


def run_suite(suite: Suite, out: Path, *, launcher: str = "joblib", n_jobs: int | None = None,
              force: bool = False, retry_failed: bool = False, plugins: Sequence[str] = (),
              progress: bool | None = None, log: Any = None) -> RunSummary:
    """Run every job of ``suite`` not yet done under ``out``; see `RunSummary`."""
    out = Path(out)
    launch = get_launcher(launcher)
    n_jobs = n_jobs or default_n_jobs()
    jobs, todo, summary = plan_run(suite, out, force=force, retry_failed=retry_failed)
    if log is not None:
        log(f"{summary.planned} planned: {summary.done_before} done, {summary.failed_before} failed, "
            f"{len(todo)} to run")
    write_json_atomic(out / "manifest.json", {"suite": suite.to_dict(), "suite_hash": suite.hash,
                                              "jobs": [j.id for j in jobs], "skipped": suite.skipped()})
    if not todo:
        return summary
    cache_dir = str(out / "cache")
    plugins = tuple(plugins)
    replicates = list({j.replicate.id: j.replicate for j in todo}.values())
    # train each replicate's subject and oracle once, in parallel, before the methods need them
    list(launch(_prepare_worker, [(r, cache_dir, plugins) for r in replicates], n_jobs))

    from tqdm import tqdm

    items = [(j, str(out), cache_dir, plugins) for j in todo]
    bar = tqdm(total=len(items), desc=f"{suite.name}", unit="job", disable=None if progress is None else not progress,
               leave=False)
    for job_id, status in launch(_job_worker, items, n_jobs):
        summary.ran += 1
        if status == "ok":
            summary.ok += 1
        else:
            summary.failed.append(job_id)
        bar.update(1)
        bar.set_postfix(failed=len(summary.failed))
    bar.close()
    return summary
