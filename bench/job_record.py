"""Job records: running one job under its lock and storing what it did (status, metrics, outputs, read log,
run mode, told routes, plugins, provenance), failures with machine-independent tracebacks."""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import platform
import time
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cowbench.blind_run import INPROCESS_MODE
from cowbench.fingerprint import machine_fingerprint
from cowbench.job_run import (
    BatchDependent,
    MethodLost,
    blind_refit,
    blind_step,
    default_run_method,
    run_mode_of,
    score_step,
)
from cowbench.job_spec import JobSpec, method_info
from cowbench.locks import hold, job_lock_path
from cowbench.loeo import loeo_accuracy
from cowbench.plugins import load_plugins_once, plugin_digests
from cowbench.registries import METHODS
from cowbench.replicate import Replicate, _prepare_cached, prepare, replicate_fingerprint
from cowbench.store import SCHEMA_VERSION, job_path, run_path, write_json_atomic

if TYPE_CHECKING:

    from cowbench.method import MethodOutput


_DETAILS_ALLOWED = "numbers, strings, booleans, None, lists, tuples, numpy scalars and arrays, dicts"


class UnstorableOutput(TypeError):
    """A method's output holds something the JSON record cannot hold."""


def _storable_key(key: Any, where: str) -> str:
    # JSON object keys are strings; numbers and booleans become their JSON text, as json.dumps does
    if isinstance(key, np.generic):
        key = key.item()
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, bool | int | float):
        return json.dumps(key)
    raise UnstorableOutput(f"{where} has a key of type {type(key).__name__} ({key!r}); allowed: {_DETAILS_ALLOWED}")


