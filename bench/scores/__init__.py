"""Scores: one registered function per metric, in one module per track.

A score is a function ``ctx -> float | None | Missing`` registered with ``@score(name, track=...,
higher_is_better=...)``. ``None`` is a plain absence (the method did not output what it scores, or the
metric does not apply to the scenario); ``Missing(reason)`` is a value the score refused to give because
one of its guards failed (e.g. a ratio whose denominator is within noise of zero). Both are stored as
``None`` in a job record's ``metrics``; the reasons go to the record's ``missing`` field,
``{metric: reason}``, which names only guarded refusals. Adding a metric is adding a function (or a
module) here; the scorer version, part of every job id, is derived from the registered names and
versions, so changing a score invalidates the results that used it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cowbench.registries import SCORES
from cowbench.seeds import stable_hash

# ``selection``: what the hyperparameter-selection rules read (`cowbench.selection`); never primary, never a
# table of its own in a report
TRACKS = ("world", "model", "detect", "edit", "discover", "selection")


@dataclass(frozen=True)
class Missing:
    """A score's refusal to give a value, with the reason (one line: which guard failed, with its numbers)."""

    reason: str

    def __post_init__(self) -> None:
        if not isinstance(self.reason, str) or not self.reason.strip():
            raise ValueError("Missing needs a non-empty reason")


class Metrics(dict):
    """``{metric: float | None}`` as a job records it, with ``missing``: ``{metric: reason}`` for guarded refusals."""

    def __init__(self, values: dict[str, float | None], missing: dict[str, str]):
        super().__init__(values)
        self.missing = dict(missing)


@dataclass(frozen=True)
class Score:
    """A registered metric: its function, track, direction and whether it ranks its track.

    ``bounds`` is the metric's possible range (``(lo, hi)``, either end may be infinite), so intervals
    and plots can stay inside it; ``chance`` is what an uninformed method gets (AUROC 0.5, a cosine 0, a
    scale-free error 1), or None where no scenario-independent chance level exists (accuracies).
    """

    name: str
    fn: Callable[[Any], float | Missing | None]
    track: str
    higher_is_better: bool
    primary: bool
    version: str
    doc: str
    bounds: tuple[float, float] = (-math.inf, math.inf)
    chance: float | None = None

    def __call__(self, ctx: Any) -> float | Missing | None:
        return self.fn(ctx)


def score(name: str, *, track: str, higher_is_better: bool, primary: bool = False,
          version: str = "1", bounds: tuple[float, float] = (-math.inf, math.inf),
          chance: float | None = None) -> Callable[[Callable], Score]:
    """Decorator: register a metric. Its docstring must give its formula.

    ``bounds`` (default: unbounded) and ``chance`` (default: none stated) are metadata for reports;
    they do not change the value.
    """
    if track not in TRACKS:
        raise ValueError(f"score {name!r}: track {track!r} is not one of {TRACKS}")
    lo, hi = (float(b) for b in bounds)
    if not lo < hi:
        raise ValueError(f"score {name!r}: bounds {bounds!r} must be (lo, hi) with lo < hi")
    if chance is not None and not lo <= chance <= hi:
        raise ValueError(f"score {name!r}: chance {chance!r} lies outside its bounds {bounds!r}")

    def wrap(fn: Callable[[Any], float | Missing | None]) -> Score:
        if not fn.__doc__:
            raise ValueError(f"score {name!r} needs a docstring with its formula")
        entry = Score(name, fn, track, higher_is_better, primary, version, fn.__doc__.strip(),
                      (lo, hi), None if chance is None else float(chance))
        SCORES.register(name, entry, origin=f"{fn.__module__}.{fn.__qualname__}")
        return entry

    return wrap


def all_scores() -> list[Score]:
    """Every registered score, in track order then name."""
    entries = [SCORES.get(n) for n in SCORES.names()]
    return sorted(entries, key=lambda s: (TRACKS.index(s.track), s.name))


def scorer_version() -> str:
    """A short hash of every score's name and version."""
    return stable_hash({s.name: s.version for s in all_scores()})[:12]


def compute_scores(ctx: Any) -> Metrics:
    """Every registered score on ``ctx``; a non-finite value is stored as missing.

    Returns a `Metrics` mapping (a dict of floats and Nones, as before) whose ``missing`` attribute holds
    the reason of every score that returned `Missing`.
    """
    out: dict[str, float | None] = {}
    missing: dict[str, str] = {}
    for s in all_scores():
        value = s(ctx)
        if isinstance(value, Missing):
            out[s.name] = None
            missing[s.name] = value.reason
        else:
            out[s.name] = None if value is None or value != value or abs(value) == float("inf") else float(value)
    return Metrics(out, missing)
