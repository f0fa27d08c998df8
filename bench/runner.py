"""Running a suite: plan, skip what is done, prepare shared models, run the rest, never lose a result.

Each job runs under its lock (`cowbench.locks`), so two runs sharing a results directory split the work; and,
except under the ``inprocess`` launcher, in a persistent isolated child process of whichever engine worker
picked it (`cowbench.isolation`), so a job that hangs past the time limit, exits or is killed is stored as
that job's failure while the sweep goes on.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cowbench.errors import InputError
from cowbench.jobs import JobSpec, ReplicateSpec, load_plugins_once, prepare, run_job, store_failure
from cowbench.launchers import EngineError, get_launcher
from cowbench.store import job_status, remove_stale_tmp, write_manifest
from cowbench.suite import Suite

DEFAULT_TIME_LIMIT = 3600.0  # seconds per job: generous, a smoke job takes under one


@dataclass
class RunSummary:
    planned: int
    done_before: int
    failed_before: int
    ran: int = 0
    ok: int = 0
    failed: list[str] = field(default_factory=list)
    done_elsewhere: int = 0  # jobs another run sharing the directory stored while this one ran
    failed_elsewhere: int = 0

    @property
    def exit_code(self) -> int:
        """0 when every planned job is done and ok, 1 when some job failed."""
        return 1 if self.failed or self.failed_before or self.failed_elsewhere else 0


@dataclass(frozen=True)
class _Call:
    """What an engine worker needs for one job or replicate (plain data: it travels to other processes)."""

    out: str
    cache_dir: str
    plugins: tuple[str, ...]
    time_limit: float | None
    isolate: bool
    planned_at: float


def _prepare_in_process(replicate: ReplicateSpec, cache_dir: str, plugins: tuple[str, ...]) -> str | None:
    try:
        load_plugins_once(plugins)
        prepare(replicate, Path(cache_dir))
    except Exception as exc:  # the jobs of this replicate will record the failure with its traceback
        return f"{type(exc).__name__}: {exc}"
    return None


def _prepare_worker(args: tuple[ReplicateSpec, _Call]) -> str | None:
    from cowbench.isolation import Lost, call_isolated
    from cowbench.locks import hold, replicate_lock_path

    replicate, call = args
    # a second run sharing the directory waits here, then loads the models the first one trained
    with hold(replicate_lock_path(Path(call.cache_dir), replicate.id), wait=call.time_limit):
        if not call.isolate:
            return _prepare_in_process(replicate, call.cache_dir, call.plugins)
        result = call_isolated(_prepare_in_process, (replicate, call.cache_dir, call.plugins),
                               time_limit=call.time_limit)
    return result.message if isinstance(result, Lost) else result


def _job_worker(args: tuple[JobSpec, _Call, bool]) -> tuple[str, str]:
    from cowbench.isolation import Lost, call_isolated

    spec, call, wait = args
    job_args = (spec, Path(call.out), Path(call.cache_dir), call.plugins)
    job_kwargs = {"planned_at": call.planned_at, "wait": wait}
    if not call.isolate:
        return spec.id, run_job(*job_args, **job_kwargs)
    # the replicate first, with its own clock (after a restart the new child reloads it): the job's time limit
    # is for the method; a preparation failure is recorded by run_job itself with its traceback
    result = call_isolated(_prepare_in_process, (spec.replicate, call.cache_dir, call.plugins),
                           time_limit=call.time_limit)
    if not isinstance(result, Lost):
        result = call_isolated(run_job, job_args, job_kwargs, time_limit=call.time_limit)
    if isinstance(result, Lost):  # the child is gone, and its lock with it: store the job's failure here
        return spec.id, store_failure(spec, Path(call.out), result.reason, result.message, result.traceback,
                                      planned_at=call.planned_at)
    return spec.id, result


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


def check_time_limit(value: Any) -> float | None:
    """A per-job time limit in seconds (a positive finite number), or None for no limit."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise InputError(f"the time limit must be a positive number of seconds, got {value!r}")
    return float(value)


