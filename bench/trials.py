"""Hyperparameter trials: K settings per method drawn from its declared ``search_space``.

Draw 0 is the method's defaults (with whatever the suite fixes); draw ``i >= 1`` samples every hyperparameter
of the search space that the suite does not fix, from ``numpy.random.default_rng(hparam_seed)`` with
``hparam_seed = derive_seed(root_seed, "hparam", method, i)`` (DESIGN.md, Reproducibility). The draws are a
function of the root seed, the method's name and the index only: every scenario, replicate, launcher and
worker sees the same K settings, so a selection rule compares the same candidates everywhere (as DomainBed's
random search does, Gulrajani & Lopez-Paz 2021).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from cowbench.seeds import derive_seed, stable_hash

MAX_TRIALS = 1000


def hparam_seed(root_seed: int, method: str, index: int) -> int:
    """The seed of draw ``index`` of ``method``'s hyperparameters (DESIGN.md: ``hparam_seed``)."""
    return derive_seed(root_seed, "hparam", method, index)


def draw_hparams(cls: type, root_seed: int, index: int, fixed: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Setting ``index`` of ``cls``: ``fixed`` for index 0, else ``fixed`` plus a draw of the free search space.

    Keys are drawn in sorted order, so adding an unrelated entry to a method's class dict does not change a draw.
    Raises `ValueError` for a negative index.
    """
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise ValueError(f"a trial index must be a non-negative integer, got {index!r}")
    fixed = dict(fixed or {})
    if index == 0:
        return fixed
    rng = np.random.default_rng(hparam_seed(root_seed, cls.name, index))
    drawn = {key: cls.search_space[key].sample(rng) for key in sorted(cls.search_space) if key not in fixed}
    return {**fixed, **drawn}


def trial_settings(cls: type, trials: int, root_seed: int, fixed: Mapping[str, Any] | None = None
                   ) -> list[tuple[int, dict[str, Any]]]:
    """``(draw index, hyperparameters)`` of the first ``trials`` draws, duplicates dropped (first index kept).

    A method with nothing left to draw (no search space, or every key fixed by the suite) has one setting:
    draws would repeat it. A `Choice`-only space can repeat a setting too; the repeat would be the same job.
    """
    if isinstance(trials, bool) or not isinstance(trials, int) or not 1 <= trials <= MAX_TRIALS:
        raise ValueError(f"trials must be an integer in [1, {MAX_TRIALS}], got {trials!r}")
    fixed = dict(fixed or {})
    free = [k for k in cls.search_space if k not in fixed]
    out: list[tuple[int, dict[str, Any]]] = []
    seen: set[str] = set()
    for index in range(trials if free else 1):
        params = draw_hparams(cls, root_seed, index, fixed)
        key = stable_hash(params)
        if key not in seen:
            seen.add(key)
            out.append((index, params))
    return out
