"""Linear NOTEARS: recovers an equal-variance SEM; its orientations follow the marginal variances (a failure)."""

import numpy as np

import cowbench as cb
from cowbench.methods.notears import NOTEARS, notears_linear


def _equal_variance_sem(n, seed):
    """x0 -> x1 -> x2 and x0 -> x2 with unit noise variances (identifiable by least squares; Peters & Bühlmann
    2014)."""
    rng = np.random.default_rng(seed)
    e = rng.standard_normal((n, 3))
    x0 = e[:, 0]
    x1 = 1.0 * x0 + e[:, 1]
    x2 = -0.8 * x1 + 0.6 * x0 + e[:, 2]
    return np.column_stack([x0, x1, x2])


def test_recovers_an_equal_variance_sem_and_without_l1_its_weights_are_least_squares():
    x = _equal_variance_sem(1000, 0)
    expected = np.array([[0, 1.0, 0.6], [0, 0, -0.8], [0, 0, 0]])
    w = notears_linear(x, lambda1=0.0)
    assert ((w != 0) == (expected != 0)).all()
    # on the true DAG the least-squares loss is minimised by each node's OLS on its parents (centred data);
    # the augmented Lagrangian stops at h <= 1e-8 with a large rho, whose pull moves the weights by ~2e-3 (measured):
    # they agree to 0.01, a third of one sampling standard error (1 / sqrt(1000))
    xc = x - x.mean(0)
    np.testing.assert_allclose(w[0, 1], np.linalg.lstsq(xc[:, [0]], xc[:, 1], rcond=None)[0][0], atol=1e-2)
    np.testing.assert_allclose(w[[0, 1], 2], np.linalg.lstsq(xc[:, [0, 1]], xc[:, 2], rcond=None)[0], atol=1e-2)
    # the l1 term only shrinks: every weight the default keeps is smaller in magnitude, none changes sign
    shrunk = notears_linear(x)
    kept = shrunk != 0
    assert kept.any() and (np.abs(shrunk[kept]) < np.abs(w[kept])).all()
    assert (np.sign(shrunk[kept]) == np.sign(w[kept])).all()


def test_rescaling_a_variable_reverses_the_edge():
    # varsortability (Reisach et al. 2021): with the effect measured in units 10x smaller its variance falls below
    # the cause's, and least squares then prefers the reversed edge; the true DAG has not changed
    rng = np.random.default_rng(1)
    x = rng.standard_normal(2000)
    y = 0.8 * x + rng.standard_normal(2000)
    # (lambda1 = 0: the l1 term, not scale-free either, would otherwise drop the rescaled edge altogether)
    w = notears_linear(np.column_stack([x, y]), lambda1=0.0)
    assert w[0, 1] != 0 and w[1, 0] == 0
    w = notears_linear(np.column_stack([x, y / 10]), lambda1=0.0)
    assert w[1, 0] != 0 and w[0, 1] == 0


def test_detects_the_proxy_on_proxy_sem(pooled_task, detect_auroc):
    # measured: 6 of 6 seeds (y's variance 2.25 exceeds its causes' 1, so the order by variance is right)
    scn = cb.make_scenario("proxy_sem")
    for seed in range(2):
        out = NOTEARS().run(pooled_task(scn, seed))
        assert detect_auroc(scn, out.spurious_score) == 1.0


def test_the_label_with_the_smallest_variance_is_put_first_on_cow(pooled_task, detect_auroc):
    # cow's label (variance 0.25) has a smaller variance than every input (measurement noise 1): the expected
    # failure is that NOTEARS makes the causes its children; measured in 6 of 6 seeds at n = 4000, 3 of 3 at 1000
    scn = cb.make_scenario("cow", n_train=500)
    out = NOTEARS().run(pooled_task(scn, 0))
    assert out.details["relation"]["moo"] == out.details["relation"]["tail"] == "child"
    assert detect_auroc(scn, out.spurious_score) <= 0.5
