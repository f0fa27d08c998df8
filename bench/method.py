"""The method contract: `Method`, `MethodOutput`, hyperparameter spaces and `register_method`.

A method is one class in one file: class attributes say what it is and what it needs, the constructor
only stores keyword-only hyperparameters (scikit-learn convention), and ``run(task)`` returns a
`MethodOutput`. ``@register_method`` validates the declaration and adds it to the registry.
"""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from cowbench.access import check_access
from cowbench.errors import InputError
from cowbench.registries import METHODS

FAMILIES = ("estimation", "causal", "robust_training", "attribution", "editing", "discovery")
OUTPUTS = ("world", "model", "detect", "edit", "discover")


@dataclass
class MethodOutput:
    """What a method returns; any part may be absent and the scorer scores what is present.

    Attributes
    ----------
    world_coef : dict, optional
        Variable -> estimate of its world (structural) coefficient.
    model_coef : dict, optional
        Variable -> estimate of the subject model's reliance on it.
    spurious_score : dict, optional
        Variable -> score, higher meaning more likely spurious.
    abstain : bool
        The method declines a detection verdict (e.g. ICP's empty set).
    edited : torch.nn.Module, optional
        An edited or retrained model with the subject model's call signature (x -> logit).
    localized : dict, optional
        Where the method found the edit target inside the subject model, scored against planted unit- and
        direction-level truth: ``{"point": hook point name (see `cowbench.surgery`), "unit_scores":
        per-unit scores (width,), higher meaning more likely to carry the target, "subspace": (width, k)
        array whose columns span the found subspace}``; ``unit_scores`` or ``subspace`` may be absent.
    discovered : dict, optional
        Directions the method found in the subject's activations without being told any variable (the
        ``discover`` track): ``{"point": hook point name, "directions": (k, width) array, one found
        direction per row}``; scored against the planted feature directions at that point.
    algorithm : dict, optional
        The extracted algorithm: the subject's logit as an affine function of named variables
        (``{"coef": {variable: float}, "intercept": float}``) and/or of the method's own discovered directions
        (``{"direction_coef": (k,) array over ``discovered["directions"]``, "intercept": float}``, the feature
        being the activation at ``discovered["point"]`` projected on each direction). Scored for faithfulness
        (R² against the subject's logit) and completeness.
    details : dict
        Anything else worth keeping in the result file (JSON-serialisable).
    """

    world_coef: dict[str, float] | None = None
    model_coef: dict[str, float] | None = None
    spurious_score: dict[str, float] | None = None
    abstain: bool = False
    edited: Any = None
    localized: dict[str, Any] | None = None
    discovered: dict[str, Any] | None = None
    algorithm: dict[str, Any] | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_plain(self) -> dict[str, Any]:
        """Every field but ``edited`` as plain data (str, bool, int, float, None, lists, dicts), for a process boundary.

        Per-variable maps become ``{str: float}``; ``localized``'s arrays become nested lists, their dtypes kept
        under ``localized["array_dtypes"]`` so `from_plain` restores them exactly; ``details`` turns numpy
        scalars and arrays into numbers and lists (as the job record stores them). Raises `TypeError` naming the
        field that holds anything else.
        """
        return {"world_coef": _plain_map(self.world_coef, "world_coef"),
                "model_coef": _plain_map(self.model_coef, "model_coef"),
                "spurious_score": _plain_map(self.spurious_score, "spurious_score"),
                "abstain": _plain_bool(self.abstain, "abstain"),
                "localized": _plain_localized(self.localized),
                "discovered": _plain_discovered(self.discovered),
                "algorithm": _plain_algorithm(self.algorithm),
                "details": _plain_value(self.details, "details")}

    @classmethod
    def from_plain(cls, plain: Mapping[str, Any], edited: Any = None) -> MethodOutput:
        """The `MethodOutput` that `to_plain` described, with ``edited`` attached; validates every field's type.

        ``plain`` may come from an untrusted process: anything but the fields `to_plain` writes, in their types,
        raises `TypeError` naming the field.
        """
        if not isinstance(plain, Mapping):
            raise TypeError(f"a plain method output must be a dict, got {type(plain).__name__}")
        known = {"world_coef", "model_coef", "spurious_score", "abstain", "localized", "discovered", "algorithm",
                 "details"}
        unknown = set(plain) - known
        if unknown:
            raise TypeError(f"a plain method output has unknown fields {sorted(map(str, unknown))}; "
                            f"allowed: {sorted(known)}")
        details = plain.get("details", {})
        if not isinstance(details, dict):
            raise TypeError(f"details must be a dict, got {type(details).__name__}")
        return cls(world_coef=_plain_map(plain.get("world_coef"), "world_coef"),
                   model_coef=_plain_map(plain.get("model_coef"), "model_coef"),
                   spurious_score=_plain_map(plain.get("spurious_score"), "spurious_score"),
                   abstain=_plain_bool(plain.get("abstain", False), "abstain"),
                   edited=edited,
                   localized=_localized_from_plain(plain.get("localized")),
                   discovered=_discovered_from_plain(plain.get("discovered")),
                   algorithm=_plain_algorithm(plain.get("algorithm"), arrays=True),
                   details=_plain_value(details, "details"))


