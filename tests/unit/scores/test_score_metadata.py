"""Score metadata: every score states its possible range and chance level, and the decorator checks them."""

from __future__ import annotations

import math

import pytest

from cowbench.scores import Score, all_scores, score


def test_every_score_has_bounds_and_a_chance_inside_them():
    for s in all_scores():
        lo, hi = s.bounds
        assert lo < hi, s.name
        if s.chance is not None:
            assert lo <= s.chance <= hi, s.name


@pytest.mark.parametrize(("name", "bounds", "chance"), [
    ("world_cos", (-1.0, 1.0), 0.0), ("world_err", (0.0, math.inf), 1.0), ("model_err", (0.0, 1.0), 1.0),
    ("model_cos", (-1.0, 1.0), 0.0), ("edit_score", (-math.inf, math.inf), 0.0), ("acc_ood", (0.0, 1.0), None),
    ("residual_spurious", (0.0, math.inf), 1.0),
])
def test_declared_metadata(name, bounds, chance):
    s = {s.name: s for s in all_scores()}[name]
    assert s.bounds == bounds and s.chance == chance


def test_defaults_keep_old_declarations_working():
    def fn(ctx):
        """x."""
        return 0.0

    entry = Score("tmp", fn, "edit", True, False, "1", "x.")
    assert entry.bounds == (-math.inf, math.inf) and entry.chance is None


@pytest.mark.parametrize(("bounds", "chance"), [((1, 0), None), ((0, 1), 2.0)])
def test_decorator_rejects_bad_metadata(bounds, chance):
    with pytest.raises(ValueError, match="bounds"):
        score("tmp_bad_meta", track="edit", higher_is_better=True, bounds=bounds, chance=chance)
