"""Sampling speed and memory of the tabular cow at 10^6 rows, against the floor of drawing the same
number of random variates with numpy's Generator alone (measured in the same run).

Run with ``python -m pytest tests/perf/test_perf_sampling.py --benchmark-only``; the ratios go to
``extra_info`` (targets: time within 3x of the floor, peak memory within 2x of the output arrays).
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import cowbench as cb

N = 1_000_000


@pytest.fixture(scope="module")
def scm():
    return cb.make_scenario("cow", n_train=N).scm


def draw_like_the_floor(n: int) -> np.ndarray:
    # the same variates as one split of the cow: moo, tail, cow noise (normal), grass (uniform), sky, and the
    # measurement noise of moo and tail
    rng = np.random.default_rng(0)
    out = [rng.standard_normal(n) for _ in range(6)]
    out.append(rng.random(n))
    return out


def sample_train(scm, n: int):
    env = np.repeat(np.arange(2), n // 2)
    exogenous = scm.draw_exogenous(np.random.default_rng(0), n)
    return scm.make_split("train", exogenous, env)


@pytest.mark.benchmark(group="sampling")
def test_floor_numpy_variates(benchmark):
    benchmark(draw_like_the_floor, N)


@pytest.mark.benchmark(group="sampling")
def test_cow_train_split_of_a_million_rows(benchmark, scm, best_of):
    split = benchmark(sample_train, scm, N)
    floor = best_of(lambda: draw_like_the_floor(N))  # the floor's best time, measured next to the benchmark
    benchmark.extra_info["floor_seconds_same_run"] = floor
    benchmark.extra_info["time_ratio_to_floor"] = benchmark.stats.stats.min / floor
    output_bytes = split.x.nbytes + split.y.nbytes + split.env.nbytes + split.group.nbytes
    output_bytes += split.concepts.memory_usage(index=False).sum()
    output_bytes += sum(a.nbytes for a in split.exogenous.values())
    tracemalloc.start()
    sample_train(scm, N)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    benchmark.extra_info["output_mb"] = output_bytes / 2**20
    benchmark.extra_info["peak_mb"] = peak / 2**20
    benchmark.extra_info["memory_ratio_to_output"] = peak / output_bytes
