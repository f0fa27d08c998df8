"""Jobs: the spec of one (scenario, replicate, method, hyperparameters) run, its seeds, and running it.

A replicate (scenario, replicate index, root seed, subject config) fixes the data and the shared
subject and oracle models; a job adds a method and its hyperparameters. Ids are sha256 of the
canonical JSON spec, which includes the generator, subject, method and scorer versions.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import platform
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cowbench.registries import METHODS, SCENARIOS
from cowbench.seeds import canonical_json, derive_seed, stable_hash
from cowbench.store import SCHEMA_VERSION, job_path, run_path, write_json_atomic

if TYPE_CHECKING:
    from torch import nn

    from cowbench.data import Dataset
    from cowbench.generators.scm import Scenario
    from cowbench.method import Method, MethodOutput


@dataclass(frozen=True)
class ReplicateSpec:
    """What fixes a replicate's data and models: scenario spec, replicate index, root seed, subject config."""

    scenario: Mapping[str, Any]
    replicate: int
    root_seed: int
    subject: Mapping[str, Any]

    def __post_init__(self) -> None:
        # a scenario that declares its subject (planted networks) overrides the suite's, before the id is taken
        from cowbench.subject import subject_for

        object.__setattr__(self, "subject", subject_for(self.scenario, self.subject))

    def to_dict(self) -> dict[str, Any]:
        return {"scenario": dict(self.scenario), "replicate": self.replicate, "root_seed": self.root_seed,
                "subject": dict(self.subject)}

    @property
    def id(self) -> str:
        return stable_hash(self.to_dict())

    @property
    def data_seed(self) -> int:
        """A function of (root seed, scenario spec, replicate) only: every method sees the same data."""
        return derive_seed(self.root_seed, "data", stable_hash(self.scenario), self.replicate)

    @property
    def subject_seed(self) -> int:
        return derive_seed(self.data_seed, "subject", stable_hash(self.subject))


@dataclass(frozen=True)
class JobSpec:
    """One job: a replicate, a method with its hyperparameters, and the method and scorer versions."""

    replicate: ReplicateSpec
    method: str
    hparams: Mapping[str, Any]
    method_version: str
    scorer_version: str
    # also refit with each training environment held out, for the loeo selection rule (`cowbench.selection`);
    # in the spec only when set, so every other job keeps its id
    loeo: bool = False
    # the hyperparameter draw this job's setting came from (`cowbench.trials`): which suite asked for it, not
    # what runs, so it is left out of the spec and the id (the manifest records it)
    trial: int = field(default=0, compare=False)

    def to_dict(self) -> dict[str, Any]:
        loeo = {"loeo": True} if self.loeo else {}
        return {**self.replicate.to_dict(), "method": self.method, "hparams": dict(self.hparams),
                "versions": {"method": self.method_version, "scorer": self.scorer_version}, **loeo}

    @property
    def id(self) -> str:
        return stable_hash(self.to_dict())

    @property
    def hparams_id(self) -> str:
        return stable_hash(dict(self.hparams))[:16]

    @property
    def fit_seed(self) -> int:
        """A function of (data seed, method, hyperparameters): the method's ``random_state``."""
        return derive_seed(self.replicate.data_seed, "fit", self.method, self.hparams_id)

    def seeds(self) -> dict[str, int]:
        return {"root_seed": self.replicate.root_seed, "data_seed": self.replicate.data_seed,
                "subject_seed": self.replicate.subject_seed, "fit_seed": self.fit_seed}


def make_job(replicate: ReplicateSpec, method: str, hparams: Mapping[str, Any], *, trial: int = 0,
             loeo: bool = False) -> JobSpec:
    from cowbench.scores import scorer_version

    cls = METHODS.get(method)
    return JobSpec(replicate, method, dict(hparams), cls.version, scorer_version(), loeo=loeo, trial=trial)


# -- replicate preparation (shared by all jobs of a replicate) -------------------------------------


