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
from collections.abc import Callable, Mapping, Sequence
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
    # sha256 of every plugin's source loaded for the run (`plugin_digests`): a run with plugins never shares job
    # ids with one without, or with other plugins; in the spec only when set, so built-in-only ids stay unchanged
    plugins: tuple[str, ...] = ()
    # the method's class metadata (family, access, outputs, version), so the scoring worker needs no plugin code;
    # derived from the method's registration, so left out of the spec and the id
    method_info: Mapping[str, Any] | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        loeo = {"loeo": True} if self.loeo else {}
        plugins = {"plugins": sorted(self.plugins)} if self.plugins else {}
        return {**self.replicate.to_dict(), "method": self.method, "hparams": dict(self.hparams),
                "versions": {"method": self.method_version, "scorer": self.scorer_version}, **loeo, **plugins}

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


def method_info(cls: Any) -> dict[str, Any]:
    """A method class's metadata as data (what the scoring worker needs instead of the class)."""
    return {"family": cls.family, "access": sorted(cls.access), "outputs": sorted(cls.outputs),
            "version": str(cls.version)}


def make_job(replicate: ReplicateSpec, method: str, hparams: Mapping[str, Any], *, trial: int = 0,
             loeo: bool = False, plugins: Sequence[str] = ()) -> JobSpec:
    """The spec of one job. ``plugins``: the run's plugin files or modules; their source hashes enter the spec
    (and so the id), and the method's class metadata travels with it (`method_info`)."""
    from cowbench.scores import scorer_version

    cls = METHODS.get(method)
    digests = tuple(sorted({d["sha256"] for d in plugin_digests(plugins)}))
    return JobSpec(replicate, method, dict(hparams), cls.version, scorer_version(), loeo=loeo, trial=trial,
                   plugins=digests, method_info=method_info(cls))


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
                    folder: Path | None = None) -> Replicate:
    """Data, subject and oracle from explicit seeds (`prepare` derives them from a `ReplicateSpec`).

    ``cowbench reliability`` calls it directly to vary the data seed and the subject seed one at a time.
    Subject and oracle weights are cached under ``folder`` when given.
    """
    from cowbench.models import build_model
    from cowbench.subject import SubjectConfig, decorrelated_train, fit_fresh, loss_for

    scn = scenario_from_spec(scenario)
    cfg = SubjectConfig.from_mapping({k: v for k, v in subject.items() if k != "version"})
    data = scn.sample(data_seed)
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

        subject, oracle, unit_truth = planted_models(scn)
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


class BatchDependent(RuntimeError):
    """The edited model's output on a row depends on the other rows of its batch (issue 15, §4)."""


class MethodLost(RuntimeError):
    """The method's run returned no result (`cowbench.isolation.Lost`: timeout, exit, signal, memory...)."""

    def __init__(self, lost: Any):
        super().__init__(getattr(lost, "message", str(lost)))
        self.reason = str(getattr(lost, "reason", "exception"))
        self.traceback = str(getattr(lost, "traceback", "") or "")


def blind_api() -> Any:
    """The module that implements the blind-run contract: ``cowbench.sandbox`` (a fresh process per method run)
    when installed, else the in-process reference `cowbench.blind_run`. One place for the lead to point."""
    try:
        from cowbench import sandbox as api  # type: ignore[attr-defined]
    except ImportError:
        from cowbench import blind_run as api
    return api


def default_run_method() -> Callable[[Any], Any]:
    """``run_blind`` where the sandbox exists, else the in-process shortcut (its records say unsafe)."""
    api = blind_api()
    return getattr(api, "run_blind", None) or api.run_inprocess


def run_mode_of(run_method: Callable[[Any], Any]) -> str:
    """``blind``, or ``inprocess (unsafe: not for published results)`` for the debugger shortcut."""
    from cowbench.blind_run import BLIND_MODE, INPROCESS_MODE

    mode = getattr(run_method, "run_mode", None)
    if mode:
        return str(mode)
    return INPROCESS_MODE if getattr(run_method, "__name__", "") == "run_inprocess" else BLIND_MODE


