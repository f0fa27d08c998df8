"""Running a suite: plan, skip what is done, prepare shared models, run the rest, never lose a result.

Each job runs under its lock (`cowbench.locks`), so two runs sharing a results directory split the work; and,
except under the ``inprocess`` launcher, in a persistent isolated child process of whichever engine worker
picked it (`cowbench.isolation`), so a job that hangs past the time limit, exits or is killed is stored as
that job's failure while the sweep goes on.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cowbench.replicate as replicate_module
from cowbench import ledger
from cowbench.blind_run import run_inprocess
from cowbench.cost import record_prepare
from cowbench.errors import InputError
from cowbench.isolation import Lost, call_isolated, close_isolated
from cowbench.jobs import JobSpec, ReplicateSpec, load_plugins_once, prepare, run_job, store_failure
from cowbench.launchers import (
    EngineError,
    end_with_run,
    get_launcher,
    ignore_interrupts_in_worker,
    run_identity,
    safe_import_path,
)
from cowbench.locks import hold, job_lock_path, replicate_lock_path
from cowbench.progress import Progress, job_label
from cowbench.store import job_status, read_json, remove_stale_tmp, write_json_atomic, write_manifest
from cowbench.suite import Suite, check_memory_limit, check_time_limit

DEFAULT_TIME_LIMIT = 3600.0  # seconds per job: generous, a smoke job takes under one
# seconds to build a replicate (train or load the subject and the oracle, start the worker's sandbox template):
# never the method's clock, so a short --time-limit for methods cannot fail jobs on a slow or busy machine
PREPARE_TIME_LIMIT = 3600.0


def prepare_time_limit(job_time_limit: float | None) -> float:
    """The preparation's own limit: at least `PREPARE_TIME_LIMIT`, more if the jobs are given more."""
    return max(PREPARE_TIME_LIMIT, job_time_limit or 0.0)
# the default memory limit per job: this share of the machine's physical memory, divided among the parallel jobs
# (at least `MIN_MEMORY_LIMIT_MB`); one method grew a worker to 18.4 GB on a 23 GB machine before limits existed
DEFAULT_MEMORY_SHARE = 0.8
MIN_MEMORY_LIMIT_MB = 1024.0
# a job that was running when its run died this many times is stored as failed (``killed_run``) instead of
# being started again: retried once, so a job that kills its run cannot block a suite
MAX_RUN_DEATHS = 2
ATTEMPTS_DIR = "attempts"


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
    job_ids: tuple[str, ...] = ()  # every planned job's id (the run's CPU account reads their records)

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
    memory_limit_mb: float | None = None
    run_pid: int = 0  # the run's process, which engine workers watch to end with it
    run_start: str | None = None


_STARTED_ACCOUNTED = False  # True once this process's start-up (its imports) is in a preparation's CPU record


def _prepare_in_process(replicate: ReplicateSpec, cache_dir: str, plugins: tuple[str, ...]) -> str | None:
    global _STARTED_ACCOUNTED
    # the CPU account (`cowbench.cost`): the first call in a process also carries that process's imports
    cpu0 = 0.0 if not _STARTED_ACCOUNTED else time.process_time()
    wall0 = time.time()
    try:
        from cowbench.sandbox import _template, template_startup_cpu_s  # torch: not at import of the CLI

        # the module's attribute, read now: a test fixture may replace the cache
        misses = replicate_module._prepare_cached.cache_info().misses
        startup0 = template_startup_cpu_s()
        load_plugins_once(plugins)
        prepare(replicate, Path(cache_dir))
        # this worker's sandbox template (seconds of imports) starts here, on the preparation's clock, not on
        # the first job's time limit
        _template(tuple(plugins))
    except Exception as exc:  # the jobs of this replicate will record the failure with its traceback
        return f"{type(exc).__name__}: {exc}"
    startup = template_startup_cpu_s() - startup0
    if not _STARTED_ACCOUNTED or replicate_module._prepare_cached.cache_info().misses != misses or startup:
        _STARTED_ACCOUNTED = True
        with contextlib.suppress(OSError):
            record_prepare(cache_dir, replicate.id, time.process_time() - cpu0 + startup, time.time() - wall0)
    return None


def _in_worker(call: _Call) -> None:
    """What every engine worker does before a call: end with the run, leave Ctrl-C to the run."""
    end_with_run(call.run_pid, call.run_start)
    ignore_interrupts_in_worker(call.run_pid)


# -- jobs that were running when their run died -----------------------------------------------------------


