"""ERM training (float64 inside, float32 out), thread pinning and the numeric defaults behind reproducibility."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from cowbench.determinism import NUMERIC_DEFAULTS, apply_numeric_defaults, pinned_threads
from cowbench.models import build_model
from cowbench.training import fit_logit_model


def _logistic_data(n: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    w = np.array([1.0, -0.5, 0.0])
    y = (rng.random(n) < 1 / (1 + np.exp(-(x @ w + 0.2)))).astype(np.float32)
    return x, y, w


def _params(model: torch.nn.Module) -> np.ndarray:
    return np.concatenate([p.detach().numpy().ravel() for p in model.parameters()])


def test_returns_float32_model_in_eval_mode():
    x, y, _ = _logistic_data(500)
    model = fit_logit_model(build_model("mlp", 3, seed=0), x, y, epochs=5)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert not model.training
    assert model(torch.from_numpy(x)).dtype == torch.float32  # callers keep feeding float32


def test_linear_logistic_reaches_the_maximum_likelihood_estimate():
    # independent truth: Newton's method on the same (unpenalised) log-likelihood, in float64
    x, y, _ = _logistic_data(2000)
    model = fit_logit_model(build_model("linear", 3, seed=0), x, y, epochs=800, lr=0.1)
    z = np.column_stack([np.ones(len(x)), x.astype(np.float64)])
    beta = np.zeros(4)
    for _ in range(50):
        p = 1 / (1 + np.exp(-z @ beta))
        beta += np.linalg.solve(z.T @ (z * (p * (1 - p))[:, None]), z.T @ (y - p))
    fitted = np.concatenate([model[0].bias.detach().numpy(), model[0].weight.detach().numpy().ravel()])
    # optimisation tolerance, not sampling noise: both estimate the same sample's optimum
    np.testing.assert_allclose(fitted, beta, atol=2e-3)


def test_squared_loss_linear_model_is_least_squares():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2000, 3)).astype(np.float32)
    y = (x @ np.array([2.0, 0.0, -1.0]) + 0.5 + rng.normal(size=2000)).astype(np.float32)
    model = fit_logit_model(build_model("linear", 3, seed=0), x, y, epochs=800, lr=0.1, loss="squared")
    z = np.column_stack([np.ones(len(x)), x.astype(np.float64)])
    beta = np.linalg.lstsq(z, y.astype(np.float64), rcond=None)[0]
    fitted = np.concatenate([model[0].bias.detach().numpy(), model[0].weight.detach().numpy().ravel()])
    np.testing.assert_allclose(fitted, beta, atol=2e-3)


def test_integer_weights_equal_repeated_rows():
    # identity: a unit of weight k is k copies of it (the weighted mean loss is the same function)
    x, y, _ = _logistic_data(300)
    counts = np.random.default_rng(2).integers(1, 4, size=len(y))
    weighted = fit_logit_model(build_model("mlp", 3, seed=0), x, y, weights=counts, epochs=50)
    repeated = fit_logit_model(build_model("mlp", 3, seed=0), np.repeat(x, counts, axis=0),
                               np.repeat(y, counts), epochs=50)
    np.testing.assert_allclose(_params(weighted), _params(repeated), atol=1e-6)


def test_inputs_are_not_mutated_and_may_be_read_only():
    x, y, _ = _logistic_data(200)
    x.setflags(write=False)
    y.setflags(write=False)
    before = (x.copy(), y.copy())
    fit_logit_model(build_model("linear", 3, seed=0), x, y, epochs=3)
    np.testing.assert_array_equal(x, before[0])
    np.testing.assert_array_equal(y, before[1])


def test_same_seed_same_weights_and_a_different_seed_differs():
    x, y, _ = _logistic_data(500)
    a = _params(fit_logit_model(build_model("mlp", 3, seed=0), x, y, epochs=30))
    b = _params(fit_logit_model(build_model("mlp", 3, seed=0), x, y, epochs=30))
    c = _params(fit_logit_model(build_model("mlp", 3, seed=1), x, y, epochs=30))
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-3


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"loss": "hinge"}, "unknown loss 'hinge'"),
    ({"weights": -np.ones(10)}, "weights must be"),
    ({"weights": np.ones(9)}, "weights must be"),
    ({"weights": np.full(10, np.nan)}, "weights must be"),
])
def test_bad_arguments_are_named(kwargs, match):
    x, y, _ = _logistic_data(10)
    with pytest.raises(ValueError, match=match):
        fit_logit_model(build_model("linear", 3, seed=0), x, y, epochs=1, **kwargs)


def test_a_failed_fit_still_hands_back_a_float32_model():
    model = build_model("linear", 3, seed=0)
    x, y, _ = _logistic_data(10)
    with pytest.raises(RuntimeError):
        fit_logit_model(model, x[:, :2], y, epochs=1)  # wrong input width fails inside the loop
    assert all(p.dtype == torch.float32 for p in model.parameters())


# -- threads and numeric defaults --------------------------------------------------------------------------


def test_pinned_threads_sets_every_pool_and_restores_it():
    from threadpoolctl import threadpool_info

    before_torch = torch.get_num_threads()
    before = {i["filepath"]: i["num_threads"] for i in threadpool_info()}
    with pinned_threads(1):
        assert torch.get_num_threads() == 1
        assert all(i["num_threads"] == 1 for i in threadpool_info())
    assert torch.get_num_threads() == before_torch
    after = {i["filepath"]: i["num_threads"] for i in threadpool_info()}
    assert all(after[k] == v for k, v in before.items() if k in after)


@pytest.mark.parametrize("n", [0, -1, 1.5, True])
def test_pinned_threads_refuses_a_bad_count(n):
    with pytest.raises(ValueError, match="thread count"), pinned_threads(n):
        pass


def test_numeric_defaults_are_set_and_a_users_choice_is_kept(monkeypatch):
    monkeypatch.delenv("MKL_CBWR", raising=False)
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx2")
    in_force = apply_numeric_defaults()
    assert in_force["MKL_CBWR"] == NUMERIC_DEFAULTS["MKL_CBWR"] == os.environ["MKL_CBWR"]
    assert in_force["ATEN_CPU_CAPABILITY"] == "avx2"


_TRAIN = """
import json, sys
import cowbench as cb, torch
scn = cb.make_scenario("cow"); data = scn.sample(seed=0)
m = cb.train_subject(scn, data, arch="mlp", seed=0)
print(json.dumps([float(v) for p in m.parameters() for v in p.detach().reshape(-1)]))
"""


def _weights_under(env: dict[str, str]) -> np.ndarray:
    full = {k: v for k, v in os.environ.items() if k not in ("MKL_CBWR", "ATEN_CPU_CAPABILITY")}
    out = subprocess.run([sys.executable, "-c", _TRAIN], env={**full, **env}, capture_output=True, text=True,
                         check=True, timeout=300)
    return np.array(json.loads(out.stdout))


def test_subject_weights_do_not_depend_on_the_cpu_kernels():
    # MKL_ENABLE_INSTRUCTIONS makes MKL take the AVX2 / SSE4.2 code paths another CPU would take; before float64
    # training and MKL_CBWR these moved the trained MLP's weights by up to 0.44
    here = _weights_under({})
    other = _weights_under({"MKL_ENABLE_INSTRUCTIONS": "SSE4_2"})
    np.testing.assert_array_equal(here, other)


# -- the masked ReLU backward of the training loops (issue 20): the same weights, bit for bit ----------------------


def _plain_loops(monkeypatch):
    """Every training loop with the swap replaced by a no-op: nn.ReLU's own backward (threshold_backward)."""
    import contextlib

    import cowbench.methods._edits as edits
    import cowbench.methods._robust as robust
    import cowbench.training as training

    def plain(model):
        return contextlib.nullcontext(model)

    for module in (training, robust, edits):
        monkeypatch.setattr(module, "mask_relu_grad", plain)


