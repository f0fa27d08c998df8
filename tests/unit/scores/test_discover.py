"""Discovery scores (disc_mmcs, disc_precision, disc_f, disc_recall90) attacked: the truth scores 1, a huge random
dictionary buys recall but not the primary, the input layout and trained subjects are not scored."""

from types import SimpleNamespace

import numpy as np
import pytest

from cowbench.method import MethodOutput
from cowbench.scores import Missing
from cowbench.scores.discover import disc_f, disc_mmcs, disc_precision, disc_recall90, mmcs, true_directions


class _Truth:
    """A stand-in for `PlantedTruth` with explicit feature directions at one hidden point."""

    def __init__(self, directions: np.ndarray, point: str = "hidden.0.pre"):
        self._f = directions
        self.loadings = {"input": np.eye(directions.shape[1]), point: directions.T}
        self.linear = {}

    def feature_directions(self, point):
        return self._f


def _ctx(found, truth, point="hidden.0.pre"):
    out = MethodOutput(discovered=None if found is None else {"point": point, "directions": found})
    return SimpleNamespace(output=out, unit_truth=truth)


def _features(n=6, width=10, seed=0):
    rng = np.random.default_rng(seed)
    f = rng.standard_normal((n, width))
    return f / np.linalg.norm(f, axis=1, keepdims=True)


def test_truth_scores_one_in_any_order_sign_and_scale():
    f = _features()
    found = -3.0 * f[::-1]  # reordered, sign-flipped, rescaled: still the same directions
    ctx = _ctx(found, _Truth(f))
    for s in (disc_mmcs, disc_precision, disc_f, disc_recall90):
        assert s(ctx) == pytest.approx(1.0)


def test_half_the_features_halves_recall_not_precision():
    f = _features(n=6, width=10)
    orth = np.linalg.qr(np.random.default_rng(3).standard_normal((10, 10)))[0].T
    truth = _Truth(orth[:6])
    ctx = _ctx(orth[:3], truth)
    assert disc_recall90(ctx) == pytest.approx(0.5)
    assert disc_mmcs(ctx) == pytest.approx(0.5, abs=1e-12)  # the three missing ones are orthogonal to all found
    assert disc_precision(ctx) == pytest.approx(1.0)
    assert disc_f(ctx) == pytest.approx(2 * 0.5 / 1.5)
    assert f.shape == (6, 10)


def test_a_huge_random_dictionary_wins_recall_but_not_the_primary():
    f = _features(n=4, width=5)
    rng = np.random.default_rng(1)
    many = rng.standard_normal((2000, 5))
    truth = _Truth(f)
    huge = _ctx(many, truth)
    exact = _ctx(f, truth)
    assert disc_mmcs(huge) > 0.9  # in 5 dimensions 2000 random directions come close to anything
    assert disc_precision(huge) < 0.8
    assert disc_f(huge) < disc_f(exact) - 0.2


def test_constant_and_zero_directions_score_low():
    f = _features(n=6, width=10)
    truth = _Truth(f)
    assert disc_f(_ctx(np.zeros((3, 10)), truth)) == 0.0  # zero directions: cosine 0 with everything
    one = np.tile(f[0], (20, 1))  # the same direction twenty times
    assert disc_recall90(_ctx(one, truth)) == pytest.approx(1 / 6)


def test_not_scored_at_input_nor_without_truth_nor_on_bad_shapes():
    f = _features(n=3, width=4)
    at_input = disc_f(_ctx(np.eye(4), _Truth(f), point="input"))
    assert isinstance(at_input, Missing) and "input layout" in at_input.reason
    trained = disc_f(_ctx(f, None))
    assert isinstance(trained, Missing) and "planted" in trained.reason
    assert isinstance(disc_f(_ctx(f[:, :3], _Truth(f))), Missing)  # wrong width
    assert isinstance(disc_f(_ctx(np.full((2, 4), np.nan), _Truth(f))), Missing)
    assert isinstance(disc_f(_ctx(f, _Truth(f), point="hidden.7")), Missing)
    assert disc_f(_ctx(None, _Truth(f))) is None  # no output: a plain absence


def test_random_directions_match_the_closed_form_chance_of_one_direction():
    # one random direction against one fixed feature in w dimensions: E cos^2 = 1/w exactly
    rng = np.random.default_rng(0)
    w = 8
    f = np.eye(w)[:1]
    cos2 = np.array([mmcs(f, rng.standard_normal((1, w))) ** 2 for _ in range(4000)])
    assert abs(cos2.mean() - 1 / w) < 4 * cos2.std() / np.sqrt(cos2.size)


def test_true_directions_fall_back_on_linear_loading_columns():
    loadings = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 2.0], [0.0, 5.0]])  # 4 units, 2 variables
    truth = SimpleNamespace(loadings={"input": np.eye(2), "hidden.0.pre": loadings},
                            linear={"hidden.0.pre": np.array([True, True, True, False])})
    f = true_directions(truth, "hidden.0.pre")
    expected = np.array([[1.0, -1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]])
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(f, expected)  # the even unit (not linear) gives no fixed direction


def test_hidden_match_is_one_for_the_hidden_units_read_as_the_network_reads_them_and_low_for_the_controls():
    import cowbench as cb
    from cowbench import surgery
    from cowbench.jobs import ReplicateSpec, prepare
    from cowbench.scores.context import ScoreContext
    from cowbench.scores.discover import disc_hidden_match
    from cowbench.subject import SubjectConfig

    scn = cb.make_scenario("planted_hidden")
    rep = prepare(ReplicateSpec(scn.spec, 0, 0, SubjectConfig.from_mapping({}).to_dict()))
    truth = rep.unit_truth
    load = truth.loadings["hidden.0"]
    names = list(truth.variables)
    hidden = ~truth.linear["hidden.0"] & (np.abs(load[:, names.index("sky")]) > 0)
    assert hidden.sum() == 4  # two pairs compute max(|moo + sky|, tau)
    w1 = next(m for m in rep.subject if hasattr(m, "weight")).weight.detach().double().numpy()
    # unit k's activation is (|w1_k| / sqrt 2) ReLU(+-(x_moo + x_sky)/sqrt 2 + t): dividing by its gain and
    # summing the four gives 2 max(|x_moo + x_sky|/sqrt 2, t) + 2 t, an affine function of the feature
    ideal = np.where(hidden, 1.0 / np.linalg.norm(w1, axis=1), 0.0)

    def match(directions, point="hidden.0"):
        out = MethodOutput(discovered={"point": point, "directions": directions})
        ctx = ScoreContext(rep.scenario, rep.data, out, frozenset({"pooled", "internals"}), rep.subject,
                           rep.oracle, dict(rep.base_ace), unit_truth=truth)
        return disc_hidden_match(ctx)

    assert match(ideal[None, :]) == pytest.approx(1.0, abs=1e-6)
    width = load.shape[0]
    assert match(np.eye(width)) < 0.9  # no single unit is the feature
    # at the pre-activations every direction is linear in the inputs: an even feature is uncorrelated with it
    rng = np.random.default_rng(0)
    n = len(rep.data.test_id)
    assert match(rng.standard_normal((50, width)), point="hidden.0.pre") < 4 / np.sqrt(n)  # max of 50 nulls
    assert match(np.eye(width), point="hidden.0") is not None
    h = surgery.activations(rep.subject, "hidden.0", rep.data.test_id.x)
    assert h.shape == (n, width)
