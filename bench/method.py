"""The method contract: `Method`, `MethodOutput`, hyperparameter spaces and `register_method`.

A method is one class in one file: class attributes say what it is and what it needs, the constructor
only stores keyword-only hyperparameters (scikit-learn convention), and ``run(task)`` returns a
`MethodOutput`. ``@register_method`` validates the declaration and adds it to the registry.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from cowbench.access import check_access
from cowbench.registries import METHODS

FAMILIES = ("estimation", "causal", "robust_training", "attribution", "editing")
OUTPUTS = ("world", "model", "detect", "edit")


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
    details : dict
        Anything else worth keeping in the result file (JSON-serialisable).
    """

    world_coef: dict[str, float] | None = None
    model_coef: dict[str, float] | None = None
    spurious_score: dict[str, float] | None = None
    abstain: bool = False
    edited: Any = None
    localized: dict[str, Any] | None = None
    details: dict[str, Any] = field(default_factory=dict)


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
        from cowbench.errors import InputError

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