def _storable(value: Any, where: str) -> Any:
    """``value`` as plain JSON data: numpy scalars and arrays become numbers and lists, NaN and ±inf become null.

    Anything else (an object, a tensor, a dict with non-string keys) raises `UnstorableOutput` naming where.
    """
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, np.ndarray):
        return _storable(value.tolist(), where)
    if isinstance(value, np.generic):
        return _storable(value.item(), where)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        # JSON has no NaN; null is the store's "missing", which is what an undefined diagnostic is
        return value if np.isfinite(value) else None
    if isinstance(value, Mapping):
        return {_storable_key(k, where): _storable(v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_storable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise UnstorableOutput(f"{where} is a {type(value).__name__}, which cannot be stored; allowed: {_DETAILS_ALLOWED}")


def _outputs_summary(output: MethodOutput) -> dict[str, Any]:
    """The stored part of a method's output (storing is part of the job: an unstorable detail fails it)."""
    def clean(d):
        return None if d is None else {k: float(v) for k, v in sorted(d.items())}

    return {"world_coef": clean(output.world_coef), "model_coef": clean(output.model_coef),
            "spurious_score": clean(output.spurious_score), "abstain": bool(output.abstain),
            "edited": output.edited is not None,
            "discovered": None if output.discovered is None else {
                "point": output.discovered["point"],
                "directions": _storable(np.asarray(output.discovered["directions"], dtype=np.float64), "discovered")},
            "algorithm": None if output.algorithm is None else _storable(dict(output.algorithm), "algorithm"),
            "details": _storable(output.details, "details")}


@functools.lru_cache(maxsize=1)
def _provenance() -> dict[str, Any]:
    import importlib.metadata as md

    versions = {"python": platform.python_version()}
    for pkg in ("cowbench", "numpy", "torch", "scikit-learn", "pandas", "scipy"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None

    return {"versions": versions, "host": platform.node(), "machine": platform.machine(),
            "fingerprint": machine_fingerprint()}


def provenance() -> dict[str, Any]:
    """Package versions, host and machine fingerprint of this process (read once per process; a copy per call)."""
    return copy.deepcopy(_provenance())


def job_provenance() -> dict[str, Any]:
    """What a job record keeps of `provenance`: versions, machine type and fingerprint (not the host name).

    Stored with the job, not only in the uncommitted ``runs/`` folder, so a report regenerated in a clone keeps
    its machine line and fingerprints (issue 19, §3).
    """
    prov = provenance()
    fingerprint = dict(prov["fingerprint"])
    # thread counts do not change results (jobs pin one thread) but differ between launchers (Dask workers set
    # them): left out, so a job file stays byte-identical whatever the launcher
    fingerprint["env"] = {k: v for k, v in (fingerprint.get("env") or {}).items() if not k.endswith("_NUM_THREADS")}
    return {"versions": prov["versions"], "machine": prov["machine"], "fingerprint": fingerprint}



_PACKAGE_ROOTS: list[tuple[str, str]] | None = None


def _package_roots() -> list[tuple[str, str]]:
    """(absolute folder, how a stored traceback names it), most specific first."""
    global _PACKAGE_ROOTS
    if _PACKAGE_ROOTS is None:
        import importlib
        import sys
        import sysconfig

        roots = []
        for pkg in ("cowbench.generators", "cowbench.methods", "cowbench.scores", "cowbench.launchers", "cowbench"):
            with contextlib.suppress(ImportError, AttributeError, TypeError):
                for folder in importlib.import_module(pkg).__path__:
                    roots.append((str(Path(folder).resolve()), pkg.replace(".", "/")))
        sites = [sysconfig.get_paths().get(k) for k in ("purelib", "platlib")]
        sites += [p for p in sys.path if p.endswith(("site-packages", "dist-packages"))]  # a venv's base too
        roots += [(str(Path(p).resolve()), "<site-packages>") for p in sites if p]
        roots.append((str(Path(sysconfig.get_paths()["stdlib"]).resolve()), "<python>"))
        roots.append((str(Path(sys.prefix).resolve()), "<python>"))
        _PACKAGE_ROOTS = sorted(set(roots), key=lambda r: -len(r[0]))
    return _PACKAGE_ROOTS


def portable_traceback(text: str) -> str:
    """``text`` with every absolute path of this machine made relative: package files as ``cowbench/...``
    (``cowbench/methods/...``), installed packages as ``<site-packages>/...``, the standard library as
    ``<python>/...``, any other file (a plugin, a temporary folder) by its file name, ``<elsewhere>/name``."""
    import re

    def relative(path: str) -> str:
        for root, name in _package_roots():
            if path == root or path.startswith(root + "/"):
                return name + path[len(root):]
        return f"<elsewhere>/{Path(path).name}"

    # a quoted path (tracebacks: File "/abs/x.py") or a bare absolute path of two or more parts
    text = re.sub(r'(?<=File ")(/[^"]+)(?=")', lambda m: relative(m.group(1)), text)
    return re.sub(r"(?<![\w<>.])(/(?:[\w.+-]+/)+[\w.+-]+)", lambda m: relative(m.group(1)), text)


class SharedStateChanged(RuntimeError):
    """A job changed the data or models shared by the jobs of its replicate."""


def _base_record(spec: JobSpec) -> dict[str, Any]:
    return {"schema_version": SCHEMA_VERSION, "job_id": spec.id, "spec": spec.to_dict(), "seeds": spec.seeds(),
            "method_info": None if spec.method_info is None else dict(spec.method_info),
            "provenance": job_provenance()}


def _failure(reason: str, error: str, tb: str) -> dict[str, Any]:
    # no machine paths in stored records (committed failed jobs too): paths relative to the package
    return {"status": "failed", "reason": reason, "error": portable_traceback(error),
            "traceback": portable_traceback(tb)}


def _stored_since(out: Path, job_id: str, since: float | None) -> bool:
    """Whether a job file was written at or after ``since`` (by another run sharing the directory)."""
    if since is None:
        return False
    try:
        return job_path(out, job_id).stat().st_mtime >= since
    except OSError:
        return False


def _write_record(out: Path, spec: JobSpec, record: dict[str, Any], run_info: dict[str, Any]) -> str:
    write_json_atomic(run_path(out, spec.id), {"job_id": spec.id, "status": record["status"], **run_info,
                                               **provenance()})
    try:
        write_json_atomic(job_path(out, spec.id), record)  # last: its presence means done
    except (TypeError, ValueError) as exc:  # the record cannot be stored as JSON: that is the job's failure
        record = {**_base_record(spec), "method_info": record.get("method_info"),
                  **_failure("unstorable", f"the job's record cannot be stored: {type(exc).__name__}: {exc}",
                             traceback.format_exc())}
        write_json_atomic(job_path(out, spec.id), record)
    return record["status"]


def run_job(spec: JobSpec, out: Path, cache_dir: Path | None = None, plugins: tuple[str, ...] = (), *,
            planned_at: float | None = None, wait: bool = False,
            run_method: Callable[[Any], Any] | None = None, memory_limit_mb: float | None = None) -> str:
    """Run one job under its lock and store its record; a failure is stored as a failed job with its traceback.

    The job runs in three steps: prepare (here, in the worker), the method's run through ``run_method`` (default
    `default_run_method`: ``cowbench.sandbox.run_blind``, a fresh process holding only the Task's contents; the
    ``inprocess`` launcher passes ``run_inprocess``), and scoring (here, where no method code ran).
    Returns ``ok`` or ``failed``, or ``skipped`` when another process holds the job's lock (``wait=False``) or
    stored the job at or after ``planned_at`` (another run sharing ``out`` did it). Never raises for a failure
    of the method. A job that changes its replicate's shared data or models fails, and the replicate is
    dropped from the cache so the next job loads it clean. ``memory_limit_mb`` bounds the method's process
    (the default runner's; a job over it fails with reason ``memory``).
    """
    if run_method is None and memory_limit_mb is not None:
        import functools

        run_method = functools.partial(default_run_method(), memory_limit_mb=int(memory_limit_mb))
    with hold(job_lock_path(out, spec.id), wait=None if wait else 0.0) as held:
        if not held or _stored_since(out, spec.id, planned_at):
            return "skipped"
        return _run_job_locked(spec, Path(out), cache_dir, plugins, run_method)


def _sandbox_cpu_s() -> float:
    """CPU seconds of the sandbox processes this thread has reaped (0 where the sandbox is not installed)."""
    try:
        from cowbench.sandbox import sandbox_cpu_s
    except ImportError:
        return 0.0
    return sandbox_cpu_s()


def _run_job_locked(spec: JobSpec, out: Path, cache_dir: Path | None, plugins: tuple[str, ...],
                    run_method: Callable[[Any], Any] | None) -> str:
    started = time.time()
    # the job's CPU over its process tree: this process's (preparing, blinding, scoring) plus every sandbox
    # process it used (the method's run, the edited model's evaluation), as the kernel counted them
    cpu_start, sandbox_start = time.process_time(), _sandbox_cpu_s()
    record = _base_record(spec)
    resources: dict[str, Any] = {}
    runner = run_method or default_run_method()
    mode = run_mode_of(runner)
    record["run_mode"] = mode
    try:
        record["plugins"] = plugin_digests(plugins)
        if mode == INPROCESS_MODE or spec.method_info is None:
            # the method's class is needed here only in-process, or for a spec made without its metadata
            load_plugins_once(plugins)
        rep = prepare(spec.replicate, cache_dir)
        info = dict(spec.method_info) if spec.method_info is not None else method_info(METHODS.get(spec.method))
        record["method_info"] = info
        try:
            ran = blind_step(rep, spec.method, spec.hparams, spec.fit_seed, info, runner, plugins=plugins,
                             run_mode=mode)
        finally:
            _check_shared_state(rep)
        try:
            refit = None
            fold_cpu: list[float] = []
            if spec.loeo:  # refit blind, as the job's own run: never in this process
                folds = blind_refit(spec.method, spec.hparams, info, runner, ran.audit, plugins=plugins,
                                    run_mode=mode, method_cpu=fold_cpu)

                def refit():
                    folder = Path(cache_dir) / spec.replicate.id if cache_dir is not None else None
                    return loeo_accuracy(rep, folds, spec.fit_seed, folder=folder)
            try:
                metrics, extra = score_step(rep, ran, frozenset(info["access"]), loeo=refit)
            finally:
                _check_shared_state(rep)
        finally:
            ran.close()
        resources = {**ran.resources, **extra}
        if spec.loeo:
            resources["loeo_method_cpu_s"] = sum(fold_cpu)  # the refits' method processes (in sandbox_cpu_s too)
        record.update(status="ok", metrics=metrics, outputs=_outputs_summary(ran.output), told=ran.told,
                      read_log=ran.read_log)
        # {metric: reason} for guarded scores that refused a value (cowbench.scores.Missing); plain absences
        # (no output for that track) are not listed
        record["missing"] = dict(getattr(metrics, "missing", {}))
    except SharedStateChanged as exc:
        record.update(_failure("mutation", f"{type(exc).__name__}: {exc}", traceback.format_exc()))
    except UnstorableOutput as exc:
        record.update(_failure("unstorable", f"{type(exc).__name__}: {exc}", traceback.format_exc()))
    except BatchDependent as exc:
        record.update(_failure("batch_dependent", f"{type(exc).__name__}: {exc}", traceback.format_exc()))
    except MethodLost as exc:
        record.update(_failure(exc.reason, str(exc), exc.traceback))
    except Exception as exc:  # a failing method fails its own job, never the sweep
        record.update(_failure("exception", f"{type(exc).__name__}: {exc}", traceback.format_exc()))
    harness_cpu, sandbox_cpu = time.process_time() - cpu_start, _sandbox_cpu_s() - sandbox_start
    return _write_record(out, spec, record, {"started_unix": started, "job_wall_s": time.time() - started,
                                             "job_cpu_s": harness_cpu + sandbox_cpu, "harness_cpu_s": harness_cpu,
                                             "sandbox_cpu_s": sandbox_cpu, **resources})


def _check_shared_state(rep: Replicate) -> None:
    if replicate_fingerprint(rep) != rep.fingerprint:
        _prepare_cached.cache_clear()  # the next job of this replicate rebuilds it from the seed and cache
        raise SharedStateChanged(
            "the method changed the data or models shared by the jobs of its replicate (arrays made "
            "writeable and overwritten, or the subject edited in place); methods must not modify their inputs")


def store_failure(spec: JobSpec, out: Path, reason: str, error: str, tb: str = "", *,
                  planned_at: float | None = None) -> str:
    """Store a job whose process died or overran as failed (``reason``: timeout, exit, signal, interrupt...).

    Called by the process that supervised the job once the job's own process is gone (its lock with it).
    Returns ``failed``, or ``skipped`` if another process holds the lock or stored the job since ``planned_at``.
    """
    with hold(job_lock_path(out, spec.id), wait=5.0) as held:
        if not held or _stored_since(out, spec.id, planned_at):
            return "skipped"
        return _write_record(Path(out), spec, {**_base_record(spec), **_failure(reason, error, tb)},
                             {"started_unix": None})