@dataclass
class Replicate:
    scenario: Scenario
    data: Dataset
    subject: nn.Module
    oracle: nn.Module
    subject_config: dict[str, Any]
    base_ace: dict[str, float]  # the subject's reliance on test_id: the model truth every job is scored against
    # each test_id unit's contribution to base_ace (their means), for the scores' standard errors; computed once
    # per replicate instead of once per edit job
    base_ace_units: dict[str, np.ndarray] | None = field(default=None, repr=False)
    fingerprint: str = ""  # checksum of what jobs share (data, subject, oracle): a job that changes it fails
    # unit- and direction-level truth of a planted subject (`cowbench.planted.PlantedTruth`), for the localization
    # scores; None for trained subjects. Held here, never in the model or the Task a method gets
    unit_truth: Any = field(default=None, repr=False)


def replicate_fingerprint(rep: Replicate) -> str:
    """sha256 over the replicate's shared state: every split's arrays, the subject's and the oracle's parameters.

    Methods get read-only views, but ``setflags(write=True)`` or an in-place model edit can still change them;
    comparing this before and after a job catches it, so no later job of the replicate is scored on changed data.
    """
    import hashlib

    h = hashlib.sha256(rep.data.checksum().encode())
    for model in (rep.subject, rep.oracle):
        for name, tensor in sorted(model.state_dict().items()):
            h.update(name.encode())
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    h.update(repr(sorted(rep.base_ace.items())).encode())  # repr, not JSON: a NaN reliance must not fail here
    return h.hexdigest()


def scenario_from_spec(spec: Mapping[str, Any]) -> Scenario:
    """Rebuild a scenario from its spec, refusing a spec made by another version of its generator."""
    family = SCENARIOS.get(spec["generator"])
    if family.version != spec["version"]:
        raise ValueError(f"scenario {spec['generator']!r} is at version {family.version}, "
                         f"the spec was made by version {spec['version']}")
    return family(**spec["knobs"])


def _load_or_train(path: Path | None, train: Any) -> nn.Module:
    import io

    import torch

    from cowbench.store import read_checked, write_checked

    data = read_checked(path) if path is not None else None
    if data is not None:  # only a cache file whose checksum matches is trusted; anything else is rebuilt
        model = train(fit=False)
        try:
            model.load_state_dict(torch.load(io.BytesIO(data), weights_only=True))
            return model.eval()
        except (RuntimeError, ValueError, KeyError, EOFError):  # written by an incompatible model: rebuild
            pass
    model = train(fit=True)
    if path is not None:
        buffer = io.BytesIO()
        torch.save(model.state_dict(), buffer)
        write_checked(path, buffer.getvalue())
    return model


def build_replicate(scenario: Mapping[str, Any], subject: Mapping[str, Any], data_seed: int, subject_seed: int,
                    folder: Path | None = None, *, test_seed: int | None = None) -> Replicate:
    """Data, subject and oracle from explicit seeds (`prepare` derives them from a `ReplicateSpec`).

    ``cowbench reliability`` calls it directly to vary the data seed and the subject seed one at a time.
    ``test_seed`` (reliability only): the test splits (``test_id``, ``test_ood``, ``test_bal``) come from this
    seed's sample and the training splits from ``data_seed``'s, so test-set noise can be measured alone.
    Subject and oracle weights are cached under ``folder`` when given.
    """
    from cowbench.models import build_model
    from cowbench.subject import SubjectConfig, decorrelated_train, fit_fresh, loss_for

    scn = scenario_from_spec(scenario)
    cfg = SubjectConfig.from_mapping({k: v for k, v in subject.items() if k != "version"})
    data = scn.sample(data_seed)
    if test_seed is not None and test_seed != data_seed:
        import dataclasses

        test = scn.sample(test_seed)
        data = dataclasses.replace(data, test_id=test.test_id, test_ood=test.test_ood, test_bal=test.test_bal)
    seed = subject_seed

    def trainer(x: np.ndarray, y: np.ndarray):
        def train(fit: bool):
            if fit:
                return fit_fresh(cfg, x, y, seed, loss=loss_for(scn))
            return build_model(cfg.arch, x.shape[1], hidden=cfg.hidden, seed=seed)
        return train

    unit_truth = None
    if cfg.arch == "planted":  # built by construction from the scenario, not trained: nothing to cache
        from cowbench.planted import planted_models

        subject, oracle, unit_truth = planted_models(scn, seed=seed)  # per replicate: its own draws
    else:
        subject = _load_or_train(folder / "subject.pt" if folder else None, trainer(data.train.x, data.train.y))
        decorrelated = decorrelated_train(scn, data.train, seed)
        oracle = _load_or_train(folder / "oracle.pt" if folder else None, trainer(decorrelated.x, decorrelated.y))
    from cowbench.model_truth import reliance_units

    units = reliance_units(subject, scn, data.test_id)
    base_ace = {v: float(np.mean(u)) for v, u in units.items()}  # exactly what `reliance` returns
    rep = Replicate(scn, data, subject, oracle, cfg.to_dict(), base_ace, units, unit_truth=unit_truth)
    rep.fingerprint = replicate_fingerprint(rep)
    return rep


