"""ICP's cost as the number of inputs grows, at two sample sizes.

Run with ``python -m pytest tests/perf --benchmark-only``. Nothing here asserts a time. ICP tests all 2^d
subsets but works from per-environment sufficient statistics (one pass over the rows, then O(|E| d^2)
per subset), so its cost should grow with the number of subsets and hardly with n: ``extra_info`` puts
the best time at n = 1000 and n = 20000 rows per environment side by side, with the time per subset.
"""


import numpy as np
import pytest

from cowbench.methods.icp import icp_search

N_SMALL, N_LARGE = 1_000, 20_000
SCALES = (0.5, 1.0, 2.0)


def _data(d: int, n_per_env: int, seed: int = 0):
    """linear_sem-like: x1 -> y -> x2 with x1's scale shifted per environment, plus d - 2 nuisance inputs."""
    rng = np.random.default_rng(seed)
    env = np.repeat(np.arange(len(SCALES)), n_per_env)
    x1 = rng.standard_normal(len(env)) * np.array(SCALES)[env]
    y = x1 + rng.standard_normal(len(env))
    x2 = y + rng.standard_normal(len(env))
    x = np.column_stack([x1, x2, rng.standard_normal((len(env), d - 2))])
    return x, y, env



@pytest.mark.benchmark(group="icp-subsets")
@pytest.mark.parametrize("d", [4, 8, 12])
def test_perf_icp_cost_grows_with_subsets_not_rows(benchmark, d, best_of):
    small, large = _data(d, N_SMALL), _data(d, N_LARGE)
    result = benchmark.pedantic(icp_search, args=small, rounds=3, iterations=1)
    t_small = best_of(lambda: icp_search(*small))
    t_large = best_of(lambda: icp_search(*large))
    benchmark.extra_info.update({
        "d": d, "subsets": 2**d,
        f"seconds_n{N_SMALL}_per_env": t_small, f"seconds_n{N_LARGE}_per_env": t_large,
        "ratio_large_to_small_n": t_large / t_small, "rows_ratio": N_LARGE / N_SMALL,
        "microseconds_per_subset_small_n": 1e6 * t_small / 2**d,
        "microseconds_per_subset_large_n": 1e6 * t_large / 2**d,
    })
    assert result["selected"] is not None  # a sanity check of the workload, not of the time