@dataclass
class BlindRun:
    """What the blind step brought back, unblinded: the output with real names (the edited model takes the
    real columns), the read log, the levels and routes it read (``used``), the audit routes, resources."""

    output: MethodOutput
    read_log: list[str]
    used: set[str]
    audit: list[str]
    resources: dict[str, Any]
    run_mode: str
    close: Callable[[], None] = lambda: None

    @property
    def told(self) -> list[str]:
        """Telling routes read, and every audit route the method process took, sorted."""
        from cowbench.access import told_routes

        return sorted(set(told_routes(self.used)) | set(self.audit))


def blind_step(rep: Replicate, method: str, hparams: Mapping[str, Any], fit_seed: int, info: Mapping[str, Any],
               run_method: Callable[[Any], Any], *, plugins: Sequence[str] = (), run_mode: str | None = None
               ) -> BlindRun:
    """Blind the replicate for the method's access, run the method through ``run_method`` (a `BlindCall` in,
    a `BlindResult` or `Lost` out), unblind its answer, check the output and the edited model's row independence.

    Raises `MethodLost` when the run returned no result, `BatchDependent` when the edited model reads its batch,
    `ValueError`/`TypeError` for a malformed output.
    """
    from cowbench.access import used_from_log
    from cowbench.blind_run import INPROCESS_MODE, load_edited_inprocess
    from cowbench.blinding import blind_inputs, blind_seed

    api = blind_api()
    mode = run_mode or run_mode_of(run_method)
    access = frozenset(info["access"])
    inputs, unblinder = blind_inputs(rep, access, seed=blind_seed(rep.data.seed))
    call = api.BlindCall(method=method, hparams=dict(hparams), fit_seed=int(fit_seed), inputs=inputs,
                         plugins=tuple(plugins))
    result = run_method(call)
    if not hasattr(result, "read_log"):  # a `Lost`: the run gave no result
        raise MethodLost(result)
    plain = unblinder.output(result.output)
    # a blind run's edited model is only ever loaded inside a sandbox process (`SandboxedModel`); the in-process
    # shortcut already ran the method here, so it may unpickle it
    raw = (load_edited_inprocess(result.edited) if mode == INPROCESS_MODE or result.edited is None
           else api.SandboxedModel(result.edited))
    closer = getattr(raw, "close", None) or (lambda: None)
    try:
        edited = unblinder.model(raw)
        output = _from_plain(plain, edited)
        check_output(output, rep.scenario.variables, frozenset(info["outputs"]))
        if edited is not None:
            for i, (name, x) in enumerate(row_check_batches(rep)):
                reason = api.check_row_independent(edited, x, seed=derive_seed(int(fit_seed), "rows", i))
                if reason:
                    raise BatchDependent(f"on {name}: {reason}")
    except BaseException:
        closer()
        raise
    log = unblinder.read_log(list(result.read_log))
    resources = {"method_wall_s": float(result.wall_s), "method_peak_rss_mb": result.peak_rss_mb}
    return BlindRun(output, log, used_from_log(log, access), sorted(result.audit), resources, mode, closer)


def row_check_batches(rep: Replicate) -> list[tuple[str, np.ndarray]]:
    """The batches an edited model is checked for row independence on: every split it is scored on, and the
    intervened test_id batches of the reliance scores in which a binary variable is constant (a model that
    reads its batch could tell those apart: issue 15, §4)."""
    batches = [(name, rep.data.split(name).x) for name in ("test_id", "test_ood", "test_bal", "val")]
    scn = rep.scenario
    for v in scn.variables:
        if scn.kind(v) == "binary":
            for value in (0.0, 1.0):
                batches.append((f"test_id under do({v}={value:g})", scn.intervene(rep.data.test_id, {v: value}).x))
    return batches


