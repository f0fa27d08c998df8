"""Model truth: how much a model relies on each variable, measured by interventions on the generator.

For a model ``f`` (logit output), a variable ``v`` and a batch of units:

* ``ace[v]`` = ``E[f(do(v=v+d)) - f(do(v=v-d))] / 2d`` for continuous ``v`` (``d`` = ``delta`` times
  the sd of ``v`` in the batch), ``E[f(do(v=1)) - f(do(v=0))]`` for binary ``v``;
* ``cr[v]`` = ``E|f(do(v=v')) - f(x)|`` with ``v'`` a random permutation of ``v`` over the batch
  (independent of everything else), which also catches reliance through interactions.

Every *other observed* variable is held at its value in the same intervention, so this is the effect
of ``v`` through the model's own inputs (direct reliance), not through ``v``'s descendants in the world.
That is what a model "relies on", and it makes ``ace`` of a linear model on identity rendering equal
its weight exactly.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

import numpy as np
from torch import nn

from cowbench.data import Split
from cowbench.models import logits

if TYPE_CHECKING:
    from cowbench.generators.scm import Scenario

MEASURES = ("ace", "cr")


def _held(scn: Scenario, split: Split) -> dict[str, np.ndarray]:
    return {v: split.concepts[v].to_numpy(dtype=np.float64) for v in scn.variables}


# The intervened inputs of `reliance_units`' ``ace``, per split: (scenario, variable, rule) -> read-only x. They are
# a function of the split alone, the same for every model scored on it (the subject, and each edit job's model in
# its dry run and its scoring), so a worker computes them once per replicate instead of four times per edit job;
# they go when the split goes (the replicate leaves the worker's cache).
_INTERVENED: weakref.WeakKeyDictionary[Split, dict[tuple[Any, ...], np.ndarray]] = weakref.WeakKeyDictionary()


def _inputs_under(scn: Scenario, split: Split, held: dict[str, np.ndarray], variable: str,
                  value: np.ndarray | float, rule: tuple[Any, ...] | None = None) -> np.ndarray:
    """The split's inputs with ``variable`` set to ``value`` and every other variable held; cached under ``rule``
    (what determines ``value`` given the split) when one is given."""
    key = (scn, variable, rule)
    cached = _INTERVENED.get(split, {}).get(key) if rule is not None else None
    if cached is not None:
        return cached
    do = dict(held)
    do[variable] = value
    x = scn.intervened_x(split, do)
    if rule is not None:
        x.setflags(write=False)
        _INTERVENED.setdefault(split, {})[key] = x
    return x


def _logits_under(model: nn.Module, scn: Scenario, split: Split, held: dict[str, np.ndarray],
                  variable: str, value: np.ndarray | float, rule: tuple[Any, ...] | None = None) -> np.ndarray:
    return logits(model, _inputs_under(scn, split, held, variable, value, rule))


def _check(measure: str, delta: float) -> None:
    if measure not in MEASURES:
        raise ValueError(f"unknown reliance measure {measure!r}; allowed: {', '.join(MEASURES)}")
    if not delta > 0:
        raise ValueError(f"delta must be positive, got {delta}")


def reliance_units(model: nn.Module, scn: Scenario, split: Split, *, measure: str = "ace", delta: float = 0.1,
                   seed: int = 0) -> dict[str, np.ndarray]:
    """Each unit's contribution to `reliance`: ``{variable: array of shape (n,)}`` whose mean is the reliance.

    For ``ace`` a unit's contribution is its own slope (or its ``do(v=1) - do(v=0)`` difference); for ``cr``
    its ``|f(do(v=v')) - f(x)|``. Scores use the spread of these to put a standard error on a reliance.
    """
    _check(measure, delta)
    held = _held(scn, split)
    out: dict[str, np.ndarray] = {}
    if measure == "cr":
        base = logits(model, split.x)
        rng = np.random.default_rng(seed)
        for v in scn.variables:
            moved = _logits_under(model, scn, split, held, v, rng.permutation(held[v]))
            out[v] = np.abs(moved - base)
        return out
    for v in scn.variables:
        if scn.kind(v) == "binary":
            diff = (_logits_under(model, scn, split, held, v, 1.0, ("set", 1.0))
                    - _logits_under(model, scn, split, held, v, 0.0, ("set", 0.0)))
        else:
            step = delta * max(float(np.std(held[v])), 1e-12)
            diff = (_logits_under(model, scn, split, held, v, held[v] + step, ("shift", delta, 1))
                    - _logits_under(model, scn, split, held, v, held[v] - step, ("shift", delta, -1))) / (2 * step)
        out[v] = diff
    return out


def reliance(model: nn.Module, scn: Scenario, split: Split, *, measure: str = "ace", delta: float = 0.1,
             seed: int = 0) -> dict[str, float]:
    """``{variable: ace}`` (or ``cr`` with ``measure="cr"``) of ``model`` on ``split``: the mean of `reliance_units`."""
    units = reliance_units(model, scn, split, measure=measure, delta=delta, seed=seed)
    return {v: float(np.mean(u)) for v, u in units.items()}
