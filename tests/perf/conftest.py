"""Shared helper of the benchmarks: the best wall time of a few calls, for ratios measured in the same run."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest


def _best_of(fn: Callable[[], object], rounds: int = 5) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


@pytest.fixture
def best_of() -> Callable[..., float]:
    """``best_of(fn, rounds=5)``: the minimum wall time of ``rounds`` calls of ``fn``, in seconds."""
    return _best_of