def attempts_path(out: Path, job_id: str) -> Path:
    return Path(out) / ATTEMPTS_DIR / job_id[:2] / f"{job_id}.json"


def _run_token(call: _Call) -> str:
    return f"{call.run_pid}:{call.run_start}"


def _read_attempts(out: Path, job_id: str) -> dict[str, Any]:
    try:
        marker = read_json(attempts_path(out, job_id), 4096)
    except (OSError, ValueError):  # none, or unreadable: no death on record
        return {"starts": 0}
    return marker if isinstance(marker, dict) and isinstance(marker.get("starts"), int) else {"starts": 0}


def _mark_started(out: Path, spec: JobSpec, call: _Call) -> int | None:
    """Count one more start of ``spec`` not (yet) followed by its record; the starts counted before, or None when
    another process holds the job's lock (it runs the job: nothing to count here)."""
    with hold(job_lock_path(out, spec.id), wait=0.0) as free:
        if not free:
            return None
        starts = _read_attempts(out, spec.id)["starts"]
        if starts < MAX_RUN_DEATHS:
            write_json_atomic(attempts_path(out, spec.id), {"starts": starts + 1, "run": _run_token(call)})
        return starts


def _clear_attempts(out: Path, job_id: str) -> None:
    attempts_path(out, job_id).unlink(missing_ok=True)


def _forget_interrupted(out: Path, jobs: Sequence[JobSpec], call: _Call) -> None:
    """After a Ctrl-C or SIGTERM (an orderly stop, not a job's doing), take back this run's starts of the jobs
    it did not finish, so an interrupted job is not counted as one that killed its run."""
    for job in jobs:
        marker = _read_attempts(out, job.id)
        if marker.get("run") != _run_token(call):
            continue
        if marker["starts"] <= 1:
            _clear_attempts(out, job.id)
        else:
            write_json_atomic(attempts_path(out, job.id), {"starts": marker["starts"] - 1, "run": ""})


def _stored(out: Path, spec: JobSpec, status: str, call: _Call) -> str:
    """After a job's record is stored by this run: forget its starts and add the record to the ledger."""
    if status != "skipped":
        _clear_attempts(out, spec.id)
        ledger.record_job(out, spec.id, call.plugins)
    return status


def _job_kwargs(call: _Call, wait: bool) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"planned_at": call.planned_at, "wait": wait}
    # the job flow passes it to the sandbox of the method's process (stored as failed, reason ``memory``); a
    # run_job that predates the parameter runs without it
    if "memory_limit_mb" in _RUN_JOB_PARAMS:
        kwargs["memory_limit_mb"] = call.memory_limit_mb
    return kwargs


_RUN_JOB_PARAMS = frozenset(inspect.signature(run_job).parameters)


def _prepare_worker(args: tuple[ReplicateSpec, _Call]) -> str | None:
    replicate, call = args
    _in_worker(call)
    # a second run sharing the directory waits here, then loads the models the first one trained
    limit = prepare_time_limit(call.time_limit)
    with hold(replicate_lock_path(Path(call.cache_dir), replicate.id), wait=limit):
        if not call.isolate:
            return _prepare_in_process(replicate, call.cache_dir, call.plugins)
        result = call_isolated(_prepare_in_process, (replicate, call.cache_dir, call.plugins), time_limit=limit)
    return f"preparing the replicate: {result.message}" if isinstance(result, Lost) else result


def _job_worker(args: tuple[JobSpec, _Call, bool]) -> tuple[str, str]:
    spec, call, wait = args
    _in_worker(call)
    out = Path(call.out)
    job_args = (spec, out, Path(call.cache_dir), call.plugins)
    job_kwargs = _job_kwargs(call, wait)
    starts = _mark_started(out, spec, call)
    if starts is not None and starts >= MAX_RUN_DEATHS:
        status = store_failure(spec, out, "killed_run",
                               f"killed_run: the job was running when its run died {starts} times (the run killed, "
                               "or the job killing the process that ran it); stored as failed so it cannot block "
                               "the suite (cowbench run --retry-failed tries it again)", planned_at=call.planned_at)
        return spec.id, _stored(out, spec, status, call)
    if not call.isolate:  # the debugger shortcut: the method runs in this process (its records say unsafe)

        return spec.id, _stored(out, spec, run_job(*job_args, **{**job_kwargs, "run_method": run_inprocess}), call)
    # the replicate first, on its own clock and limit (after a restart the new child reloads it): the job's time
    # limit is for the method; a preparation failure is recorded by run_job itself with its traceback
    result = call_isolated(_prepare_in_process, (spec.replicate, call.cache_dir, call.plugins),
                           time_limit=prepare_time_limit(call.time_limit))
    if isinstance(result, Lost):
        result = Lost(result.reason, f"preparing the replicate: {result.message}", result.traceback)
    else:
        result = call_isolated(run_job, job_args, job_kwargs, time_limit=call.time_limit)
    if isinstance(result, Lost):  # the child is gone, and its lock with it: store the job's failure here
        result = store_failure(spec, out, result.reason, result.message, result.traceback, planned_at=call.planned_at)
    return spec.id, _stored(out, spec, result, call)