def _plain_map(value: Any, name: str) -> dict[str, float] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must map variable names to floats, got {type(value).__name__}")
    out = {}
    for key, v in value.items():
        if not isinstance(key, str):
            raise TypeError(f"{name} has a key of type {type(key).__name__} ({key!r}); keys are variable names")
        if isinstance(v, bool | np.bool_) or not isinstance(v, int | float | np.integer | np.floating):
            raise TypeError(f"{name}[{key!r}] must be a number, got {type(v).__name__}")
        out[key] = float(v)
    return out


def _plain_bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return bool(value)


_PLAIN_DTYPES = ("float16", "float32", "float64", "int32", "int64", "bool")
_DTYPES_KEY = "array_dtypes"  # localized's arrays travel as lists; their dtypes beside them, restored exactly


def _plain_localized(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise TypeError(f"localized must be a dict, got {type(value).__name__}")
    out: dict[str, Any] = {}
    for key, v in value.items():
        if key == "point":
            if not isinstance(v, str):
                raise TypeError(f"localized['point'] must be a hook point name, got {type(v).__name__}")
            out[key] = v
        elif key in ("unit_scores", "subspace"):
            if v is None:  # "may be absent" (MethodOutput): None is absent, as the scorer reads it
                continue
            if hasattr(v, "detach"):  # a torch tensor
                v = v.detach().cpu().numpy()
            a = np.asarray(v)
            if a.dtype.name not in _PLAIN_DTYPES:
                raise TypeError(f"localized[{key!r}] must be a numeric array, got dtype {a.dtype}")
            out[key] = a.tolist()
            out.setdefault(_DTYPES_KEY, {})[key] = a.dtype.name
        else:
            out[str(key)] = _plain_value(v, f"localized[{key!r}]")
    return out


def _localized_from_plain(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise TypeError(f"localized must be a dict, got {type(value).__name__}")
    out: dict[str, Any] = {}
    dtypes = value.get(_DTYPES_KEY, {})
    if not (isinstance(dtypes, Mapping) and all(d in _PLAIN_DTYPES for d in dtypes.values())):
        raise TypeError(f"localized[{_DTYPES_KEY!r}] must map array names to one of {_PLAIN_DTYPES}")
    for key, v in value.items():
        if key == _DTYPES_KEY:
            continue
        if key in ("unit_scores", "subspace"):
            if not isinstance(v, list):
                raise TypeError(f"localized[{key!r}] must be a (nested) list of numbers, got {type(v).__name__}")
            try:
                out[key] = np.asarray(_plain_value(v, f"localized[{key!r}]"), dtype=dtypes.get(key, "float64"))
            except ValueError as exc:
                raise TypeError(f"localized[{key!r}] is not a numeric array: {exc}") from None
        elif key == "point":
            if not isinstance(v, str):
                raise TypeError(f"localized['point'] must be a hook point name, got {type(v).__name__}")
            out[key] = v
        else:
            out[key] = _plain_value(v, f"localized[{key!r}]")
    return out


def _numeric(value: Any, where: str, ndim: int) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{where} is not a numeric array: {exc}") from None
    if a.ndim != ndim:
        raise TypeError(f"{where} must be a {ndim}-dimensional array, got shape {a.shape}")
    return a


def _plain_discovered(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or not isinstance(value.get("point"), str) or set(value) - {"point",
                                                                                                 "directions"}:
        raise TypeError("discovered must be {'point': hook point name, 'directions': (k, width) array}")
    return {"point": value["point"], "directions": _numeric(value.get("directions"), "discovered['directions']",
                                                            2).tolist()}


def _discovered_from_plain(value: Any) -> dict[str, Any] | None:
    plain = _plain_discovered(value)
    return None if plain is None else {"point": plain["point"], "directions": np.asarray(plain["directions"])}


def _plain_algorithm(value: Any, *, arrays: bool = False) -> dict[str, Any] | None:
    """``algorithm`` as plain data (``arrays``: ``direction_coef`` back as a numpy array), validated."""
    if value is None:
        return None
    if not isinstance(value, Mapping) or set(value) - {"coef", "direction_coef", "intercept"}:
        raise TypeError("algorithm must be {'coef': {variable: float}, 'direction_coef': (k,), 'intercept': float}")
    out: dict[str, Any] = {"intercept": float(_numeric(value.get("intercept", 0.0), "algorithm['intercept']", 0))}
    if value.get("coef") is not None:
        out["coef"] = _plain_map(value["coef"], "algorithm['coef']")
    if value.get("direction_coef") is not None:
        d = _numeric(value["direction_coef"], "algorithm['direction_coef']", 1)
        out["direction_coef"] = d if arrays else d.tolist()
    return out


def _plain_value(value: Any, where: str, depth: int = 0) -> Any:
    """``value`` as str, bool, int, float, None, lists and dicts with string keys (numpy turned into those)."""
    if depth > 100:
        raise TypeError(f"{where} is nested more than 100 levels deep")
    if value is None or isinstance(value, bool | str | int | float):
        return value
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise TypeError(f"{where} is an object array")
        return value.tolist()
    if isinstance(value, np.generic):
        return _plain_value(value.item(), where, depth + 1)
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if isinstance(k, np.generic):
                k = k.item()
            if not isinstance(k, str | int | float | bool) and k is not None:
                raise TypeError(f"{where} has a key of type {type(k).__name__}; keys are strings or numbers")
            out[k if isinstance(k, str) else json.dumps(k)] = _plain_value(v, f"{where}[{k!r}]", depth + 1)
        return out
    if isinstance(value, list | tuple):
        return [_plain_value(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)]
    raise TypeError(f"{where} is a {type(value).__name__}; allowed: numbers, strings, booleans, None, lists, "
                    "tuples, numpy scalars and arrays, dicts")


# -- hyperparameter spaces ------------------------------------------------------------------------


@dataclass(frozen=True)
class LogUniform:
    low: float
    high: float

    def sample(self, rng: np.random.Generator) -> float:
        return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))


@dataclass(frozen=True)
class Uniform:
    low: float
    high: float

    def sample(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(self.low, self.high))


@dataclass(frozen=True)
class Choice:
    options: tuple[Any, ...]

    def sample(self, rng: np.random.Generator) -> Any:
        return self.options[int(rng.integers(len(self.options)))]


# -- hyperparameter constraints: what a value may be (the spaces above say how to sample one) ---------


def _is_real(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool | np.bool_)


@dataclass(frozen=True)
class Real:
    """A finite number in ``[low, high]`` (``None``: unbounded; ``open_low``: ``low`` itself excluded)."""

    low: float | None = None
    high: float | None = None
    open_low: bool = False

    def accepts(self, value: Any) -> bool:
        if not _is_real(value) or not math.isfinite(float(value)):
            return False
        value = float(value)
        if self.low is not None and (value < self.low or (self.open_low and value == self.low)):
            return False
        return self.high is None or value <= self.high

    def describe(self) -> str:
        if self.low is not None and self.high is None:
            return f"a finite number {'>' if self.open_low else '>='} {self.low:g}"
        low = "-inf" if self.low is None else f"{self.low:g}"
        high = "inf" if self.high is None else f"{self.high:g}"
        return f"a finite number in {'(' if self.open_low or self.low is None else '['}{low}, {high}]"


@dataclass(frozen=True)
class Integer:
    """An integer (not a bool, not a float) in ``[low, high]`` (``None``: unbounded)."""

    low: int | None = None
    high: int | None = None

    def accepts(self, value: Any) -> bool:
        if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
            return False
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)

    def describe(self) -> str:
        if self.high is None:
            return "an integer" if self.low is None else f"an integer >= {self.low}"
        return f"an integer in [{self.low}, {self.high}]"


