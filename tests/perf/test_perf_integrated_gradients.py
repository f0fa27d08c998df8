"""Integrated gradients speed: ours against captum's ``IntegratedGradients`` on the same model and inputs.

Run with ``python -m pytest tests/perf --benchmark-only``. captum is not a dependency: the file is skipped
without it (``pip install captum`` to run it). Both use the same Gauss-Legendre rule, 64 steps, 1000 cow
training units and the cow subject MLP, and both batch every step of every unit (captum in one batch, ours in
chunks of at most 65536 interpolated points). Nothing asserts a time: ``extra_info["ratio_to_captum"]`` (ours
over captum, best of the rounds; target: not above 1) is what to compare across machines and commits.
"""


import numpy as np
import pytest
import torch

import cowbench as cb
from cowbench.methods.integrated_gradients import integrated_gradients

captum_attr = pytest.importorskip("captum.attr")

N_STEPS = 64
N_UNITS = 1000
ROUNDS = 5


@pytest.fixture(scope="module")
def ig_problem():
    """The cow subject MLP, 1000 training inputs and the mean baseline (not timed)."""
    scn = cb.make_scenario("cow")
    data = scn.sample(0)
    model = cb.train_subject(scn, data, arch="mlp", seed=0).eval()
    x = np.asarray(data.train.x[:N_UNITS], dtype=np.float32)
    return model, x, x.mean(0)



def _captum(model, x, ref):
    xt, bt = torch.tensor(x), torch.tensor(np.broadcast_to(ref, x.shape).copy())
    ig = captum_attr.IntegratedGradients(model)
    return lambda: ig.attribute(xt, baselines=bt, n_steps=N_STEPS, method="gausslegendre")


@pytest.mark.benchmark(group="integrated-gradients")
def test_perf_integrated_gradients_ours(benchmark, ig_problem, best_of):
    model, x, ref = ig_problem
    ours = benchmark.pedantic(lambda: integrated_gradients(model, x, ref, n_steps=N_STEPS, rule="gausslegendre"),
                              rounds=ROUNDS, iterations=1, warmup_rounds=1)
    captum_fn = _captum(model, x, ref)
    theirs = captum_fn()
    np.testing.assert_allclose(ours, theirs.detach().double().numpy(), atol=1e-4, rtol=1e-3)
    captum_s = best_of(captum_fn)
    benchmark.extra_info.update({
        "n_units": len(x), "n_steps": N_STEPS, "rule": "gausslegendre",
        "baseline": "captum.attr.IntegratedGradients(model).attribute(x, baselines, n_steps, 'gausslegendre')",
        "captum_min_s": captum_s,
        "ratio_to_captum": benchmark.stats.stats.min / captum_s,
        "torch_threads": torch.get_num_threads(),
    })


@pytest.mark.benchmark(group="integrated-gradients")
def test_perf_integrated_gradients_captum(benchmark, ig_problem):
    model, x, ref = ig_problem
    out = benchmark.pedantic(_captum(model, x, ref), rounds=ROUNDS, iterations=1, warmup_rounds=1)
    assert tuple(out.shape) == x.shape
