"""Speed of our logistic regression against scikit-learn's LogisticRegression on the same data.

``cowbench.methods._common.logistic_fit`` (what the ``logistic`` method runs) wraps scikit-learn's
LogisticRegression (L-BFGS, tol 1e-8) and adds a standard-error pass (predict_proba, the d x d observed
Fisher information and its pseudo-inverse). The benchmark times it and, in the same run and on the same
data, the bare scikit-learn fit with the same settings; ``extra_info["ratio_to_sklearn"]`` is the overhead
(target: within 2x). A second benchmark times scikit-learn's fit at its default settings (tol 1e-4),
``extra_info["ratio_to_sklearn_default"]``, to show what our tighter tolerance costs.

Run with ``python -m pytest tests/perf/test_perf_estimation.py --benchmark-only``. Nothing here asserts a
time.
"""


import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

import cowbench as cb
from cowbench.methods._common import logistic_fit

N_PER_ENV = 50_000  # 10^5 training units over the two cow environments
ROUNDS = 5
C, MAX_ITER = 1e4, 1000  # the logistic method's defaults


@pytest.fixture(scope="module")
def cow_train():
    """10^5 cow training units (identity rendering, 4 inputs); not timed."""
    data = cb.make_scenario("cow", n_train=N_PER_ENV, n_val=10, n_test=10).sample(seed=0)
    return np.asarray(data.train.x), np.asarray(data.train.y)



@pytest.mark.benchmark(group="logistic-1e5x4")
def test_perf_logistic_fit_vs_sklearn(benchmark, cow_train, best_of):
    x, y = cow_train
    coef, se = benchmark.pedantic(lambda: logistic_fit(x, y, C=C, max_iter=MAX_ITER),
                                  rounds=ROUNDS, iterations=1, warmup_rounds=1)
    assert coef.shape == se.shape == (x.shape[1],) and np.isfinite(se).all()
    same = best_of(lambda: LogisticRegression(C=C, max_iter=MAX_ITER, tol=1e-8).fit(x, y))
    default = best_of(lambda: LogisticRegression(C=C, max_iter=MAX_ITER).fit(x, y))
    ours = benchmark.stats.stats.min
    benchmark.extra_info.update({
        "n_units": int(x.shape[0]),
        "n_inputs": int(x.shape[1]),
        "sklearn_same_settings_min_s": same,
        "sklearn_default_tol_min_s": default,
        "ratio_to_sklearn": ours / same,
        "ratio_to_sklearn_default": ours / default,
        "overhead": "logistic_fit = sklearn LogisticRegression(tol=1e-8) + predict_proba + Fisher information",
    })


@pytest.mark.benchmark(group="logistic-1e5x4")
def test_perf_sklearn_logistic_regression(benchmark, cow_train):
    x, y = cow_train
    fit = benchmark.pedantic(lambda: LogisticRegression(C=C, max_iter=MAX_ITER, tol=1e-8).fit(x, y),
                             rounds=ROUNDS, iterations=1, warmup_rounds=1)
    assert fit.coef_.shape == (1, x.shape[1])
