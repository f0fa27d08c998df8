"""Renderings: shapes, intervention consistency, truth invariance, the rotation identity and image regions."""

import hashlib

import numpy as np
import pytest

import cowbench as cb
from cowbench.errors import InputError
from cowbench.generators.knobs import choice
from cowbench.generators.renderings import (
    ImageRendering,
    MLPRendering,
    RotationRendering,
    SuperpositionRendering,
)

U32 = 2.0**-24  # unit roundoff of float32
OBSERVED = ("moo", "tail", "grass", "sky")
DIMS = {"identity": 4, "rotation": 4, "superposition": 2, "mlp": 16, "image": 256}
SMALL = {"n_train": 300, "n_val": 50, "n_test": 400}
# the default cow data of seed 3 before renderings existed (identity must stay bit-identical)
DEFAULT_CHECKSUM_SEED3 = "327da22ca5782f8ebb593956e5a4f499dbe8d1f460bfb6ced747c10910e19214"


def _scn(rendering, **knobs):
    return cb.make_scenario("cow", rendering=rendering, **{**SMALL, **knobs})


def _held(split):
    return {v: split.concepts[v].to_numpy(dtype=np.float64) for v in OBSERVED}


@pytest.mark.parametrize("rendering", list(DIMS))
def test_every_split_is_float32_finite_with_the_rendering_dimension(rendering):
    scn = _scn(rendering)
    data = scn.sample(0)
    assert scn.rendering == rendering
    assert len(scn.feature_names) == DIMS[rendering]
    assert (scn.input_map is None) == (rendering != "identity")
    for name in ("train", "val", "test_id", "test_ood"):
        x = data.split(name).x
        assert x.shape == (len(data.split(name)), DIMS[rendering]) and x.dtype == np.float32
        assert np.isfinite(x).all()


def _four_split_checksum(data) -> str:
    """Dataset.checksum as it was before test_bal (a fifth split) was added: the four original splits."""
    h = hashlib.sha256()
    for name in ("train", "val", "test_id", "test_ood"):
        h.update(data.split(name).checksum().encode())
    return h.hexdigest()


def test_identity_default_is_bit_identical_to_before_renderings():
    assert _four_split_checksum(cb.make_scenario("cow").sample(3)) == DEFAULT_CHECKSUM_SEED3
    assert _four_split_checksum(cb.make_scenario("cow", rendering="identity").sample(3)) == DEFAULT_CHECKSUM_SEED3


@pytest.mark.parametrize("rendering", list(DIMS))
def test_intervening_with_the_observed_values_re_renders_identical_inputs(rendering):
    scn = _scn(rendering)
    split = scn.sample(1).train
    for do in (_held(split), {"grass": _held(split)["grass"]}, {}):
        again = scn.intervene(split, do)
        assert again.x.tobytes() == split.x.tobytes()
    # a real intervention does change the inputs, so the check above is not vacuous
    assert not np.array_equal(scn.intervene(split, {**_held(split), "sky": _held(split)["sky"] + 1}).x, split.x)


def test_the_truth_and_the_variables_do_not_depend_on_the_rendering():
    base = _scn("identity")
    base_data = base.sample(2)
    for rendering in DIMS:
        scn = _scn(rendering)
        assert scn.truth == base.truth
        data = scn.sample(2)
        for name in ("train", "test_ood"):
            # variable noise is drawn before the rendering's, so the units are the same ones
            assert data.split(name).concepts.equals(base_data.split(name).concepts)
            assert np.array_equal(data.split(name).y, base_data.split(name).y)


@pytest.mark.parametrize("d_out", [4, 7])
def test_rotation_has_orthonormal_rows_and_preserves_norms(d_out):
    rend = RotationRendering(OBSERVED, {}, seed=5, d_out=d_out)
    q = rend.matrix
    assert q.shape == (4, d_out)
    np.testing.assert_allclose(q @ q.T, np.eye(4), rtol=0, atol=1e-10)
    if d_out == 4:
        np.testing.assert_allclose(q.T @ q, np.eye(4), rtol=0, atol=1e-10)
    v = np.random.default_rng(0).standard_normal((1000, 4))
    values = dict(zip(OBSERVED, v.T, strict=True))
    x = rend.render(values, rend.draw_noise(np.random.default_rng(1), 1000), {})
    # only float32 rounding of each coordinate (relative 2^-24) separates the norms
    np.testing.assert_allclose(np.linalg.norm(x.astype(np.float64), axis=1), np.linalg.norm(v, axis=1),
                               rtol=2 * U32, atol=0)
    np.testing.assert_allclose(np.linalg.norm(v @ q, axis=1), np.linalg.norm(v, axis=1), rtol=1e-12, atol=0)