def run_suite(suite: Suite, out: Path, *, launcher: str = "joblib", n_jobs: int | None = None,
              force: bool = False, retry_failed: bool = False, plugins: Sequence[str] = (),
              progress: bool | None = None, log: Any = None, time_limit: float | None = None,
              scheduler: str | None = None) -> RunSummary:
    """Run every job of ``suite`` not yet done under ``out``; see `RunSummary`.

    ``time_limit`` (seconds per job; default: the suite's ``time_limit``, else `DEFAULT_TIME_LIMIT`) stops a job
    that runs longer and stores it as failed with reason ``timeout``; it needs an isolating launcher (every one
    but ``inprocess``). ``scheduler`` is the address of an existing Dask cluster (``launcher="dask"``).
    ``progress``: False shows nothing; otherwise the preparation of the replicates and the jobs show their
    progress on stderr, a bar on a terminal and periodic lines elsewhere (`cowbench.progress`).
    """
    out = Path(out).absolute()  # engine workers may run elsewhere (Dask): they need the full path
    engine = get_launcher(launcher)
    if scheduler and not engine.remote:
        raise InputError(f"--scheduler is for --launcher dask, not {launcher!r}")
    if time_limit is None:
        time_limit = getattr(suite, "time_limit", None) or DEFAULT_TIME_LIMIT
    time_limit = check_time_limit(time_limit)
    n_jobs = n_jobs or default_n_jobs()
    planned_at = time.time()  # a job file written after this was written by another run: not ours to redo
    jobs, todo, summary = plan_run(suite, out, force=force, retry_failed=retry_failed)
    if log is not None:
        log(f"{summary.planned} planned: {summary.done_before} done, {summary.failed_before} failed, "
            f"{len(todo)} to run")
    remove_stale_tmp(out)  # left by writers killed mid-write; live writers' files are younger
    write_manifest(out, {"suite": suite.to_dict(), "suite_hash": suite.hash,
                         "jobs": [j.id for j in jobs], "skipped": suite.skipped(),
                         "sweeps": list(getattr(suite, "sweeps", ())),
                         # draw index of every job not at its defaults (`cowbench.trials`), and the rules the
                         # report applies (`cowbench.selection`)
                         "trials": {j.id: j.trial for j in jobs if j.trial},
                         "selection": list(getattr(suite, "selection", ("defaults",)))})
    if not todo:
        return summary
    # plugin files by absolute path: workers (Dask) may run in another directory
    plugins = tuple(str(Path(p).absolute()) if p.endswith(".py") else p for p in plugins)
    call = _Call(str(out), str(out / "cache"), plugins, time_limit, engine.isolates, planned_at)
    replicates = list({j.replicate.id: j.replicate for j in todo}.values())
    by_id = {j.id: j for j in todo}

    from cowbench.progress import Progress, job_label

    show = progress is not False  # None (the default): a bar on a terminal, periodic lines elsewhere
    bar = None
    try:
        with engine.session(n_jobs, scheduler=scheduler) as run:
            # train each replicate's subject and oracle once, in parallel, before the methods need them
            with Progress(len(replicates), "replicates prepared", enabled=show) as prep:
                for result in run(_prepare_worker, [(r, call) for r in replicates]):
                    # a failure is recorded by each of its jobs; here it is only counted
                    prep.update(failed=int(isinstance(result, EngineError) or result is not None))
            bar = Progress(len(todo), "jobs", enabled=show)
            # first pass: skip what another run holds; second pass: wait for those it has not stored (if that
            # run dies, its locks go with it and this one runs the jobs)
            pending = todo
            for wait in (False, True):
                held_elsewhere = []
                for result in run(_job_worker, [(j, call, wait) for j in pending]):
                    if isinstance(result, EngineError):
                        spec = result.item[0]
                        result = spec.id, store_failure(spec, out, "engine", f"the launcher lost the job: "
                                                        f"{result.message}", planned_at=planned_at)
                    job_id, status = result
                    if status == "skipped":
                        held_elsewhere.append(by_id[job_id])
                        continue
                    summary.ran += 1
                    if status == "ok":
                        summary.ok += 1
                    else:
                        summary.failed.append(job_id)
                    named = () if status == "ok" else (job_label(by_id[job_id]),)  # a failure is named at once
                    bar.update(failed=int(status != "ok"), failures=named)
                pending = []
                for job in held_elsewhere:
                    status = job_status(out, job.id)
                    if status is None:
                        pending.append(job)
                    else:
                        summary.done_elsewhere += 1
                        summary.failed_elsewhere += status == "failed"
                        bar.update(failed=int(status == "failed"))
                if not pending:
                    break
    finally:
        if bar is not None:
            bar.close()
        if engine.isolates:
            from cowbench.isolation import close_isolated

            close_isolated()  # the serial launcher's child belongs to this thread: do not leave it behind
    return summary