@functools.lru_cache(maxsize=2)
def _prepare_cached(replicate_json: str, cache_dir: str | None) -> Replicate:
    import json

    spec = json.loads(replicate_json)
    rspec = ReplicateSpec(spec["scenario"], spec["replicate"], spec["root_seed"], spec["subject"])
    folder = Path(cache_dir) / rspec.id if cache_dir else None
    return build_replicate(spec["scenario"], spec["subject"], rspec.data_seed, rspec.subject_seed, folder)


def prepare(replicate: ReplicateSpec, cache_dir: Path | None = None) -> Replicate:
    """Data, subject and oracle of a replicate (trained once, then loaded from ``cache_dir``)."""
    from cowbench.determinism import pinned_threads

    with pinned_threads(1):  # torch and every BLAS pool: results must not depend on the worker count
        return _prepare_cached(canonical_json(replicate.to_dict()), str(cache_dir) if cache_dir else None)


# -- running a job --------------------------------------------------------------------------------


def _reset_peak_rss() -> None:
    # Linux: writing 5 to clear_refs resets the peak resident set size (VmHWM) of this process
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


def _peak_rss_mb() -> float | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def check_output(output: Any, variables: list[str], outputs: frozenset[str]) -> None:
    """Raise `ValueError` if a method's output is malformed (unknown keys, non-finite values, wrong types)."""
    from cowbench.method import MethodOutput

    if not isinstance(output, MethodOutput):
        raise TypeError(f"run() must return a MethodOutput, got {type(output).__name__}")
    for field_name, track in (("world_coef", "world"), ("model_coef", "model"), ("spurious_score", "detect")):
        value = getattr(output, field_name)
        if value is None:
            continue
        if track not in outputs:
            raise ValueError(f"the method returned {field_name} but does not declare output {track!r}")
        if not isinstance(value, Mapping):
            raise TypeError(f"{field_name} must map variable names to floats")
        unknown = set(value) - set(variables)
        if unknown:
            raise ValueError(f"{field_name} has unknown variables {sorted(unknown)}; known: {variables}")
        bad = [k for k, v in value.items() if not np.isfinite(float(v))]
        if bad:
            raise ValueError(f"{field_name} has non-finite values for {bad}")
    if output.edited is not None:
        if "edit" not in outputs:
            raise ValueError("the method returned an edited model but does not declare output 'edit'")
        if not callable(output.edited):
            raise TypeError("edited must be a model (x -> logit)")
    if output.abstain and "detect" not in outputs:
        raise ValueError("the method abstained but does not declare output 'detect'")
    if output.discovered is not None:
        if "discover" not in outputs:
            raise ValueError("the method returned discovered directions but does not declare output 'discover'")
        d = output.discovered
        if not isinstance(d, Mapping) or not isinstance(d.get("point"), str) or d.get("directions") is None:
            raise TypeError("discovered must be {'point': hook point name, 'directions': (k, width) array}")
        arr = np.asarray(d["directions"], dtype=np.float64)
        if arr.ndim != 2 or arr.shape[0] == 0 or not np.isfinite(arr).all():
            raise ValueError(f"discovered['directions'] must be a finite (k >= 1, width) array, got shape {arr.shape}")
    if output.algorithm is not None:
        alg = output.algorithm
        if not isinstance(alg, Mapping) or not ({"coef", "direction_coef"} & set(alg)):
            raise TypeError("algorithm must be {'coef': {variable: float}} and/or {'direction_coef': (k,)}, "
                            "with an 'intercept'")
        unknown = set(alg.get("coef") or {}) - set(variables)
        if unknown:
            raise ValueError(f"algorithm['coef'] has unknown variables {sorted(unknown)}; known: {variables}")