@pytest.mark.parametrize("arch", ["mlp", "cnn"])
def test_masked_relu_backward_trains_the_same_weights_bit_for_bit(monkeypatch, arch):
    rng = np.random.default_rng(3)
    d = 256 if arch == "cnn" else 3
    x = rng.normal(size=(600, d)).astype(np.float32)
    y = (x[:, 0] + 0.5 * rng.normal(size=600) > 0).astype(np.float32)
    import cowbench.training as training

    calls = []
    swapped_forward = training._MaskReLUModule.forward
    monkeypatch.setattr(training._MaskReLUModule, "forward",
                        lambda self, t: calls.append(1) or swapped_forward(self, t))
    fast = _params(fit_logit_model(build_model(arch, d, seed=1), x, y, epochs=60))
    assert len(calls) == 60 * (2 if arch == "cnn" else 1)  # the fast path ran: every ReLU, every step
    with monkeypatch.context() as m:
        _plain_loops(m)
        plain = _params(fit_logit_model(build_model(arch, d, seed=1), x, y, epochs=60))
    assert fast.tobytes() == plain.tobytes()
    assert not np.allclose(plain, _params(build_model(arch, d, seed=1)))  # it trained: the equality is not vacuous


def test_masked_relu_backward_is_relu_gradient_and_its_gradient():
    from cowbench.training import _MaskReLU

    x = torch.tensor([-2.0, -0.5, 0.0, 0.25, 3.0], dtype=torch.float64, requires_grad=True)
    g = torch.tensor([1.5, -2.0, 4.0, -0.75, 0.5], dtype=torch.float64, requires_grad=True)
    (ours,) = torch.autograd.grad(_MaskReLU.apply(x), x, g, create_graph=True)
    (aten,) = torch.autograd.grad(torch.relu(x), x, g, create_graph=True)
    assert torch.equal(ours, aten) and torch.equal(ours, torch.tensor([0.0, 0.0, 0.0, -0.75, 0.5], dtype=torch.float64))
    # differentiable again (IRMv1's penalty differentiates a gradient): d(grad)/d(g) is the same mask
    assert torch.equal(torch.autograd.grad(ours.sum(), g)[0], torch.autograd.grad(aten.sum(), g)[0])
    assert torch.autograd.gradcheck(_MaskReLU.apply, (torch.tensor([-1.0, 0.5, 2.0], dtype=torch.float64,
                                                                   requires_grad=True),))


def test_the_swap_is_undone_even_when_the_loop_raises_and_leaves_inplace_relus_alone():
    import pickle

    from cowbench.training import mask_relu_grad

    model = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.ReLU(), torch.nn.ReLU(inplace=True),
                                torch.nn.Linear(4, 1))
    with pytest.raises(RuntimeError, match="boom"), mask_relu_grad(model):
        assert type(model[1]) is not torch.nn.ReLU and isinstance(model[1], torch.nn.ReLU)  # hook points see a ReLU
        assert type(model[2]) is torch.nn.ReLU  # in place: not swapped (its input is overwritten)
        raise RuntimeError("boom")
    assert [type(m) for m in model] == [torch.nn.Linear, torch.nn.ReLU, torch.nn.ReLU, torch.nn.Linear]
    assert b"_MaskReLU" not in pickle.dumps(fit_logit_model(build_model("mlp", 2, seed=0), np.zeros((8, 2), np.float32),
                                                             np.array([0, 1] * 4, np.float32), epochs=2))