def _from_plain(plain: Mapping[str, Any], edited: Any) -> MethodOutput:
    from cowbench.method import MethodOutput

    if hasattr(MethodOutput, "from_plain"):  # the contract's own (bench/method.py), where present
        return MethodOutput.from_plain({k: v for k, v in plain.items() if k != "has_edited"}, edited)
    from cowbench.blind_run import from_plain

    return from_plain(dict(plain), edited)


def score_step(rep: Replicate, ran: BlindRun, access: frozenset[str], *, loeo: Callable[[], Any] | None = None
               ) -> tuple[Any, dict[str, Any]]:
    """Score an unblinded output in this process (where no method code ran): (metrics, extra resources).

    ``loeo``: computes the ``loeo_acc`` selection metric (`cowbench.selection.loeo_accuracy`); its time is
    ``loeo_wall_s``, apart from the method's.
    """
    from cowbench.determinism import deterministic
    from cowbench.scores import compute_scores
    from cowbench.scores.context import ScoreContext

    extra: dict[str, Any] = {}
    with deterministic(1):
        ctx = ScoreContext(rep.scenario, rep.data, ran.output, access, rep.subject, rep.oracle, dict(rep.base_ace),
                           used=set(ran.used), read_log=list(ran.read_log), known_base_units=rep.base_ace_units,
                           unit_truth=rep.unit_truth)
        if loeo is not None:
            start = time.perf_counter()
            ctx.loeo_acc = loeo()  # read by the loeo_acc score
            extra["loeo_wall_s"] = time.perf_counter() - start
        metrics = compute_scores(ctx)
    return metrics, extra


def execute(rep: Replicate, method: Method, fit_seed: int, *, loeo: bool = False,
            run_method: Callable[[Any], Any] | None = None, plugins: Sequence[str] = ()
            ) -> tuple[MethodOutput, dict[str, Any], dict[str, Any]]:
    """Run ``method`` blind on a prepared replicate and score it: (output, metrics, resources).

    The method sees the replicate blinded (`cowbench.blinding`); ``output`` is unblinded (real names, an edited
    model taking the real columns). ``run_method`` runs it (default: this instance in this process, the
    debugger shortcut). ``loeo``: also refit it with each training environment held out
    (`cowbench.selection.loeo_accuracy`) for the ``loeo_acc`` selection metric. ``resources`` holds the method's
    time and memory, ``told`` (telling and audit routes), ``read_log`` and ``run_mode``.
    """
    from cowbench.blind_run import INPROCESS_MODE, run_method_instance

    cls = type(method)
    cls.check_params(method.hyperparameters())  # a NaN or out-of-range value fails here, named
    if method.random_state is None:
        method = method.clone(random_state=fit_seed)
    runner = run_method or (lambda call: run_method_instance(method, call.inputs))
    mode = run_mode_of(run_method) if run_method is not None else INPROCESS_MODE
    ran = blind_step(rep, method.name, method.hyperparameters(), fit_seed, method_info(cls), runner,
                     plugins=plugins, run_mode=mode)
    try:
        refit = None
        if loeo:
            from cowbench.selection import loeo_accuracy

            def refit():
                return loeo_accuracy(rep, method, fit_seed)
        metrics, extra = score_step(rep, ran, frozenset(cls.access), loeo=refit)
    finally:
        ran.close()
    resources = {**ran.resources, **extra, "told": ran.told, "read_log": ran.read_log, "run_mode": ran.run_mode,
                 "audit": ran.audit}
    return ran.output, metrics, resources


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
            "edited": output.edited is not None, "details": _storable(output.details, "details")}


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


_LOADED_PLUGINS: dict[str, dict[str, Any]] = {}  # plugin as given -> its digest, in load order


