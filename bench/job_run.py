"""Running a job blind: prepare (elsewhere) -> blind inputs -> the method through ``run_method`` -> unblind ->
output and row-independence checks -> score, in the process that prepared the replicate (no method code
runs there, except in the in-process debugger mode)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from cowbench.access import told_routes, used_from_log
from cowbench.blind_run import BLIND_MODE, INPROCESS_MODE, from_plain, load_edited_inprocess, run_method_instance
from cowbench.determinism import deterministic
from cowbench.job_spec import ReplicateSpec, make_job, method_info
from cowbench.loeo import loeo_accuracy
from cowbench.method import MethodOutput
from cowbench.replicate import Replicate, prepare
from cowbench.scores import compute_scores
from cowbench.scores.context import ScoreContext
from cowbench.seeds import derive_seed

if TYPE_CHECKING:

    from cowbench.generators.scm import Scenario
    from cowbench.method import Method, MethodOutput


# -- running a job --------------------------------------------------------------------------------


def check_output(output: Any, variables: list[str], outputs: frozenset[str]) -> None:
    """Raise `ValueError` if a method's output is malformed (unknown keys, non-finite values, wrong types)."""
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
        import cowbench.sandbox as api
    except ImportError:
        import cowbench.blind_run as api
    return api


def default_run_method() -> Callable[[Any], Any]:
    """``run_blind`` where the sandbox exists, else the in-process shortcut (its records say unsafe)."""
    api = blind_api()
    return getattr(api, "run_blind", None) or api.run_inprocess


def run_mode_of(run_method: Callable[[Any], Any]) -> str:
    """``blind``, or ``inprocess (unsafe: not for published results)`` for the debugger shortcut."""
    import functools

    while isinstance(run_method, functools.partial):  # run_blind with its limits bound, say
        run_method = run_method.func
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
        return sorted(set(told_routes(self.used)) | set(self.audit))


def blind_step(rep: Replicate, method: str, hparams: Mapping[str, Any], fit_seed: int, info: Mapping[str, Any],
               run_method: Callable[[Any], Any], *, plugins: Sequence[str] = (), run_mode: str | None = None
               ) -> BlindRun:
    """Blind the replicate for the method's access, run the method through ``run_method`` (a `BlindCall` in,
    a `BlindResult` or `Lost` out), unblind its answer, check the output and the edited model's row independence.

    Raises `MethodLost` when the run returned no result, `BatchDependent` when the edited model reads its batch,
    `ValueError`/`TypeError` for a malformed output.
    """
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
    log = unblinder.read_log(list(result.read_log))
    model_audit: set[str] = set()  # routes the edited model's own process took (its forward is method code too)
    if mode != INPROCESS_MODE and result.edited is not None:
        # a blind run's edited model is only ever loaded inside a sandbox process: the scores are dry-run once to
        # learn every batch they will feed it, the model answers all their rows in ONE fresh process (mixed and
        # shuffled, with the row-independence checks), and the real scoring reads those answers
        recorder = api.InputRecorder()
        dry = _from_plain(plain, unblinder.model(recorder))
        check_output(dry, rep.scenario.variables, frozenset(info["outputs"]))
        score_step(rep, BlindRun(dry, log, used_from_log(log, access), [], {}, mode), access)
        outputs, reason = api.evaluate_once(result.edited, recorder.batches, seed=derive_seed(int(fit_seed), "rows"),
                                            audit=model_audit)
        if reason:
            raise BatchDependent(f"on the scored batches: {reason}")
        edited = unblinder.model(api.LookupModel(recorder.batches, outputs))
        output = _from_plain(plain, edited)
        closer = lambda: None  # noqa: E731 - nothing stays open: each sandbox process ended with its call
    else:
        # the in-process shortcut already ran the method here, so it may unpickle the model
        raw = None if result.edited is None else load_edited_inprocess(result.edited)
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
    resources = {"method_wall_s": float(result.wall_s), "method_peak_rss_mb": result.peak_rss_mb,
                 "method_cpu_s": getattr(result, "cpu_s", None)}
    return BlindRun(output, log, used_from_log(log, access), sorted(set(result.audit) | model_audit), resources, mode,
                    closer)