def test_linear_reliance_on_rotation_is_the_rotated_weight():
    # logit = w.x + b with x = z Q, so d logit / d v_j = (Q w)_j exactly, for every unit; a binary
    # variable moved from 0 to 1 changes the logit by (Q w)_j as well.
    scn = _scn("rotation", render_dim=6)
    data = scn.sample(0)
    model = cb.train_subject(scn, data, arch="linear", seed=0)
    w = model[0].weight.detach().double().numpy().ravel()
    b = float(model[0].bias.detach().double())
    q = scn.scm.rendering.matrix
    expected = q @ w
    got = cb.reliance(model, scn, data.test_id)
    split = data.test_id
    held = _held(split)
    # float32 error bound: x is rounded (2^-24 relative) and the logit is a (d+1)-term float32 sum, so
    # |error of one logit| <= (d + 2) u (sum_i |w_i x_i| + |b|) <= (d + 2) u (|w| |x| + |b|) (|x| = |z|, Q has
    # orthonormal rows); the reliance divides a difference of two logits by 2h (h = 0.1 sd, or 1/2 for binary).
    d = len(w)
    for j, v in enumerate(OBSERVED):
        h = 0.5 if scn.kind(v) == "binary" else 0.1 * float(np.std(held[v]))
        norm_x = float(np.max(np.linalg.norm(split.x.astype(np.float64), axis=1))) + 2 * h
        tol = 2 * (d + 2) * U32 * (np.linalg.norm(w) * norm_x + abs(b)) / (2 * h)
        assert abs(got[v] - expected[j]) <= tol, (v, got[v], expected[j], tol)
        assert abs(expected[j]) > 10 * tol  # the identity is checked on weights far above the float noise


def test_superposition_directions_have_unit_norm_and_dimension_below_the_variables():
    rend = SuperpositionRendering(OBSERVED, {}, seed=0, d_out=3)
    assert rend.matrix.shape == (4, 3)
    np.testing.assert_allclose(np.linalg.norm(rend.matrix, axis=1), 1.0, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="d_out < 4"):
        SuperpositionRendering(OBSERVED, {}, seed=0, d_out=4)


def test_fixed_maps_depend_only_on_their_seed():
    a, b = MLPRendering(OBSERVED, {}, 3, d_out=5, hidden=8), MLPRendering(OBSERVED, {}, 3, d_out=5, hidden=8)
    c = MLPRendering(OBSERVED, {}, 4, d_out=5, hidden=8)
    assert np.array_equal(a.w1, b.w1) and np.array_equal(a.w2, b.w2)
    assert not np.array_equal(a.w1, c.w1)
    assert np.array_equal(_scn("mlp").sample(0).train.x, _scn("mlp").sample(0).train.x)


def test_image_regions_are_disjoint_and_each_variable_changes_only_its_region():
    scn = _scn("image")
    split = scn.sample(0).test_id
    regions = scn.scm.rendering.regions
    assert set(regions) == set(OBSERVED)
    flat = np.concatenate(list(regions.values()))
    assert len(np.unique(flat)) == len(flat)  # disjoint
    held = _held(split)
    for v in OBSERVED:
        moved = 1.0 - held[v] if scn.kind(v) == "binary" else held[v] + 1.0
        x = scn.intervene(split, {**held, v: moved}).x
        changed = np.flatnonzero(np.any(x != split.x, axis=0))
        assert changed.size > 0, v
        assert set(changed) <= set(regions[v]), (v, sorted(set(changed) - set(regions[v])))
        outside = np.setdiff1d(np.arange(x.shape[1]), regions[v])
        assert x[:, outside].tobytes() == split.x[:, outside].tobytes()


def test_image_rendering_is_generic_in_variable_names_and_checks_attributes():
    rend = ImageRendering([("a", "top_band"), ("b", "blob")], {}, seed=0, size=12, pixel_noise=0.0)
    values = {"a": np.array([0.0, 1.0]), "b": np.array([0.0, 0.0])}
    x = rend.render(values, rend.draw_noise(np.random.default_rng(0), 2), {})
    assert x.shape == (2, 144) and x.dtype == np.float32
    top = rend.regions["a"]
    assert np.all(x[0, top] == 0) and np.all(x[1, top] >= 0.5)  # texture in [0.5, 1] times the value
    with pytest.raises(ValueError, match="attributes"):
        ImageRendering([("a", "blob"), ("b", "blob")], {}, seed=0)
    with pytest.raises(ValueError, match="attributes"):
        ImageRendering([("a", "grass")], {}, seed=0)


@pytest.mark.parametrize(("knobs", "message"), [
    ({"rendering": "pixels"}, "knob rendering='pixels' is invalid: allowed one of 'identity'"),
    ({"rendering": 3}, "knob rendering=3 is invalid"),
    ({"render_dim": 4}, "render_dim=4 is invalid: the identity rendering has no dimension"),
    ({"rendering": "image", "render_dim": 16}, "render_dim=16 is invalid"),
    ({"rendering": "rotation", "render_dim": 3}, "render_dim=3 is invalid: allowed an integer in \\[4, 4096\\]"),
    ({"rendering": "superposition", "render_dim": 4}, "render_dim=4 is invalid: allowed an integer in \\[1, 3\\]"),
    ({"render_dim": -1}, "render_dim=-1 is invalid"),
])
def test_bad_rendering_knobs_raise_naming_the_knob(knobs, message):
    with pytest.raises(InputError, match=message):
        cb.make_scenario("cow", **knobs)


def test_render_dim_sets_the_input_dimension():
    for rendering, dim in (("rotation", 9), ("superposition", 1), ("mlp", 3)):
        assert _scn(rendering, render_dim=dim).sample(0).val.x.shape[1] == dim


def test_choice_knob():
    knob = choice("colour", "red", ("red", "blue"), "a colour")
    assert knob.default == "red" and knob.validate("blue") == "blue"
    for bad in ("green", 1, None, "Red"):
        with pytest.raises(InputError, match="one of 'red', 'blue'"):
            knob.validate(bad)
    with pytest.raises(ValueError, match="default"):
        choice("colour", "green", ("red", "blue"), "a colour")