def _replicate_of(args: tuple[JobSpec, _Call, bool]) -> str:
    """The bundle key of a `_job_worker` call: its job's replicate."""
    return args[0].replicate.id


def _module_in_cwd(name: str) -> str | None:
    """The file of a plugin module found only because the working folder is on this process's import path
    (``python -m cowbench``): workers do not have that folder on theirs (`safe_import_path`), so they load the
    file instead. None for any other module (installed, a package, or not found)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    origin = getattr(spec, "origin", None)
    if not origin or spec.submodule_search_locations is not None or not origin.endswith(".py"):
        return None
    return origin if Path(origin).parent == Path.cwd() else None


def default_n_jobs() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def plan_run(suite: Suite, out: Path, *, force: bool = False, retry_failed: bool = False,
             plugins: Sequence[str] = ()) -> tuple[list[JobSpec], list[JobSpec], RunSummary]:
    """(all planned jobs, the ones to run, the summary of what is already there).

    A job file the folder's ledger does not vouch for (`cowbench.ledger`) counts as not run: it is rerun.
    """
    jobs = suite.plan(plugins)
    index = ledger.index(out)
    status = {j.id: job_status(out, j.id, index) for j in jobs}
    done = sum(s == "ok" for s in status.values())
    failed = sum(s == "failed" for s in status.values())
    if force:
        todo = jobs
    else:
        todo = [j for j in jobs if status[j.id] is None or (retry_failed and status[j.id] == "failed")]
    failed_kept = 0 if (force or retry_failed) else failed
    return jobs, todo, RunSummary(planned=len(jobs), done_before=done, failed_before=failed_kept,
                                  job_ids=tuple(j.id for j in jobs))


def physical_memory_mb() -> float | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20
    except (ValueError, OSError, AttributeError):
        return None


def default_memory_limit_mb(n_jobs: int) -> float | None:
    """`DEFAULT_MEMORY_SHARE` of physical memory divided among ``n_jobs`` parallel jobs, at least
    `MIN_MEMORY_LIMIT_MB`; None where the machine's memory is unknown."""
    total = physical_memory_mb()
    return None if total is None else max(MIN_MEMORY_LIMIT_MB, round(DEFAULT_MEMORY_SHARE * total / max(1, n_jobs)))


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM stops the run as Ctrl-C does (KeyboardInterrupt: workers ended, one line, exit 130)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_suite(suite: Suite, out: Path, *, launcher: str = "joblib", n_jobs: int | None = None,
              force: bool = False, retry_failed: bool = False, plugins: Sequence[str] = (),
              progress: bool | None = None, log: Any = None, time_limit: float | None = None,
              scheduler: str | None = None, memory_limit: float | None = None) -> RunSummary:
    """Run every job of ``suite`` not yet done under ``out``; see `RunSummary`.

    ``time_limit`` (seconds per job; default: the suite's ``time_limit``, else `DEFAULT_TIME_LIMIT`) stops a job
    that runs longer and stores it as failed with reason ``timeout``; it needs an isolating launcher (every one
    but ``inprocess``). ``memory_limit`` (megabytes per job; default: the suite's ``memory_limit``, else
    `default_memory_limit_mb`) is passed to the job as ``memory_limit_mb`` (a job over it fails, reason
    ``memory``). ``scheduler`` is the address of an existing Dask cluster (``launcher="dask"``).
    ``progress``: False shows nothing; otherwise the preparation of the replicates and the jobs show their
    progress on stderr, a bar on a terminal and periodic lines elsewhere (`cowbench.progress`).

    Nothing is written before the engine is up (an unreachable scheduler writes nothing). SIGTERM stops the run
    as Ctrl-C does; engine workers end with the run even after a ``kill -9`` (`cowbench.launchers.end_with_run`).
    A job that was running when its run died `MAX_RUN_DEATHS` times is stored as failed, reason ``killed_run``.
    Each stored record is added to the folder's ledger (`cowbench.ledger`).
    """
    out = Path(out).absolute()  # engine workers may run elsewhere (Dask): they need the full path
    engine = get_launcher(launcher)
    if scheduler and not engine.remote:
        raise InputError(f"--scheduler is for --launcher dask, not {launcher!r}")
    if time_limit is None:
        time_limit = getattr(suite, "time_limit", None) or DEFAULT_TIME_LIMIT
    time_limit = check_time_limit(time_limit)
    n_jobs = n_jobs or default_n_jobs()
    if memory_limit is None:
        memory_limit = getattr(suite, "memory_limit", None) or default_memory_limit_mb(n_jobs)
    memory_limit = check_memory_limit(memory_limit)
    planned_at = time.time()  # a job file written after this was written by another run: not ours to redo
    jobs, todo, summary = plan_run(suite, out, force=force, retry_failed=retry_failed, plugins=plugins)
    if retry_failed or force:  # asked for explicitly: the jobs stored as killed_run get their retry again
        for job in todo:
            _clear_attempts(out, job.id)
    manifest = {"suite": suite.to_dict(), "suite_hash": suite.hash,
                "jobs": [j.id for j in jobs], "skipped": suite.skipped(),
                "sweeps": list(getattr(suite, "sweeps", ())),
                # draw index of every job not at its defaults (`cowbench.trials`), and the rules the
                # report applies (`cowbench.selection`)
                "trials": {j.id: j.trial for j in jobs if j.trial},
                "selection": list(getattr(suite, "selection", ("defaults",)))}
    # plugin files by absolute path: workers (Dask) may run in another directory
    plugins = tuple(str(Path(p).absolute()) if p.endswith(".py") else _module_in_cwd(p) or p for p in plugins)
    run_pid, run_start = run_identity()
    call = _Call(str(out), str(out / "cache"), plugins, time_limit, engine.isolates, planned_at,
                 memory_limit_mb=memory_limit, run_pid=run_pid, run_start=run_start)

    def begin() -> None:  # once the engine is up: an engine that cannot start must leave nothing behind
        if log is not None:
            log(f"{summary.planned} planned: {summary.done_before} done, {summary.failed_before} failed, "
                f"{len(todo)} to run")
        remove_stale_tmp(out)  # left by writers killed mid-write; live writers' files are younger
        write_manifest(out, manifest)
        if not ledger.start(out, plugins) and log is not None:
            log(f"warning: {out} holds results but no ledger: run 'cowbench ledger adopt {out}' after "
                "'cowbench verify' to start one")

    if not todo:
        begin()
        return summary
    replicates = list({j.replicate.id: j.replicate for j in todo}.values())
    by_id = {j.id: j for j in todo}
    unfinished = dict(by_id)


    show = progress is not False  # None (the default): a bar on a terminal, periodic lines elsewhere
    bar = None
    try:
        with _sigterm_as_interrupt(), safe_import_path(), engine.session(n_jobs, scheduler=scheduler) as run:
            begin()
            # train each replicate's subject and oracle once, in parallel, before the methods need them
            with Progress(len(replicates), "replicates prepared", enabled=show) as prep:
                for result in run(_prepare_worker, [(r, call) for r in replicates]):
                    # a failure is recorded by each of its jobs; here it is only counted
                    prep.update(failed=int(isinstance(result, EngineError) or result is not None))
            bar = Progress(len(todo), "jobs", enabled=show)
            # first pass: skip what another run holds; second pass: wait for those it has not stored (if that
            # run dies, its locks go with it and this one runs the jobs)
            pending = todo
            # an engine that bundles (Dask) runs a replicate's jobs together: its worker loads the replicate once
            grouped = {"group": _replicate_of} if engine.bundles else {}
            for wait in (False, True):
                held_elsewhere = []
                for result in run(_job_worker, [(j, call, wait) for j in pending], **grouped):
                    if isinstance(result, EngineError):
                        spec = result.item[0]
                        status = store_failure(spec, out, "engine", f"the launcher lost the job: {result.message}",
                                               planned_at=planned_at)
                        result = spec.id, _stored(out, spec, status, call)
                    job_id, status = result
                    unfinished.pop(job_id, None)
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
    except KeyboardInterrupt:
        _forget_interrupted(out, list(unfinished.values()), call)
        raise
    finally:
        if bar is not None:
            bar.close()
        if engine.isolates:
            close_isolated()  # the serial launcher's child belongs to this thread: do not leave it behind
    return summary