@dataclass(frozen=True)
class Options:
    """One of a fixed set of values (compared by type and value: ``1`` is not ``True``)."""

    options: tuple[Any, ...]

    def accepts(self, value: Any) -> bool:
        return any(type(value) is type(o) and value == o for o in self.options)

    def describe(self) -> str:
        return f"one of {', '.join(map(repr, self.options))}"


@dataclass(frozen=True)
class OrNone:
    """None, or a value ``inner`` accepts (e.g. ``epochs=None`` meaning the subject's own setting)."""

    inner: Any

    def accepts(self, value: Any) -> bool:
        return value is None or self.inner.accepts(value)

    def describe(self) -> str:
        return f"None or {self.inner.describe()}"


@dataclass(frozen=True)
class _AnyString:
    def accepts(self, value: Any) -> bool:
        return isinstance(value, str)

    def describe(self) -> str:
        return "a string"


def _from_space(space: Any) -> Any:
    """The constraint a declared search space implies: its support, not its sampling range."""
    if isinstance(space, LogUniform):
        return Real(0.0, None, open_low=True)
    if isinstance(space, Uniform):
        return Real(space.low, space.high)
    if isinstance(space, Choice):
        opts = space.options
        if all(isinstance(o, str) for o in opts):
            return Options(tuple(opts))
        if all(isinstance(o, int) and not isinstance(o, bool) for o in opts):
            return Integer(1 if min(opts) >= 1 else None if min(opts) < 0 else 0)
        if all(_is_real(o) for o in opts):
            return Real(0.0, None, open_low=True) if min(opts) > 0 else Real()
        return Options(tuple(opts))
    return None