def execute(rep: Replicate, method: Method, fit_seed: int, *, loeo: bool = False
            ) -> tuple[MethodOutput, dict[str, Any], dict[str, Any]]:
    """Run ``method`` on a prepared replicate and score it: (output, metrics, resources).

    ``loeo``: also refit it with each training environment held out (`cowbench.selection.loeo_accuracy`) for
    the ``loeo_acc`` selection metric; its time is ``loeo_wall_s``, apart from the method's.
    """
    from cowbench.access import Task
    from cowbench.scores import compute_scores
    from cowbench.scores.context import ScoreContext

    type(method).check_params(method.hyperparameters())  # a NaN or out-of-range value fails here, named
    from cowbench.determinism import deterministic

    with deterministic(1):  # deterministic torch, one thread in torch and in every BLAS pool
        if method.random_state is None:
            method = method.clone(random_state=fit_seed)
        task = Task(rep.scenario, rep.data, rep.subject, type(method).access,
                    subject_config=rep.subject_config)
        _reset_peak_rss()
        start = time.perf_counter()
        output = method.run(task)
        resources = {"method_wall_s": time.perf_counter() - start, "method_peak_rss_mb": _peak_rss_mb()}
        check_output(output, rep.scenario.variables, type(method).outputs)
        ctx = ScoreContext(rep.scenario, rep.data, output, task.access, rep.subject, rep.oracle, dict(rep.base_ace),
                           used=set(task.used), known_base_units=rep.base_ace_units, unit_truth=rep.unit_truth)
        if loeo:
            from cowbench.selection import loeo_accuracy

            start = time.perf_counter()
            ctx.loeo_acc = loeo_accuracy(rep, method, fit_seed)  # read by the loeo_acc score
            resources["loeo_wall_s"] = time.perf_counter() - start
        metrics = compute_scores(ctx)
    # the routes through which the method learnt which variable is spurious: the record keeps them (``told``)
    # so a report can say in one line why the job is not ranked on detection
    resources["told"] = task.told
    return output, metrics, resources


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
    from cowbench.fingerprint import machine_fingerprint

    return {"versions": versions, "host": platform.node(), "machine": platform.machine(),
            "fingerprint": machine_fingerprint()}


def provenance() -> dict[str, Any]:
    """Package versions, host and machine fingerprint of this process (read once per process; a copy per call)."""
    return copy.deepcopy(_provenance())


_LOADED_PLUGINS: set[str] = set()


def load_plugins_once(plugins: tuple[str, ...]) -> None:
    """Import each plugin once per process: a ``.py`` plugin is executed on every load, and a worker runs many jobs."""
    from cowbench.registry import load_plugin

    for plugin in plugins:
        if plugin not in _LOADED_PLUGINS:
            load_plugin(plugin)
            _LOADED_PLUGINS.add(plugin)


class SharedStateChanged(RuntimeError):
    """A job changed the data or models shared by the jobs of its replicate."""


def _base_record(spec: JobSpec) -> dict[str, Any]:
    return {"schema_version": SCHEMA_VERSION, "job_id": spec.id, "spec": spec.to_dict(), "seeds": spec.seeds(),
            "method_info": None}