def blind_refit(method: str, hparams: Mapping[str, Any], info: Mapping[str, Any],
                run_method: Callable[[Any], Any], audit: list[str], *, plugins: Sequence[str] = (),
                run_mode: str | None = None, method_cpu: list[float] | None = None
                ) -> Callable[[Replicate, int, np.ndarray], np.ndarray | None]:
    """The loeo refit of a job's method (`cowbench.loeo.Refit`), run as its main run is: on the fold's blinded
    Task through ``run_method``; the edited model answers the held-out rows in a sandbox process only (one
    `evaluate_once` call, with its row-independence checks), so a refit reads nothing the job's own run cannot.
    The audit routes each refit took are appended to ``audit`` (the job's record names them), and the CPU of each
    refit's method process to ``method_cpu`` (the record's ``loeo_method_cpu_s``)."""
    from cowbench.blinding import blind_inputs, blind_seed
    from cowbench.models import logits

    api = blind_api()
    mode = run_mode or run_mode_of(run_method)
    access = frozenset(info["access"])

    def refit(fold: Replicate, seed: int, x_held: np.ndarray) -> np.ndarray | None:
        inputs, unblinder = blind_inputs(fold, access, seed=blind_seed(fold.data.seed))
        result = run_method(api.BlindCall(method=method, hparams=dict(hparams), fit_seed=int(seed), inputs=inputs,
                                          plugins=tuple(plugins)))
        if not hasattr(result, "read_log"):  # a `Lost`
            raise MethodLost(result)
        audit.extend(result.audit)
        if method_cpu is not None and getattr(result, "cpu_s", None) is not None:
            method_cpu.append(float(result.cpu_s))
        if result.edited is None:
            return None
        if mode == INPROCESS_MODE:
            return logits(unblinder.model(load_edited_inprocess(result.edited)), x_held)
        recorder = api.InputRecorder()  # the held-out rows in the shown column order, as the model takes them
        logits(unblinder.model(recorder), x_held)
        routes: set[str] = set()
        outputs, reason = api.evaluate_once(result.edited, recorder.batches, seed=derive_seed(int(seed), "rows"),
                                            audit=routes)
        audit.extend(sorted(routes))
        if reason:
            raise BatchDependent(f"the loeo refit's model, on the held-out rows: {reason}")
        return np.asarray(outputs[0], dtype=np.float64).reshape(-1)

    return refit


def row_check_batches(rep: Replicate) -> list[tuple[str, np.ndarray]]:
    """The batches an edited model is checked for row independence on: every split it is scored on, and the
    intervened test_id batches of the reliance scores in which a binary variable is constant (a model that
    reads its batch could tell those apart: issue 15, §4)."""
    batches = [(name, rep.data.split(name).x) for name in ("test_id", "test_ood", "test_bal", "val")]
    scn = rep.scenario
    for v in scn.variables:
        if scn.kind(v) == "binary":
            for value in (0.0, 1.0):
                batches.append((f"test_id under do({v}={value:g})", scn.intervened_x(rep.data.test_id, {v: value})))
    return batches


def _from_plain(plain: Mapping[str, Any], edited: Any) -> MethodOutput:
    if hasattr(MethodOutput, "from_plain"):  # the contract's own (bench/method.py), where present
        return MethodOutput.from_plain({k: v for k, v in plain.items() if k != "has_edited"}, edited)

    return from_plain(dict(plain), edited)


def score_step(rep: Replicate, ran: BlindRun, access: frozenset[str], *, loeo: Callable[[], Any] | None = None
               ) -> tuple[Any, dict[str, Any]]:
    """Score an unblinded output in this process (where no method code ran): (metrics, extra resources).

    ``loeo``: computes the ``loeo_acc`` selection metric (`cowbench.loeo.loeo_accuracy`); its time is
    ``loeo_wall_s``, apart from the method's.
    """
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
    (`cowbench.loeo.loeo_accuracy`) for the ``loeo_acc`` selection metric. ``resources`` holds the method's
    time and memory, ``told`` (telling and audit routes), ``read_log`` and ``run_mode``.
    """
    cls = type(method)
    cls.check_params(method.hyperparameters())  # a NaN or out-of-range value fails here, named
    if method.random_state is None:
        method = method.clone(random_state=fit_seed)
    runner = run_method or (lambda call: run_method_instance(method, call.inputs))
    mode = run_mode_of(run_method) if run_method is not None else INPROCESS_MODE
    info = method_info(cls)
    ran = blind_step(rep, method.name, method.hyperparameters(), fit_seed, info, runner, plugins=plugins,
                     run_mode=mode)
    try:
        refit = None
        if loeo:
            # in process, each fold's instance takes the fold's seed, as a sandbox run builds it from the call
            fold_runner = run_method or (lambda call: run_method_instance(method.clone(random_state=call.fit_seed),
                                                                          call.inputs))
            folds = blind_refit(method.name, method.hyperparameters(), info, fold_runner, ran.audit,
                                plugins=plugins, run_mode=mode)

            def refit():
                return loeo_accuracy(rep, folds, fit_seed)
        metrics, extra = score_step(rep, ran, frozenset(cls.access), loeo=refit)
    finally:
        ran.close()
    resources = {**ran.resources, **extra, "told": ran.told, "read_log": ran.read_log, "run_mode": ran.run_mode,
                 "audit": ran.audit}
    return ran.output, metrics, resources



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
