"""Property tests over the knob space of every registered scenario family (hypothesis).

Every valid combination gives finite arrays of the stated shapes, dtypes and roles, or a ValueError that
names a knob (cross-knob constraints); every out-of-range value gives a ValueError naming its knob.
Sizes are kept small so each example is fast; hypothesis' deadline catches a hang.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cowbench as cb
from cowbench.data import ROLES
from cowbench.registries import SCENARIOS

SIZE_KNOBS = {"n_train": (10, 60), "n_val": (10, 30), "n_test": (10, 60)}
FAMILIES = SCENARIOS.names()


def valid(knob) -> st.SearchStrategy:
    kind, *rest = knob.domain
    if knob.name in SIZE_KNOBS:
        return st.integers(*SIZE_KNOBS[knob.name])
    if kind == "real":
        low, high, open_low = rest
        return st.floats(low, high, allow_nan=False, exclude_min=open_low)
    if kind == "integer":
        low, high = rest
        return st.integers(low, min(high, low + 6))  # counts beyond a few add time, not coverage
    if kind == "real_tuple":
        low, high, min_len, max_len = rest
        return st.lists(st.floats(low, high, allow_nan=False), min_size=min_len, max_size=min(max_len, 4)).map(tuple)
    if kind == "choice":
        return st.sampled_from(rest[0])
    raise AssertionError(f"knob {knob.name} has no domain")


def invalid(knob) -> st.SearchStrategy:
    kind, *rest = knob.domain
    if kind in ("real", "integer"):
        low, high = rest[0], rest[1]
        return st.sampled_from([low - 1, high + 1, float("nan"), "text", None])
    if kind == "real_tuple":
        low, high, _, max_len = rest
        return st.sampled_from([(), (high + 1,), (low - 1, low), tuple([low] * (max_len + 1)), "text"])
    return st.sampled_from(["no such option", 3, None])


@pytest.mark.parametrize("family", FAMILIES)
def test_every_knob_declares_a_domain_and_a_valid_default(family):
    fam = SCENARIOS.get(family)
    for knob in fam.knobs.values():
        assert knob.domain, knob.name
        assert knob.validate(knob.default) == knob.default


@pytest.mark.parametrize("family", FAMILIES)
@settings(max_examples=15, deadline=20_000, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_valid_knobs_give_finite_arrays_or_name_the_conflict(family, data):
    fam = SCENARIOS.get(family)
    knobs = {name: data.draw(valid(k), label=name) for name, k in fam.knobs.items()
             if data.draw(st.booleans(), label=f"set {name}") or name in SIZE_KNOBS}
    try:
        scn = cb.make_scenario(family, **knobs)
    except ValueError as exc:  # a cross-knob constraint: the message must name a knob of the family
        assert any(name in str(exc) for name in fam.knobs), str(exc)
        return
    dataset = scn.sample(data.draw(st.integers(0, 2**31 - 1), label="seed"))
    d = len(scn.feature_names)
    for name in ("train", "val", "test_id", "test_ood"):
        split = dataset.split(name)
        n = len(split)
        assert split.x.shape == (n, d) and split.x.dtype == np.float32 and np.isfinite(split.x).all()
        assert split.y.shape == (n,) and np.isfinite(split.y).all()
        assert split.env.shape == split.group.shape == (n,)
        assert np.isfinite(split.concepts.to_numpy(dtype=float)).all()
    assert set(scn.truth.roles.values()) <= set(ROLES)
    if scn.truth.world_defined:
        assert set(scn.truth.world_coef) == set(scn.variables)
        assert all(np.isfinite(v) for v in scn.truth.world_coef.values())
    else:  # an undefined truth says why and holds no coefficients
        assert scn.truth.world_undefined and not scn.truth.world_coef


@pytest.mark.parametrize("family", FAMILIES)
@settings(max_examples=20, deadline=5_000)
@given(data=st.data())
def test_invalid_values_raise_a_value_error_naming_the_knob(family, data):
    fam = SCENARIOS.get(family)
    name = data.draw(st.sampled_from(sorted(fam.knobs)), label="knob")
    bad = data.draw(invalid(fam.knobs[name]), label="value")
    with pytest.raises(ValueError, match=name):
        cb.make_scenario(family, **{name: bad})