def _from_default(default: Any, hint: Any) -> Any:
    """The constraint a constructor default implies: its type, and its sign for numbers (counts start at 1)."""
    import types

    if default is None:
        args = [a for a in getattr(hint, "__args__", ()) if a is not type(None)]
        if isinstance(hint, types.UnionType) and args == [int]:
            return OrNone(Integer(1))
        if isinstance(hint, types.UnionType) and args == [float]:
            return OrNone(Real())
        return None
    if isinstance(default, bool):
        return Options((True, False))
    if isinstance(default, int):
        return Integer(1 if default >= 1 else 0 if default >= 0 else None)
    if isinstance(default, float):
        return Real(0.0, None, open_low=True) if default > 0 else Real(0.0) if default == 0 else Real()
    if isinstance(default, str):
        return _AnyString()
    return None


class Method:
    """Base class of every method.

    Subclasses set the class attributes below, take hyperparameters as keyword-only constructor
    arguments (stored unchanged under the same names, plus ``random_state``), cite their paper in a
    ``References`` docstring section, and implement ``run``.
    """

    name: ClassVar[str]
    version: ClassVar[str] = "1"
    family: ClassVar[str]
    access: ClassVar[frozenset[str]]
    outputs: ClassVar[frozenset[str]]
    search_space: ClassVar[Mapping[str, Any]] = {}
    # what each hyperparameter may be, where its search space and constructor default say too little
    # (`Real`, `Integer`, `Options`, `OrNone`); see `constraints`
    param_constraints: ClassVar[Mapping[str, Any]] = {}
    # what the method needs of a scenario; `applicable` turns these into a reason to skip a pair
    needs_input_map: ClassVar[bool] = False  # reads per-variable answers off input columns (identity rendering)
    label_kinds: ClassVar[frozenset[str]] = frozenset({"binary", "continuous"})
    min_environments: ClassVar[int] = 1
    # trains on every (label x spurious value) group: cannot run where training lacks one by construction
    # (`Scenario.missing_train_groups`, e.g. cow_separable)
    needs_every_group: ClassVar[bool] = False
    # a control (no edit, random ablations): scored and shown so others can be read against it, marked, and
    # not a competitor in rankings
    control: ClassVar[bool] = False
    # modules the sandbox's template imports before forking this method's first job (`cowbench.sandbox`): a heavy
    # import the method makes inside ``run`` is then paid once per worker, not by every job's fresh process
    preload: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *, random_state: int | None = None):
        self.random_state = random_state

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY]

    @classmethod
    def constraints(cls) -> dict[str, Any]:
        """Hyperparameter -> constraint: declared in ``param_constraints``, else implied by ``search_space``,
        else by the constructor default's type (a positive default: positive values; a count: >= 1)."""
        import typing

        try:
            hints = typing.get_type_hints(cls.__init__)
        except Exception:  # annotations naming what the method's module does not import: use defaults only
            hints = {}
        sig = inspect.signature(cls.__init__)
        table = {}
        for name in cls._param_names():
            if name == "random_state":
                continue
            if name in cls.param_constraints:
                table[name] = cls.param_constraints[name]
                continue
            found = _from_space(cls.search_space[name]) if name in cls.search_space else None
            if found is None:
                found = _from_default(sig.parameters[name].default, hints.get(name))
            if found is not None:
                table[name] = found
        return table

    @classmethod
    def check_params(cls, params: Mapping[str, Any]) -> dict[str, Any]:
        """Validate hyperparameters before anything runs: known names, values allowed by `constraints`.

        Raises `InputError` naming the method, the hyperparameter, the value and what is allowed.
        """
        if not isinstance(params, Mapping):
            raise InputError(f"method {cls.name!r}: hyperparameters must be a table of name = value, "
                             f"got {params!r}")
        allowed = [p for p in cls._param_names() if p != "random_state"]
        for key in params:
            if key not in allowed:
                raise InputError(f"method {cls.name!r}: unknown hyperparameter {key!r}; allowed: "
                                 f"{', '.join(allowed) or 'none'}")
        table = cls.constraints()
        for key, value in params.items():
            rule = table.get(key)
            if rule is not None and not rule.accepts(value):
                raise InputError(f"method {cls.name!r}: hyperparameter {key}={value!r} is invalid: allowed "
                                 f"{rule.describe()}")
        return dict(params)

    def get_params(self) -> dict[str, Any]:
        """Constructor arguments, as stored (scikit-learn convention)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def hyperparameters(self) -> dict[str, Any]:
        """``get_params()`` without ``random_state``: what identifies a configuration."""
        params = self.get_params()
        params.pop("random_state", None)
        return params

    def set_params(self, **params: Any) -> Method:
        names = self._param_names()
        for key, value in params.items():
            if key not in names:
                raise ValueError(f"{self.name}: unknown hyperparameter {key!r}; allowed: {', '.join(names)}")
            setattr(self, key, value)
        return self

    def clone(self, **params: Any) -> Method:
        """A new, unfitted instance with the same (or updated) parameters."""
        merged = {**self.get_params(), **params}
        return type(self)(**merged)

    @classmethod
    def applicable(cls, scenario: Any) -> str | None:
        """None if the method can run on ``scenario``, else the reason it cannot (the harness skips the pair).

        Override to add conditions; call ``super().applicable(scenario)`` first.
        """
        if cls.needs_input_map and scenario.input_map is None:
            return f"needs one input per variable; the {scenario.rendering} rendering mixes them"
        if scenario.scm.label_kind not in cls.label_kinds:
            return f"needs a {' or '.join(sorted(cls.label_kinds))} label; this one is {scenario.scm.label_kind}"
        if len(scenario.scm.train_envs) < cls.min_environments:
            return f"needs at least {cls.min_environments} training environments"
        if cls.needs_every_group and scenario.missing_train_groups:
            return (f"needs every (label x spurious value) group in train; group(s) "
                    f"{', '.join(map(str, scenario.missing_train_groups))} (2 y + s) have no training unit by "
                    "construction")
        return None

    def run(self, task: Any) -> MethodOutput:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


def register_method(cls: type[Method]) -> type[Method]:
    """Class decorator: validate the declaration and register the method under ``cls.name``."""
    for attr in ("name", "family", "access", "outputs"):
        if not hasattr(cls, attr):
            raise TypeError(f"method class {cls.__qualname__} must set {attr!r}")
    if cls.family not in FAMILIES:
        raise ValueError(f"method {cls.name!r}: family {cls.family!r} is not one of {FAMILIES}")
    cls.access = check_access(cls.access)
    cls.outputs = frozenset(cls.outputs)
    if not cls.outputs or not cls.outputs <= set(OUTPUTS):
        raise ValueError(f"method {cls.name!r}: outputs must be a non-empty subset of {OUTPUTS}")
    if "References" not in (cls.__doc__ or ""):
        raise ValueError(f"method {cls.name!r}: its docstring needs a 'References' section citing its paper")
    params = cls._param_names()
    if "random_state" not in params:
        raise TypeError(f"method {cls.name!r}: the constructor must take a keyword-only random_state")
    sig = inspect.signature(cls.__init__)
    positional = [p.name for p in sig.parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "self"]
    if positional:
        raise TypeError(f"method {cls.name!r}: hyperparameters must be keyword-only, got {positional}")
    unknown = (set(cls.search_space) | set(cls.param_constraints)) - set(params)
    if unknown:
        raise ValueError(f"method {cls.name!r}: search_space or param_constraints name unknown hyperparameters "
                         f"{sorted(unknown)}")
    for key, rule in cls.constraints().items():  # a constraint its own default breaks is a declaration bug
        default = sig.parameters[key].default
        if default is not inspect.Parameter.empty and not rule.accepts(default):
            raise ValueError(f"method {cls.name!r}: the default {key}={default!r} breaks its constraint "
                             f"({rule.describe()})")
    METHODS.register(cls.name, cls, origin=f"{cls.__module__}.{cls.__qualname__}")
    return cls
