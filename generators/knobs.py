"""Knobs: the validated keyword parameters of a scenario family, and the factory that checks them.

A family declares its knobs as data (name, default, allowed range, one line of documentation); the
factory fills defaults, rejects unknown names and out-of-range values with a `ValueError` naming the
knob, the value and what is allowed, and only then builds the `Scenario`.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cowbench.errors import InputError
from cowbench.generators.scm import Scenario
from cowbench.registries import SCENARIOS


@dataclass(frozen=True)
class Knob:
    """One knob: ``check`` returns the normalised value or raises `ValueError` with what is allowed."""

    name: str
    default: Any
    doc: str
    check: Callable[[Any], Any]
    allowed: str
    # machine-readable domain, e.g. ("real", low, high), for property tests and tools
    domain: tuple[Any, ...] = ()

    def validate(self, value: Any) -> Any:
        try:
            return self.check(value)
        except (TypeError, ValueError):
            raise InputError(f"knob {self.name}={value!r} is invalid: allowed {self.allowed}") from None


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError
    value = float(value)
    if not math.isfinite(value):
        raise ValueError
    return value


def real(name: str, default: float, low: float, high: float, doc: str, *, open_low: bool = False) -> Knob:
    """A float knob in ``[low, high]`` (``(low, high]`` with ``open_low``)."""

    def check(value: Any) -> float:
        value = _number(value)
        if value < low or value > high or (open_low and value == low):
            raise ValueError
        return value

    bracket = "(" if open_low else "["
    return Knob(name, default, doc, check, f"a number in {bracket}{low}, {high}]", ("real", low, high, open_low))


def integer(name: str, default: int, low: int, high: int, doc: str) -> Knob:
    """An integer knob in ``[low, high]``."""

    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError
        if value < low or value > high:
            raise ValueError
        return int(value)

    return Knob(name, default, doc, check, f"an integer in [{low}, {high}]", ("integer", low, high))


def real_tuple(name: str, default: tuple[float, ...], low: float, high: float, doc: str, *,
               min_len: int = 1, max_len: int = 16) -> Knob:
    """A tuple of floats in ``[low, high]`` with ``min_len`` to ``max_len`` entries."""

    def check(value: Any) -> tuple[float, ...]:
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = (value,)
        if not isinstance(value, list | tuple) or not min_len <= len(value) <= max_len:
            raise ValueError
        out = tuple(_number(v) for v in value)
        if any(v < low or v > high for v in out):
            raise ValueError
        return out

    return Knob(name, default, doc, check, f"a list of {min_len} to {max_len} numbers, each in [{low}, {high}]",
                ("real_tuple", low, high, min_len, max_len))


def choice(name: str, default: str, options: tuple[str, ...], doc: str) -> Knob:
    """A string knob that must be one of ``options`` (exact, case-sensitive match)."""
    options = tuple(options)
    if default not in options:
        raise ValueError(f"knob {name}: default {default!r} is not one of {options}")

    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise TypeError
        if value not in options:
            raise ValueError
        return value

    return Knob(name, default, doc, check, f"one of {', '.join(map(repr, options))}", ("choice", options))


def same_length(name: str, value: tuple, other: str, length: int) -> None:
    """Raise `InputError` unless the tuple knob ``name`` has the length of the knob ``other``."""
    if len(value) != length:
        raise InputError(f"knob {name}={value!r} is invalid: allowed a list of the same length as {other} ({length})")


class ScenarioFamily:
    """A registered scenario generator: validates knobs, then calls its builder.

    Calling the family with keyword knobs returns a `Scenario`; ``family.knobs`` documents them.
    ``subject``, when set, is the subject model the family's scenarios declare (e.g. ``{"arch": "planted"}``):
    it replaces a suite's ``[subject]`` table for them (`cowbench.subject.subject_for`).
    """

    def __init__(self, name: str, version: str, knobs: tuple[Knob, ...], build: Callable[..., Any],
                 doc: str, subject: Mapping[str, Any] | None = None):
        self.subject = None if subject is None else dict(subject)
        self.name = name
        self.version = version
        self.knobs = {k.name: k for k in knobs}
        self.build = build
        self.__doc__ = doc
        self.__module__ = build.__module__
        self.__qualname__ = build.__qualname__

    def resolve(self, knobs: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults filled in, every value validated and normalised."""
        for key in knobs:
            if key not in self.knobs:
                close = difflib.get_close_matches(key, list(self.knobs), n=2)
                hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
                raise InputError(
                    f"unknown knob {key!r} for scenario {self.name!r}{hint} "
                    f"(allowed: {', '.join(self.knobs)})"
                )
        return {name: knob.validate(knobs.get(name, knob.default)) for name, knob in self.knobs.items()}

    def __call__(self, **knobs: Any) -> Any:
        resolved = self.resolve(knobs)
        spec = {"generator": self.name, "version": self.version, "knobs": resolved}
        return Scenario(spec, self.build(**resolved))

    def __repr__(self) -> str:
        return f"<scenario family {self.name!r} v{self.version}>"


def preset(name: str, base: ScenarioFamily, *, doc: str, **defaults: Any) -> ScenarioFamily:
    """Register ``name`` as ``base`` with other default knob values (a named preset of the family)."""
    knobs = []
    for knob in base.knobs.values():
        if knob.name in defaults:
            knob = Knob(knob.name, knob.validate(defaults.pop(knob.name)), knob.doc, knob.check, knob.allowed,
                        knob.domain)
        knobs.append(knob)
    if defaults:
        raise ValueError(f"preset {name!r}: unknown knobs {sorted(defaults)} for family {base.name!r}")
    family = ScenarioFamily(name, base.version, tuple(knobs), base.build, f"{doc}\n\n{base.__doc__}",
                            subject=base.subject)
    SCENARIOS.register(name, family, origin=f"{base.build.__module__}:{name}")
    return family


def scenario_family(name: str, *, version: str, knobs: tuple[Knob, ...], subject: Mapping[str, Any] | None = None
                    ) -> Callable[[Callable], ScenarioFamily]:
    """Decorator: register ``build(**knobs) -> SCM`` as the scenario family ``name`` (``subject``: its declared
    subject model, see `ScenarioFamily`)."""

    def wrap(build: Callable[..., Any]) -> ScenarioFamily:
        family = ScenarioFamily(name, version, knobs, build, build.__doc__ or "", subject=subject)
        SCENARIOS.register(name, family, origin=f"{build.__module__}.{build.__qualname__}")
        return family

    return wrap