def plugin_digest(plugin: str) -> dict[str, Any]:
    """``{"plugin": name, "sha256": hash of its source}`` of a plugin file or module, read without importing it.

    A file is named by its file name (no machine path); a module by its dotted name, hashed from the file its
    import spec points at (a package: its ``__init__``).
    """
    import hashlib
    import importlib.util

    from cowbench.errors import InputError

    if plugin.endswith(".py"):
        path, name = Path(plugin), Path(plugin).name
    else:
        try:
            found = importlib.util.find_spec(plugin)
        except (ImportError, ValueError):
            found = None
        if found is None or not found.origin or not Path(found.origin).is_file():
            raise InputError(f"plugin module {plugin!r} cannot be found to hash its source")
        path, name = Path(found.origin), plugin
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"plugin file {plugin!r} cannot be read: {exc.strerror}") from None
    return {"plugin": name, "sha256": hashlib.sha256(data).hexdigest()}


def plugin_digests(plugins: Sequence[str]) -> list[dict[str, Any]]:
    """`plugin_digest` of each plugin, in the order given (each once)."""
    seen: dict[str, dict[str, Any]] = {}
    for plugin in plugins:
        if plugin not in seen:
            seen[plugin] = _LOADED_PLUGINS.get(plugin) or plugin_digest(plugin)
    return list(seen.values())


def loaded_plugins() -> list[str]:
    """The plugins this process loaded through `load_plugins_once`, in load order."""
    return list(_LOADED_PLUGINS)


def load_plugins_once(plugins: tuple[str, ...]) -> None:
    """Import each plugin once per process: a ``.py`` plugin is executed on every load, and a worker runs many jobs.

    Its source hash is taken before the import (so what ran is what was hashed) and kept for `loaded_plugins`.
    """
    from cowbench.registry import load_plugin

    for plugin in plugins:
        if plugin not in _LOADED_PLUGINS:
            digest = plugin_digest(plugin)
            load_plugin(plugin)
            _LOADED_PLUGINS[plugin] = digest


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
            run_method: Callable[[Any], Any] | None = None) -> str:
    """Run one job under its lock and store its record; a failure is stored as a failed job with its traceback.

    The job runs in three steps: prepare (here, in the worker), the method's run through ``run_method`` (default
    `default_run_method`: ``cowbench.sandbox.run_blind``, a fresh process holding only the Task's contents; the
    ``inprocess`` launcher passes ``run_inprocess``), and scoring (here, where no method code ran).
    Returns ``ok`` or ``failed``, or ``skipped`` when another process holds the job's lock (``wait=False``) or
    stored the job at or after ``planned_at`` (another run sharing ``out`` did it). Never raises for a failure
    of the method. A job that changes its replicate's shared data or models fails, and the replicate is
    dropped from the cache so the next job loads it clean.
    """
    from cowbench.locks import hold, job_lock_path

    with hold(job_lock_path(out, spec.id), wait=None if wait else 0.0) as held:
        if not held or _stored_since(out, spec.id, planned_at):
            return "skipped"
        return _run_job_locked(spec, Path(out), cache_dir, plugins, run_method)


def _run_job_locked(spec: JobSpec, out: Path, cache_dir: Path | None, plugins: tuple[str, ...],
                    run_method: Callable[[Any], Any] | None) -> str:
    from cowbench.blind_run import INPROCESS_MODE

    started = time.time()
    record = _base_record(spec)
    resources: dict[str, Any] = {}
    runner = run_method or default_run_method()
    mode = run_mode_of(runner)
    record["run_mode"] = mode
    try:
        record["plugins"] = plugin_digests(plugins)
        if mode == INPROCESS_MODE or spec.method_info is None or spec.loeo:
            # the method's class is needed here only in-process, for a spec made without its metadata, or for
            # the loeo refits (`cowbench.selection.loeo_accuracy` runs them in this process)
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
            if spec.loeo:
                from cowbench.selection import loeo_accuracy

                method = METHODS.get(spec.method)(**spec.hparams)

                def refit():
                    return loeo_accuracy(rep, method, spec.fit_seed)
            try:
                metrics, extra = score_step(rep, ran, frozenset(info["access"]), loeo=refit)
            finally:
                _check_shared_state(rep)
        finally:
            ran.close()
        resources = {**ran.resources, **extra}
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
    return _write_record(out, spec, record, {"started_unix": started, "job_wall_s": time.time() - started,
                                             **resources})


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


