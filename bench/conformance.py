"""The conformance kit: a fixed battery of checks any method must pass, ours or an outside author's.

``check_method(cls)`` runs every check on a small cow scenario and returns one `CheckResult` per check;
``cowbench check METHOD`` prints them, and our own test suite runs them over every registered method.
The checks: the declaration is valid, the constructor only stores its parameters, declared access is
respected (an undeclared read raises `AccessError`, which fails the check), nothing beyond the declared access
(truth, scenario, raw data) is reachable from the Task's attributes, inputs and the shared
subject model are not mutated, the same ``random_state`` gives identical output, outputs are finite and
keyed by the scenario's variables, the method runs on the smallest scenario in a few seconds, and, run in its
real blind job process (`cowbench.sandbox`), that process holds no harness object carrying truth and the audit
hook records nothing.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import inspect
import time
import traceback
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from cowbench.access import Task
from cowbench.data import Dataset, Split, Truth
from cowbench.errors import AccessError
from cowbench.generators.scm import SCM, Scenario, Variable
from cowbench.isolation import Lost
from cowbench.jobs import Replicate, check_output
from cowbench.method import FAMILIES, OUTPUTS, Method
from cowbench.registries import METHODS, make_scenario

SMALL_KNOBS = {"n_train": 300, "n_val": 100, "n_test": 300}
# the kit runs on the first of these small scenarios where the method is applicable
CANDIDATES: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = (
    ("cow", ()),
    ("linear_sem", (("instrument", 1.0),)),
    ("cow", (("rendering", "rotation"),)),
    ("cow_planted", ()),  # the discovery track runs only where direction-level truth exists
)
TIME_BUDGET_S = 60.0


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    message: str = ""


class _Fixture:
    """One small replicate shared by the checks: scenario, data, subject model, oracle."""

    def __init__(self, scenario: str, knobs: tuple[tuple[str, Any], ...], arch: str):
        from cowbench.subject import SubjectConfig, train_subject

        self.scenario = make_scenario(scenario, **SMALL_KNOBS, **dict(knobs))
        self.data = self.scenario.sample(0)
        self.config = SubjectConfig(arch=arch, epochs=100).to_dict()
        self.subject = train_subject(self.scenario, self.data, arch=arch, seed=0, epochs=100)

    def task(self, cls: type) -> Any:
        return Task(self.scenario, self.data, self.subject, cls.access, subject_config=self.config, n_concept=200)


def _state(model: Any) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}


def _same_output(a: Any, b: Any) -> bool:
    for field in ("world_coef", "model_coef", "spurious_score", "abstain"):
        if getattr(a, field) != getattr(b, field):
            return False
    for field in ("discovered", "algorithm"):  # dicts holding arrays: compare their entries as arrays
        da, db = getattr(a, field, None), getattr(b, field, None)
        if (da is None) != (db is None):
            return False
        if da is not None and (da.keys() != db.keys() or not all(
                np.array_equal(np.asarray(da[k], dtype=object), np.asarray(db[k], dtype=object)) for k in da)):
            return False
    if (a.edited is None) != (b.edited is None):
        return False
    if a.edited is not None:
        sa, sb = _state(a.edited), _state(b.edited)
        return sa.keys() == sb.keys() and all(np.array_equal(sa[k], sb[k]) for k in sa)
    return True


def check_declaration(cls: type, fx: _Fixture) -> str | None:
    if not issubclass(cls, Method):
        return "not a subclass of cowbench.method.Method"
    if cls.family not in FAMILIES or not cls.outputs or not set(cls.outputs) <= set(OUTPUTS):
        return f"family must be one of {FAMILIES} and outputs a non-empty subset of {OUTPUTS}"
    if "References" not in (inspect.getdoc(cls) or ""):
        return "the docstring has no References section"
    return None


def check_constructor(cls: type, fx: _Fixture) -> str | None:
    sig = inspect.signature(cls.__init__)
    defaults = {p.name: p.default for p in sig.parameters.values() if p.kind is p.KEYWORD_ONLY}
    if "random_state" not in defaults:
        return "the constructor takes no keyword-only random_state"
    method = cls(random_state=123)
    params = method.get_params()
    for name, default in defaults.items():
        expected = 123 if name == "random_state" else default
        if params.get(name, object()) is not expected and params.get(name) != expected:
            return f"the constructor changed or did not store {name!r}"
    if method.clone().get_params() != params:
        return "clone() does not reproduce get_params()"
    return None


def check_access_respected(cls: type, fx: _Fixture) -> str | None:
    try:
        cls(random_state=0).run(fx.task(cls))
    except AccessError as exc:
        return f"reads beyond its declared access: {exc}"
    return None


def _recording_task(fx: _Fixture, cls: type) -> Any:
    """A Task that also logs every guarded read it is asked for, ``(level, what)``, granted or refused."""
    class RecordingTask(Task):
        def _need(self, level: str, what: str) -> None:
            self.reads.append((level, what))  # before the check: a refused read is logged too
            super()._need(level, what)

    # the split views bind _need at construction, so the log must exist first
    RecordingTask.reads = []
    task = RecordingTask(fx.scenario, fx.data, fx.subject, cls.access, subject_config=fx.config, n_concept=200)
    task.reads = RecordingTask.reads
    return task


def check_reads_within_access(cls: type, fx: _Fixture) -> str | None:
    """Every guarded part the method asked for (group labels of which split, environments, concepts, the model,
    interventions) is within its declared access, even where it caught the `AccessError` and went on: the
    Task logs each request; a method run at a selection rule reads only its own access, and the rules read
    validation and test metrics from the harness (`cowbench.scores.selection`), never through the method."""
    task = _recording_task(fx, cls)
    with contextlib.suppress(AccessError):  # check_access_respected reports an uncaught one
        cls(random_state=0).run(task)
    beyond = sorted({f"{what} ({level})" for level, what in task.reads if level not in cls.access})
    if beyond:
        return f"asked for {', '.join(beyond)} beyond its declared access {sorted(cls.access)}"
    return None


_ATOMS = (type(None), bool, int, float, complex, str, bytes, bytearray, range, np.generic, np.dtype)
_REVEALING_ROLES = ("causal", "spurious", "core", "instrument")


def _children(obj: Any) -> Iterator[tuple[str, Any]]:
    """The objects ``obj`` holds: container items, instance state, bound ``__self__``, closure cells.

    Never module globals (a module is reachable by ``import`` anyway, not through a Task) and never
    computed attributes (properties are not called: reading one could itself be a guarded access).
    """
    if isinstance(obj, dict):
        for i, (k, v) in enumerate(obj.items()):
            yield f"[key {i}]", k
            yield f"[{k!r}]", v
        return
    if isinstance(obj, (list, tuple, set, frozenset)):
        for i, v in enumerate(obj):
            yield f"[{i}]", v
        return
    if isinstance(obj, types.MethodType):
        yield ".__self__", obj.__self__
        yield ".__func__", obj.__func__
        return
    if isinstance(obj, types.FunctionType):
        for i, cell in enumerate(obj.__closure__ or ()):
            with contextlib.suppress(ValueError):  # an empty cell
                yield f".__closure__[{i}]", cell.cell_contents
        yield ".__defaults__", obj.__defaults__
        yield ".__kwdefaults__", obj.__kwdefaults__
        return
    if isinstance(obj, functools.partial):
        yield ".func", obj.func
        yield ".args", obj.args
        yield ".keywords", obj.keywords
    if isinstance(obj, np.ndarray):
        if obj.dtype == object:
            yield ".flat", list(obj.flat)
        return
    state = getattr(obj, "__dict__", None)
    if isinstance(state, dict):
        for k, v in state.items():
            yield f".{k}", v
    for klass in type(obj).__mro__:
        slots = klass.__dict__.get("__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            if name in ("__dict__", "__weakref__"):
                continue
            with contextlib.suppress(AttributeError):
                yield f".{name}", getattr(obj, name)


def reachable(root: Any, limit: int = 500_000) -> Iterator[tuple[str, Any]]:
    """Every object reachable from ``root`` by `_children`, breadth first, each once, with its path."""
    import torch

    seen = {id(root)}
    queue = collections.deque([("task", root)])
    while queue:
        path, obj = queue.popleft()
        yield path, obj
        if isinstance(obj, (*_ATOMS, type, types.ModuleType, torch.Tensor)):
            continue
        for step, child in _children(obj):
            if id(child) not in seen:
                seen.add(id(child))
                if len(seen) > limit:
                    raise RuntimeError(f"more than {limit} objects reachable from {type(root).__name__}")
                queue.append((path + step, child))


def _reveals(truth: Any) -> bool:
    return bool(truth.world_coef) or any(r in _REVEALING_ROLES for r in truth.roles.values())


def reachable_leaks(task: Any) -> list[str]:
    """Paths from ``task`` to truth or undeclared data: empty when the Task hides them.

    Without ``counterfactual`` access no `Scenario`, `SCM`, `Variable`, `Truth`, `Dataset` or `Split` may
    be reachable. With it the generator is needed to intervene, so an anonymous scenario is allowed as
    long as it carries no roles (other than label, hidden) and no world coefficients; a `Dataset`, a raw
    `Split` (its ``do`` or ``group`` would name the spurious variable) or a revealing truth never is.
    """
    cf = "counterfactual" in task.access
    leaks = []
    for path, obj in reachable(task):
        if isinstance(obj, (Dataset, Split)):
            leaks.append(f"{path}: a {type(obj).__name__}")
        elif isinstance(obj, (Scenario, SCM, Truth, Variable)):
            truth = obj if isinstance(obj, Truth) else getattr(obj, "truth", None)
            if not cf:
                leaks.append(f"{path}: a {type(obj).__name__} without counterfactual access")
            elif isinstance(obj, Variable) and (obj.role in _REVEALING_ROLES or obj.text):
                leaks.append(f"{path}: variable {obj.name!r} keeps its role or equation text")
            elif truth is not None and _reveals(truth):
                leaks.append(f"{path}: a {type(obj).__name__} with roles or world coefficients")
    return leaks


def check_nothing_undeclared_reachable(cls: type, fx: _Fixture) -> str | None:
    task = fx.task(cls)
    cls(random_state=0).run(task)  # after the run: lazily made parts (the model copy) are there too
    leaks = reachable_leaks(task)
    if leaks:
        return f"{len(leaks)} object(s) beyond the declared access are reachable from the Task, e.g. " + leaks[0]
    return None


def check_no_mutation(cls: type, fx: _Fixture) -> str | None:
    before_data, before_model = fx.data.checksum(), _state(fx.subject)
    cls(random_state=0).run(fx.task(cls))
    if fx.data.checksum() != before_data:
        return "the method modified the data"
    after = _state(fx.subject)
    if any(not np.array_equal(before_model[k], after[k]) for k in before_model):
        return "the method modified the shared subject model"
    return None


def check_deterministic(cls: type, fx: _Fixture) -> str | None:
    a = cls(random_state=7).run(fx.task(cls))
    b = cls(random_state=7).run(fx.task(cls))
    if not _same_output(a, b):
        return "the same random_state gave different outputs"
    return None


def check_outputs(cls: type, fx: _Fixture) -> str | None:
    out = cls(random_state=0).run(fx.task(cls))
    check_output(out, fx.scenario.variables, frozenset(cls.outputs))
    produced = {"world" if out.world_coef is not None else None, "model" if out.model_coef is not None else None,
                "detect" if (out.spurious_score is not None or out.abstain) else None,
                "edit" if out.edited is not None else None,
                "discover" if getattr(out, "discovered", None) is not None else None} - {None}
    if not produced:
        return "returned no output at all"
    if out.edited is not None:
        logits = out.edited(__import__("torch").tensor(fx.data.test_id.x[:5]))
        if tuple(logits.shape) != (5,):
            return f"the edited model returns shape {tuple(logits.shape)}, expected (5,)"
    return None


def check_fast(cls: type, fx: _Fixture) -> str | None:
    start = time.perf_counter()
    cls(random_state=0).run(fx.task(cls))
    elapsed = time.perf_counter() - start
    if elapsed > TIME_BUDGET_S:
        return f"took {elapsed:.1f} s on the smallest scenario (budget {TIME_BUDGET_S:.0f} s)"
    return None


# -- the method in its real job process: a fresh sandbox child, blind -----------------------------------


def _blind_inputs_function() -> Callable[..., Any] | None:
    """``blind_inputs(rep, access, *, seed)`` from the module that builds the blinded Task, if present."""
    import importlib

    for module in ("cowbench.blinding", "cowbench.access"):
        try:
            found = getattr(importlib.import_module(module), "blind_inputs", None)
        except ImportError:
            continue
        if found is not None:
            return found
    return None


def _blind_inputs(fx: _Fixture, cls: type) -> Any:
    """What the job flow hands the method process: ``blind_inputs`` (`_blind_inputs_function`) of a replicate made
    of the fixture's pieces; without it (before the blinded Task exists), today's Task pieces (`LegacyInputs`), which
    carry the dataset, so `check_blind_process_holds_no_truth` fails on them."""
    from cowbench.sandbox import LegacyInputs

    blind_inputs = _blind_inputs_function()
    if blind_inputs is None:
        return LegacyInputs(fx.scenario.spec, fx.data, fx.subject, cls.access, fx.config, 200)

    rep = Replicate(scenario=fx.scenario, data=fx.data, subject=fx.subject, oracle=None,
                    subject_config=dict(fx.config), base_ace={})
    try:
        inputs, _unblinder = blind_inputs(rep, cls.access, seed=0, n_concept=200)  # as the kit's other checks
    except TypeError:  # a blind_inputs without n_concept
        inputs, _unblinder = blind_inputs(rep, cls.access, seed=0)
    return inputs


@contextlib.contextmanager
def _by_value(cls: type) -> Iterator[Any]:
    """The method as a `BlindCall` names it: a built-in's registered name, or (a plugin's class, an author's test
    double) the class itself, pickled by value (the kit's template loads no plugins)."""
    import sys

    import cloudpickle

    name = getattr(cls, "name", None)
    # a built-in goes by name; a plugin's class (the kit's template loads no plugins) and a test double by value
    builtin = cls.__module__.startswith("cowbench.") and name in METHODS.names() and METHODS.get(name) is cls
    module = sys.modules.get(cls.__module__)
    by_value = not builtin and module is not None and not cls.__module__.startswith("cowbench.")
    if by_value:
        cloudpickle.register_pickle_by_value(module)
    try:
        yield name if builtin else cls
    finally:
        if by_value:
            cloudpickle.unregister_pickle_by_value(module)


def _probe(cls: type, fx: _Fixture) -> Any:
    """One run of the method in its real job process, with the truth scan; cached per class on the fixture."""
    cache = fx.__dict__.setdefault("_probes", {})
    if cls not in cache:
        from cowbench.sandbox import BlindCall, probe_blind

        with _by_value(cls) as method:
            cache[cls] = probe_blind(BlindCall(method, {}, 0, _blind_inputs(fx, cls)), time_limit=10 * TIME_BUDGET_S)
    return cache[cls]


def check_blind_process_holds_no_truth(cls: type, fx: _Fixture) -> str | None:
    """The method runs in the real blind job process (a fresh child of the sandbox template), and a scan of every
    object the garbage collector tracks there, while the Task, the method and its output are alive, finds no
    harness object that carries truth (`cowbench.sandbox.truth_types`: a replicate, a revealing Truth, a Dataset,
    a Split with concepts, a named Scenario, planted truth, a score context, job specs)."""
    result = _probe(cls, fx)
    if isinstance(result, Lost):
        return f"the method failed in its blind job process ({result.reason}): {result.message}"
    if result.truth_objects:
        why = "" if _blind_inputs_function() is not None else (
            " (this cowbench has no blinded Task yet, cowbench.blinding.blind_inputs: the kit hands the method "
            "process today's Task pieces)")
        return ("the method's job process could reach harness objects carrying truth: "
                + ", ".join(result.truth_objects) + why)
    return None


def check_audit_clean(cls: type, fx: _Fixture) -> str | None:
    """The method runs under the audit hook (`cowbench.audit`) in its blind job process and leaves no record: no
    file opened outside its private folder, no frame or gc walk, no subprocess, socket or ctypes."""
    result = _probe(cls, fx)
    if isinstance(result, Lost):
        return f"the method failed in its blind job process ({result.reason}): {result.message}"
    if result.audit:
        return f"recorded {', '.join(result.audit)}: " + "; ".join(result.audit_details[:3])
    return None


CHECKS: dict[str, Callable[[type, _Fixture], str | None]] = {
    "declaration": check_declaration,
    "constructor": check_constructor,
    "access_respected": check_access_respected,
    "reads_within_access": check_reads_within_access,
    "nothing_undeclared_reachable": check_nothing_undeclared_reachable,
    "no_mutation": check_no_mutation,
    "deterministic": check_deterministic,
    "outputs": check_outputs,
    "fast": check_fast,
    "blind_process_holds_no_truth": check_blind_process_holds_no_truth,
    "audit_clean": check_audit_clean,
}


@functools.lru_cache(maxsize=8)
def _fixture(scenario: str, knobs: tuple[tuple[str, Any], ...], arch: str) -> _Fixture:
    return _Fixture(scenario, knobs, arch)  # read-only arrays and private model copies keep it clean


def _pick_scenario(cls: type) -> tuple[str, tuple[tuple[str, Any], ...]]:
    reasons = []
    for name, knobs in CANDIDATES:
        reason = cls.applicable(make_scenario(name, **SMALL_KNOBS, **dict(knobs)))
        if reason is None:
            return name, knobs
        reasons.append(f"{name}: {reason}")
    raise ValueError("the method is applicable to none of the kit's scenarios (" + "; ".join(reasons) + ")")


def check_method(method: type | str, *, scenario: str | None = None, arch: str = "mlp") -> list[CheckResult]:
    """Run every check on ``method`` (a class or a registered name); never raises for a failing check.

    ``scenario`` defaults to the first of `CANDIDATES` where the method is applicable.
    """
    cls = METHODS.get(method) if isinstance(method, str) else method
    from cowbench.models import torch_threads

    name, knobs = (scenario, ()) if scenario is not None else _pick_scenario(cls)
    fx = _fixture(name, knobs, arch)
    results = []
    for name, check in CHECKS.items():
        try:
            with torch_threads(1):  # as in the harness's workers
                problem = check(cls, fx)
        except Exception as exc:
            problem = f"raised {type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}"
        results.append(CheckResult(name, problem is None, problem or ""))
    return results


def assert_conforms(method: type | str, **kwargs: Any) -> None:
    """For authors' test suites: fail with every failed check listed."""
    failed = [r for r in check_method(method, **kwargs) if not r.passed]
    if failed:
        raise AssertionError("; ".join(f"{r.name}: {r.message}" for r in failed))
