"""The paired statistics behind ranks, resolution and compare, against scipy and closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import nct, t, ttest_rel

from cowbench.stats import (
    holm,
    min_resolvable_difference,
    paired_t_test,
    replicates_needed,
    sign_test_floor,
)


@pytest.mark.parametrize("seed", range(5))
def test_paired_t_test_is_scipys_ttest_rel(seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=7)
    b = a + rng.normal(0.3, 0.5, size=7)
    diff, p, n = paired_t_test(a, b)
    assert n == 7 and diff == pytest.approx(np.mean(a - b))
    assert p == pytest.approx(ttest_rel(a, b).pvalue, rel=1e-12)


def test_paired_t_test_pairs_only_shared_replicates_and_handles_constant_differences():
    a = np.array([0.1, 0.2, np.nan, 0.4])
    b = np.array([0.0, 0.15, 0.3, np.nan])
    diff, p, n = paired_t_test(a, b)
    assert n == 2 and diff == pytest.approx(0.075)
    assert p == pytest.approx(ttest_rel([0.1, 0.2], [0.0, 0.15]).pvalue)
    # every replicate differs by the same amount: no t-test can doubt it (scipy returns nan here)
    assert paired_t_test([0.3, 0.5, 0.7], [0.2, 0.4, 0.6])[1] == 0.0
    # identical up to float noise: no difference at all
    x = np.array([0.3, 0.1 + 0.2, 0.5])
    assert paired_t_test(x, x * (1 + 1e-13))[1] == 1.0
    # one pair: no test
    assert paired_t_test([0.9], [0.1])[1] == 1.0
    with pytest.raises(ValueError, match="same shape"):
        paired_t_test([1.0, 2.0], [1.0])


def test_holm_matches_the_step_down_by_hand():
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 -> 0.02, 0.03, 0.06, 0.04 -> running max 0.02 0.03 0.06 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]).tolist() == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5]).tolist() == [0.5]
    assert holm([0.6, 0.7]).tolist() == [1.0, 1.0]  # 2 x 0.6 caps at 1; the larger is never below it
    assert len(holm([])) == 0


def test_holm_never_rejects_more_than_bonferroni_at_the_smallest_p_and_is_monotone():
    rng = np.random.default_rng(3)
    for _ in range(50):
        p = rng.uniform(size=6)
        adj = holm(p)
        assert (adj >= p - 1e-15).all() and (adj <= 1).all()
        assert adj[np.argmin(p)] == pytest.approx(min(1.0, 6 * p.min()))
        order = np.argsort(p)
        assert (np.diff(adj[order]) >= -1e-15).all()


@pytest.mark.parametrize("n", [5, 10, 30])
def test_min_resolvable_difference_has_power_0_8_by_the_noncentral_t(n):
    # exact power of the two-sided paired t-test at the difference the formula gives (noncentral t): the
    # formula is the usual approximation, within 0.01 of 0.8 from 5 replicates on
    d = min_resolvable_difference(1.0, n)
    crit = t.ppf(0.975, n - 1)
    nc = d * math.sqrt(n)
    power = nct.sf(crit, n - 1, nc) + nct.cdf(-crit, n - 1, nc)
    assert power == pytest.approx(0.8, abs=0.01)
    assert replicates_needed(1.0, d) == n
    assert min_resolvable_difference(0.5, n) == pytest.approx(d / 2)
    assert min_resolvable_difference(1.0, 1) == math.inf


def test_a_sign_test_cannot_reach_significance_below_six_pairs():
    assert sign_test_floor(5) == pytest.approx(0.0625) and sign_test_floor(6) == pytest.approx(0.03125)
    assert sign_test_floor(3) == 0.25 and sign_test_floor(0) == 1.0
