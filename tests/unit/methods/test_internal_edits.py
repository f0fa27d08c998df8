"""Closed forms of the internals edit methods: leace, inlp, neuron_ablation, mean_diff_ablation, rank_one_edit,
and the controls (no_edit, random_direction_ablation, random_neuron_ablation).

Truth here is algebra (LEACE's zero cross-covariance, ROME's ``W' k = 0``, ``P d = 0`` for a projected-out
mean difference) or a hand-built network whose reliance is known exactly; tolerances are float32 rounding
where the identity is exact, and ``4 / sqrt(n)`` where a sample statistic stands in for a population one.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import cowbench as cb
from cowbench import surgery
from cowbench.access import Task
from cowbench.methods._internals import resolve_layer
from cowbench.methods.inlp import inlp_directions
from cowbench.methods.leace import leace_eraser
from cowbench.methods.mean_diff_ablation import mean_difference
from cowbench.methods.rank_one_edit import rome_projection

EDITS = ("leace", "inlp", "neuron_ablation", "mean_diff_ablation", "rank_one_edit")
CONTROLS = ("no_edit", "random_direction_ablation", "random_neuron_ablation")


def _task(name, scn, data, model):
    return Task(scn, data, model, cb.get_method(name).access, subject_config={"arch": "mlp"})


def _probe_r2(h: np.ndarray, z: np.ndarray) -> float:
    """In-sample R^2 of the least-squares probe of ``z`` from ``h`` (with intercept)."""
    hc, zc = h - h.mean(0), z - z.mean()
    coef = np.linalg.lstsq(hc, zc, rcond=None)[0]
    return float(1 - np.sum((zc - hc @ coef) ** 2) / np.sum(zc ** 2))


def _correlated_activations(n: int, rho: float, seed: int = 0):
    """A label feature, a concept feature and a nuisance, with corr(label, concept) set by ``rho``."""
    rng = np.random.default_rng(seed)
    y = rng.standard_normal(n)
    z = (rho * y + np.sqrt(1 - rho ** 2) * rng.standard_normal(n) > 0).astype(float)
    h = np.column_stack([y + 0.5 * rng.standard_normal(n), z + 0.5 * rng.standard_normal(n), rng.standard_normal(n),
                         np.zeros(n)])  # a dead unit: LEACE must whiten only where there is variance
    return h, z, y


# -- LEACE ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 2])
def test_leace_leaves_no_cross_covariance_and_a_probe_at_chance(k):
    rng = np.random.default_rng(1)
    n = 3000
    h, z1, _ = _correlated_activations(n, 0.8)
    h = h @ rng.standard_normal((4, 4)) * np.array([1, 1, 1, 0])  # mix the units, keep one dead
    z = np.column_stack([z1, h[:, 0] + rng.standard_normal(n)])[:, :k]
    assert _probe_r2(h, z[:, 0]) > 0.3  # decodable before: the check below can fail
    weight, bias, removed = leace_eraser(h, z)
    erased = h @ weight.T + bias
    cross = (erased - erased.mean(0)).T @ (z - z.mean(0)) / n
    assert np.abs(cross).max() < 1e-10
    for t in range(k):
        assert _probe_r2(erased, z[:, t]) < 1e-10
    assert removed.shape == (4, k)
    eraser = np.eye(4) - weight  # E = W^+ P W is a projection (idempotent), and the mean is kept
    assert np.allclose(eraser @ eraser, eraser, atol=1e-10)
    assert np.allclose(erased.mean(0), h.mean(0), atol=1e-10)


def test_leace_matches_the_concept_erasure_package():
    ce = pytest.importorskip("concept_erasure")
    h, z, _ = _correlated_activations(2000, 0.8)
    h = h[:, :3]  # the package whitens with a full-rank covariance
    fitter = ce.LeaceFitter.fit(torch.tensor(h), torch.tensor(z[:, None]))
    theirs = fitter.eraser(torch.tensor(h)).numpy()
    weight, bias, _ = leace_eraser(h, z)
    assert np.allclose(h @ weight.T + bias, theirs, atol=1e-6)


def test_leace_method_erases_grass_at_the_hidden_layer_of_the_mlp(cow, cow_data, mlp_subject):
    task = _task("leace", cow, cow_data, mlp_subject)
    out = cb.get_method("leace")().run(task)
    grass = task.concepts["grass"].to_numpy(dtype=np.float64)
    before = surgery.activations(mlp_subject, "hidden.0", task.concept_x)
    after = surgery.activations(out.edited, "hidden.0", task.concept_x)  # the point now reads after the hook
    def cross(h):
        return np.abs((h - h.mean(0)).T @ (grass - grass.mean())).max() / len(h)

    assert _probe_r2(before, grass) > 0.5
    assert cross(after) < 1e-5 * cross(before)  # zero in closed form, up to the float32 hook's rounding
    # the in-sample probe amplifies that rounding along near-dead units; a sample of n resolves R^2 of (4/sqrt(n))^2
    assert _probe_r2(after, grass) < (4 / np.sqrt(len(grass))) ** 2
    assert out.localized["point"] == "hidden.0"
    assert out.localized["unit_scores"].shape == (before.shape[1],)
    assert task.told == ["edit_target"]


# -- INLP ----------------------------------------------------------------------------------------------


def test_inlp_is_complete_when_the_concept_is_independent_of_the_label():
    n = 4000
    h, z, _ = _correlated_activations(n, 0.0)
    q = inlp_directions(h, z, n_iter=1, C=1.0)
    erased = h - (h - h.mean(0)) @ q @ q.T
    assert abs(q[0, 0]) < 4 / np.sqrt(n)  # the label feature is not touched
    assert _probe_r2(erased, z) < (4 / np.sqrt(n)) ** 2


def test_inlp_is_incomplete_when_the_concept_correlates_with_the_label():
    """Kumar, Tan & Sharma (2022): the concept's probe leans on the label's feature; projecting it out both
    takes label signal and leaves the concept linearly decodable (LEACE on the same data leaves nothing)."""
    n = 4000
    h, z, _ = _correlated_activations(n, 0.8)
    q = inlp_directions(h, z, n_iter=1, C=1.0)
    erased = h - (h - h.mean(0)) @ q @ q.T
    assert abs(q[0, 0]) > 4 / np.sqrt(n)
    assert np.sqrt(_probe_r2(erased, z)) > 4 / np.sqrt(n)
    weight, bias, _ = leace_eraser(h, z)
    assert _probe_r2(h @ weight.T + bias, z) < 1e-10


def test_inlp_rounds_stack_orthonormal_directions():
    h, z, _ = _correlated_activations(2000, 0.8)
    q = inlp_directions(h, z, n_iter=2, C=1.0)
    assert q.shape == (4, 2)
    assert np.allclose(q.T @ q, np.eye(2), atol=1e-10)


# -- mean difference and rank-one -----------------------------------------------------------------------


def test_mean_difference_projected_out_leaves_equal_class_means():
    h, z, _ = _correlated_activations(2000, 0.8)
    d = mean_difference(h, z)
    assert np.allclose(d, h[z == 1].mean(0) - h[z == 0].mean(0))
    hook = surgery.projection_hook(d, mean=h.mean(0))
    edited = hook.edit(torch.tensor(h, dtype=torch.float32)).double().numpy()
    assert np.abs(edited[z == 1].mean(0) - edited[z == 0].mean(0)).max() < 1e-5
    continuous = np.arange(10.0)
    assert np.allclose(mean_difference(np.eye(10), continuous), np.r_[-np.ones(5), np.ones(5)] / 5)


def test_rome_update_sends_the_key_to_zero_and_equals_leace_for_the_covariance_key():
    h, z, _ = _correlated_activations(3000, 0.8)
    h = h[:, :3]
    hc = h - h.mean(0)
    cov, sigma_hz = hc.T @ hc / len(h), hc.T @ (z - z.mean())[:, None] / len(h)
    key = np.array([[0.2], [1.0], [-0.3]])
    remove = rome_projection(key, cov, ridge=0.0)
    w = np.random.default_rng(0).standard_normal((5, 3))
    assert np.allclose((w - w @ remove) @ key, 0, atol=1e-10)
    weight, _, _ = leace_eraser(h, z)  # ROME with key Sigma_hz and C = Sigma_hh is LEACE
    assert np.allclose(np.eye(3) - rome_projection(sigma_hz, cov, ridge=0.0), weight, atol=1e-8)


def test_rank_one_edit_makes_the_reading_layer_ignore_the_key(cow, cow_data, mlp_subject):
    out = cb.get_method("rank_one_edit")().run(_task("rank_one_edit", cow, cow_data, mlp_subject))
    assert out.details["in_weights"]
    reader_out = surgery.activations(out.edited, "logit", cow_data.test_id.x[:200])
    key = out.localized["subspace"]
    h = surgery.activations(mlp_subject, "hidden.0", cow_data.test_id.x[:200])
    moved = surgery.forward_from(out.edited, "hidden.0", torch.tensor(h + key[:, 0], dtype=torch.float32))
    assert np.allclose(moved.detach().double().numpy(), reader_out.ravel(), atol=1e-4)  # output ignores the key


# -- neuron ablation on hand-built pair networks (reliance known exactly) --------------------------------


def _pair_network(polysemantic: bool) -> nn.Sequential:
    """Units ReLU(z), ReLU(-z) read with +1, -1 (= z): pairs for moo, tail and (monosemantic) grass.

    f = x_moo + x_tail + 2 (x_grass - 1/2): ace = (1, 1, 2, 0). Polysemantic: no grass pair; the moo and tail
    pairs read x_grass - 1/2 as well, so every unit that carries grass carries a cause.
    """
    rows = [[1, 0, 1, 0], [0, 1, 1, 0]] if polysemantic else [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 2, 0]]
    f = torch.tensor(rows, dtype=torch.float32)
    model = nn.Sequential(nn.Linear(4, 2 * len(rows)), nn.ReLU(), nn.Linear(2 * len(rows), 1), nn.Flatten(0))
    with torch.no_grad():
        model[0].weight.copy_(torch.cat([f, -f]))
        model[0].bias.copy_(torch.cat([-0.5 * f[:, 2], 0.5 * f[:, 2]]))
        model[2].weight.copy_(torch.tensor([[1.0] * len(rows) + [-1.0] * len(rows)]))
        model[2].bias.zero_()
    return model


def test_neuron_ablation_is_clean_on_monosemantic_units_and_fails_on_polysemantic_ones(cow, cow_data):
    mono = _pair_network(polysemantic=False)
    ace = cb.reliance(mono, cow, cow_data.test_id)
    assert ace["grass"] == pytest.approx(2.0, abs=1e-4)
    out = cb.get_method("neuron_ablation")(k=2).run(_task("neuron_ablation", cow, cow_data, mono))
    assert sorted(out.details["units"]) == [2, 5]  # the grass pair
    edited = cb.reliance(out.edited, cow, cow_data.test_id)
    assert edited["grass"] == pytest.approx(0.0, abs=1e-4)
    assert edited["moo"] == pytest.approx(1.0, abs=1e-4) and edited["tail"] == pytest.approx(1.0, abs=1e-4)

    poly = _pair_network(polysemantic=True)
    assert cb.reliance(poly, cow, cow_data.test_id)["grass"] == pytest.approx(2.0, abs=1e-4)
    for k in (1, 2, 3, 4):
        out = cb.get_method("neuron_ablation")(k=k).run(_task("neuron_ablation", cow, cow_data, poly))
        edited = cb.reliance(out.edited, cow, cow_data.test_id)
        # every unit carrying grass carries a cause in the same share: whatever share of grass an ablation
        # removes, it removes of the causes too (left + lost = 1 up to half-pair nonlinearity; clean would be 0)
        left = edited["grass"] / 2.0
        lost = (2.0 - edited["moo"] - edited["tail"]) / 2.0
        assert left + lost > 0.9, (k, edited)


def test_zero_and_mean_ablation_write_different_values(cow, cow_data, mlp_subject):
    outs = {mode: cb.get_method("neuron_ablation")(k=3, mode=mode).run(
        _task("neuron_ablation", cow, cow_data, mlp_subject)) for mode in ("zero", "mean")}
    units = outs["zero"].details["units"]
    assert units == outs["mean"].details["units"]
    for mode, out in outs.items():
        h = surgery.activations(out.edited, "hidden.0", cow_data.test_id.x[:50])[:, units]
        mean = surgery.activations(mlp_subject, "hidden.0", cow_data.train.x).mean(0)[units]
        assert np.allclose(h, 0.0 if mode == "zero" else mean, atol=1e-5)


# -- controls ----------------------------------------------------------------------------------------


def test_controls_are_marked_and_edits_are_not():
    for name in CONTROLS:
        assert cb.get_method(name).control is True
        assert "concept" not in cb.get_method(name).access  # a control reads no concept and no target
    for name in EDITS:
        assert cb.get_method(name).control is False


def test_no_edit_returns_the_subject_unchanged(cow, cow_data, mlp_subject):
    out = cb.get_method("no_edit")().run(_task("no_edit", cow, cow_data, mlp_subject))
    x = cow_data.test_id.x[:100]
    assert np.array_equal(surgery.activations(out.edited, "logit", x), surgery.activations(mlp_subject, "logit", x))


@pytest.mark.parametrize("name", ["random_direction_ablation", "random_neuron_ablation"])
def test_random_controls_depend_on_their_seed_only(cow, cow_data, mlp_subject, name):
    def run(seed):
        return cb.get_method(name)(k=3, random_state=seed).run(_task(name, cow, cow_data, mlp_subject))

    a, b, c = run(1), run(1), run(2)
    key = "subspace" if name == "random_direction_ablation" else "unit_scores"
    assert np.array_equal(a.localized[key], b.localized[key])
    assert not np.allclose(a.localized[key], c.localized[key])
    if name == "random_direction_ablation":
        assert a.localized["subspace"].shape == (32, 3)
    else:
        assert len(a.details["units"]) == 3


# -- layer choice -----------------------------------------------------------------------------------


def test_layer_defaults_and_refusals(mlp_subject, linear_subject, cow, cow_data):
    assert resolve_layer(mlp_subject, None) == "hidden.0"
    assert resolve_layer(linear_subject, None) == "input"
    assert resolve_layer(mlp_subject, "input") == "input"
    for bad in ("hidden.7", "logit"):
        with pytest.raises(ValueError, match="layer must be a hook point"):
            resolve_layer(mlp_subject, bad)
    out = cb.get_method("leace")().run(_task("leace", cow, cow_data, linear_subject))
    assert out.localized["point"] == "input"


def test_rank_one_edit_falls_back_to_a_hook_where_no_linear_layer_reads_the_point(cow, cow_data, mlp_subject):
    # hidden.0.pre is read by the ReLU, not by a weight layer: the same update goes in as an affine hook
    out = cb.get_method("rank_one_edit")(layer="hidden.0.pre").run(_task("rank_one_edit", cow, cow_data,
                                                                          mlp_subject))
    assert not out.details["in_weights"]
    hooks = [m for m in out.edited if isinstance(m, surgery.AffineHook)]
    assert len(hooks) == 1
    key = out.localized["subspace"][:, 0]
    h = surgery.activations(mlp_subject, "hidden.0.pre", cow_data.test_id.x[:200])
    # the hook sends the key to 0: moving the pre-activations along it changes nothing after the hook
    moved = hooks[0].edit(torch.tensor(h + key, dtype=torch.float32))
    same = hooks[0].edit(torch.tensor(h, dtype=torch.float32))
    assert np.allclose(moved.numpy(), same.numpy(), atol=1e-4)
    # and the edited model is the subject with that hook after the first weight layer
    x = cow_data.test_id.x[:200]
    expected = surgery.forward_from(mlp_subject, "hidden.0.pre", same)
    assert np.allclose(surgery.activations(out.edited, "logit", x).ravel(), expected.detach().numpy(), atol=1e-4)
