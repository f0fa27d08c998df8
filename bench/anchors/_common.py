"""Pieces every anchor shares: seeds per repetition, mean and standard error, the atomic write."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def rep_seeds(seed: int, *key: int, count: int = 2) -> list[int]:
    """``count`` independent non-negative seeds for one repetition, from ``SeedSequence([seed, *key])``."""
    return [int(s) for s in np.random.SeedSequence([seed, *key]).generate_state(count) >> 1]


def mean_se(values: pd.Series) -> tuple[float, float]:
    """Mean and standard error over repetitions (se NaN with one value)."""
    v = np.asarray(values, dtype=np.float64)
    se = float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else float("nan")
    return float(v.mean()), se


def fmt(mean: float, se: float, digits: int = 2) -> str:
    """``mean ± se`` (``mean`` alone when se is undefined; ``-`` when missing)."""
    if not np.isfinite(mean):
        return "-"
    return f"{mean:.{digits}f} ± {se:.{digits}f}" if np.isfinite(se) else f"{mean:.{digits}f}"


def write(path: str | Path, text: str) -> Path:
    """Write ``text`` atomically (temp file, fsync, rename: a killed run never leaves half a table)."""
    from cowbench.store import write_text_atomic

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, text)
    return path


def method_class(name: str):
    """A registered method's class, or None when it is not registered (yet): anchors list what is missing."""
    from cowbench.registries import METHODS

    try:
        return METHODS.get(name)
    except (KeyError, ValueError):
        return None