def _failure(reason: str, error: str, tb: str) -> dict[str, Any]:
    return {"status": "failed", "reason": reason, "error": error, "traceback": tb}


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
            planned_at: float | None = None, wait: bool = False) -> str:
    """Run one job under its lock and store its record; a failure is stored as a failed job with its traceback.

    Returns ``ok`` or ``failed``, or ``skipped`` when another process holds the job's lock (``wait=False``) or
    stored the job at or after ``planned_at`` (another run sharing ``out`` did it). Never raises for a failure
    of the method. A job that changes its replicate's shared data or models fails, and the replicate is
    dropped from the cache so the next job loads it clean.
    """
    from cowbench.locks import hold, job_lock_path

    with hold(job_lock_path(out, spec.id), wait=None if wait else 0.0) as held:
        if not held or _stored_since(out, spec.id, planned_at):
            return "skipped"
        return _run_job_locked(spec, Path(out), cache_dir, plugins)


def _run_job_locked(spec: JobSpec, out: Path, cache_dir: Path | None, plugins: tuple[str, ...]) -> str:
    started = time.time()
    record = _base_record(spec)
    resources: dict[str, Any] = {}
    try:
        load_plugins_once(plugins)
        rep = prepare(spec.replicate, cache_dir)
        cls = METHODS.get(spec.method)
        record["method_info"] = {"family": cls.family, "access": sorted(cls.access),
                                 "outputs": sorted(cls.outputs)}
        method = cls(**spec.hparams)
        try:
            output, metrics, resources = execute(rep, method, spec.fit_seed, loeo=spec.loeo)
        finally:
            if replicate_fingerprint(rep) != rep.fingerprint:
                _prepare_cached.cache_clear()  # the next job of this replicate rebuilds it from the seed and cache
                raise SharedStateChanged(
                    "the method changed the data or models shared by the jobs of its replicate (arrays made "
                    "writeable and overwritten, or the subject edited in place); methods must not modify their inputs")
        record.update(status="ok", metrics=metrics, outputs=_outputs_summary(output), told=resources.pop("told"))
        # {metric: reason} for guarded scores that refused a value (cowbench.scores.Missing); plain absences
        # (no output for that track) are not listed
        record["missing"] = dict(getattr(metrics, "missing", {}))
    except SharedStateChanged as exc:
        record.update(_failure("mutation", f"{type(exc).__name__}: {exc}", traceback.format_exc()))
    except UnstorableOutput as exc:
        record.update(_failure("unstorable", f"{type(exc).__name__}: {exc}", traceback.format_exc()))
    except Exception as exc:  # a failing method fails its own job, never the sweep
        record.update(_failure("exception", f"{type(exc).__name__}: {exc}", traceback.format_exc()))
    return _write_record(out, spec, record, {"started_unix": started, "job_wall_s": time.time() - started,
                                             **resources})


def store_failure(spec: JobSpec, out: Path, reason: str, error: str, tb: str = "", *,
                  planned_at: float | None = None) -> str:
    """Store a job whose process died or overran as failed (``reason``: timeout, exit, signal, interrupt...).

    Called by the process that supervised the job once the job's own process is gone (its lock with it).
    Returns ``failed``, or ``skipped`` if another process holds the lock or stored the job since ``planned_at``.
    """
    from cowbench.locks import hold, job_lock_path

    with hold(job_lock_path(out, spec.id), wait=5.0) as held:
        if not held or _stored_since(out, spec.id, planned_at):
            return "skipped"
        return _write_record(Path(out), spec, {**_base_record(spec), **_failure(reason, error, tb)},
                             {"started_unix": None})


def evaluate(scn: Scenario, method: Method, seed: int = 0, *, replicate: int = 0,
             subject: Mapping[str, Any] | None = None) -> dict[str, float | None]:
    """Run one job in-process and return its metrics (the harness's result for root seed ``seed``)."""
    from cowbench.subject import SubjectConfig

    type(method).check_params(method.hyperparameters())  # before the spec: a NaN would fail there unnamed
    cfg = SubjectConfig.from_mapping(subject).to_dict()
    rspec = ReplicateSpec(scn.spec, replicate, seed, cfg)
    spec = make_job(rspec, method.name, method.hyperparameters())
    rep = prepare(rspec)
    _, metrics, _ = execute(rep, method, spec.fit_seed)
    return metrics


