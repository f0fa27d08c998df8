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
    details : dict
        Anything else worth keeping in the result file (JSON-serialisable).
    """

    world_coef: dict[str, float] | None = None
    model_coef: dict[str, float] | None = None
    spurious_score: dict[str, float] | None = None
    abstain: bool = False
    edited: Any = None
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
    # what the method needs of a scenario; `applicable` turns these into a reason to skip a pair
    needs_input_map: ClassVar[bool] = False  # reads per-variable answers off input columns (identity rendering)
    label_kinds: ClassVar[frozenset[str]] = frozenset({"binary", "continuous"})
    min_environments: ClassVar[int] = 1

    def __init__(self, *, random_state: int | None = None):
        self.random_state = random_state

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY]

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
    unknown = set(cls.search_space) - set(params)
    if unknown:
        raise ValueError(f"method {cls.name!r}: search_space names unknown hyperparameters {sorted(unknown)}")
    METHODS.register(cls.name, cls, origin=f"{cls.__module__}.{cls.__qualname__}")
    return cls
