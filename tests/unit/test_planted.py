"""Planted networks: the logit is the closed form, reliance is (A, B, C), the unit truth is the construction,
the oracle edit scores 1 and no edit 0, and the truth never reaches a method."""

import numpy as np
import pytest

import cowbench as cb
from cowbench import surgery
from cowbench.access import Task
from cowbench.conformance import reachable, reachable_leaks
from cowbench.jobs import ReplicateSpec, execute, prepare
from cowbench.method import Method, MethodOutput
from cowbench.models import logits
from cowbench.planted import (
    PlantedSpec,
    PlantedTruth,
    build_planted,
    importances,
    planted_logit,
    planted_models,
    polysemantic_rows,
    superposition_embedding,
)
from cowbench.subject import SubjectConfig

SMALL = {"n_train": 300, "n_val": 100, "n_test": 1000}
PRESETS = ("planted_mono", "planted_half", "planted_poly", "planted_superposed", "planted_hidden",
           "planted_interaction")
LINEAR = ("planted_mono", "planted_half", "planted_poly", "planted_superposed")


@pytest.mark.parametrize("name", PRESETS)
def test_logit_is_the_closed_form(name):
    scn = cb.make_scenario(name, **SMALL)
    x = scn.sample(0).test_id.x
    subject = planted_models(scn)[0]
    want = planted_logit(PlantedSpec.from_scenario(scn), x)
    # float32 network: agreement to float32 rounding of the logit's scale, not to a tuned tolerance
    assert np.max(np.abs(logits(subject, x) - want)) < 1e-5 * (1 + np.abs(want).max())


def test_logit_is_a_moo_b_tail_c_grass_on_hand_inputs():
    scn = cb.make_scenario("planted_half", planted_moo=2.0, planted_tail=-0.5, planted_grass=3.0, **SMALL)
    subject = planted_models(scn)[0]
    col = {v: list(scn.feature_names).index(v) for v in ("moo", "tail", "grass", "sky")}
    x = np.zeros((4, 4))
    x[0, col["moo"]] = 1.0
    x[1, col["tail"]], x[1, col["sky"]] = 1.0, 5.0
    x[2, col["grass"]] = 1.0
    # float32 network whose readouts carry a cancelling random part: agreement to float32 rounding of the
    # largest term (readout x activation), not to a tuned tolerance
    w2 = surgery.reader(subject, "hidden.0").weight.detach().double().numpy()[0]
    h = surgery.activations(subject, "hidden.0", x)
    tol = 8 * np.finfo(np.float32).eps * (np.abs(h * w2).sum(1).max() + 1)
    np.testing.assert_allclose(logits(subject, x), [2.0 - 1.5, -0.5 - 1.5, 1.5, -1.5], atol=tol)


def test_the_planted_grass_pathway_is_centred_so_its_mean_ablation_is_the_oracle():
    scn = cb.make_scenario("planted_half", **SMALL)
    subject, oracle, _ = planted_models(scn)
    x = scn.sample(0).test_bal.x.copy()
    x[:, 2] = 0.5  # grass at its mean
    np.testing.assert_allclose(logits(subject, x), logits(oracle, x), atol=1e-5)


@pytest.mark.parametrize("name", LINEAR)
def test_reliance_is_a_b_c(name):
    scn = cb.make_scenario(name, planted_moo=1.5, planted_tail=-1.0, planted_grass=2.5, **SMALL)
    ace = cb.reliance(planted_models(scn)[0], scn, scn.sample(1).test_id)
    np.testing.assert_allclose([ace[v] for v in ("moo", "tail", "grass", "sky")], [1.5, -1.0, 2.5, 0.0], atol=1e-4)


def test_hidden_feature_is_invisible_to_ace_but_not_to_cr():
    scn = cb.make_scenario("planted_hidden", coef_hidden=1.0, **SMALL)
    split = scn.sample(0).test_id
    subject = planted_models(scn)[0]
    ace = cb.reliance(subject, scn, split)
    n = len(split)
    # ace[moo] = A + D E[sign(x_moo + x_sky)]: the mean of n signs, sd D / sqrt(n)
    assert abs(ace["moo"] - 1.0) < 4 / np.sqrt(n) and abs(ace["sky"]) < 4 / np.sqrt(n)
    assert cb.reliance(subject, scn, split, measure="cr")["sky"] > 0.3  # E|D(|a + s'| - |a + s|)| is O(D)


def test_interaction_reliance_follows_its_closed_form():
    scn = cb.make_scenario("planted_interaction", coef_interaction=2.0, **SMALL)
    split = scn.sample(0).test_id
    ace = cb.reliance(planted_models(scn)[0], scn, split)
    x_moo = split.x[:, scn.input_map["moo"]].astype(np.float64)
    # ace[grass] = C + G mean|x_moo| on the same units (do(grass=1) - do(grass=0), exact per unit)
    assert ace["grass"] == pytest.approx(4.0 + 2.0 * np.abs(x_moo).mean(), abs=1e-3)
    # ace[moo] = A + G mean((grass - 1/2) sign(x_moo)), up to the units whose x_moo lies within the slope's step
    grass, moo = split.concepts["grass"].to_numpy(), split.concepts["moo"].to_numpy()
    step = 0.1 * moo.std()
    want = 1.0 + 2.0 * np.mean((grass - 0.5) * np.sign(x_moo))
    assert abs(ace["moo"] - want) <= 2.0 * np.mean(np.abs(x_moo) < step) + 1e-4


@pytest.mark.parametrize(("p", "n_carriers", "width"), [(0.0, 4, 12), (0.5, 12, 24), (1.0, 8, 12)])
def test_unit_truth_matches_the_construction(p, n_carriers, width):
    scn = cb.make_scenario("cow_planted", polysemantic=p, planted_grass=2.5, **SMALL)
    subject, _, truth = planted_models(scn)
    g = list(scn.feature_names).index("grass")
    assert truth.carriers("hidden.0").shape == (width,) and truth.carriers("hidden.0").sum() == n_carriers
    w = surgery.reader(subject, "input").weight.detach().double().numpy()
    np.testing.assert_allclose(truth.loadings["hidden.0"], w, atol=1e-6)  # loadings are the first layer
    readout = surgery.reader(subject, "hidden.0").weight.detach().double().numpy()[0]
    # each unit's share of grass's logit coefficient is readout x loading; a pair's two units each hold its
    # share (one of them is active at a time), so the sum over units is 2 C whatever the split
    share = readout * truth.loadings["hidden.0"][:, g]
    assert share.sum() / 2 == pytest.approx(2.5, rel=1e-5)
    others = np.delete(np.abs(truth.loadings["hidden.0"]), g, axis=1).sum(1) > 0
    assert share[others].sum() / 2 / 2.5 == pytest.approx(p, abs=1e-5)  # units that also read a cause carry p


@pytest.mark.parametrize("p", [0.0, 0.3, 0.5, 1.0])
def test_polysemantic_rows_have_orthonormal_columns_and_share_p(p):
    for signs in ([False] * 3, [True, False, True]):
        r, blocks = polysemantic_rows(p, np.array(signs))
        np.testing.assert_allclose(r.T @ r, np.eye(3), atol=1e-12)
        mixed = blocks == 1
        np.testing.assert_allclose((r[mixed] ** 2).sum(0), [p] * 3, atol=1e-12)  # every variable alike
        assert np.all((np.abs(r[mixed]) > 0).sum(1) == 2) and np.all((np.abs(r[~mixed]) > 0).sum(1) == 1)


def test_superposition_no_unit_and_no_axis_is_one_variable():
    scn = cb.make_scenario("planted_superposed", **SMALL)
    truth = planted_models(scn)[2]
    load = truth.loadings["hidden.0"]
    assert np.linalg.matrix_rank(load) == 3 < 4  # four variables in three directions
    assert np.all((np.abs(load) > 1e-6).sum(axis=1) >= 2)  # every unit reads several variables
    assert np.all((np.abs(load) > 1e-6).sum(axis=0) >= 2)  # no variable sits on one axis
    gram = load.T @ load
    off = gram[~np.eye(4, dtype=bool)]
    assert np.all(np.abs(off) > 1e-3)  # every pair of variable directions is non-orthogonal


@pytest.mark.parametrize("m", [2, 3])
def test_superposition_embedding_reads_the_logit_exactly(m):
    coef = np.array([1.0, -2.0, 4.0, 0.0])
    emb = superposition_embedding(coef, m)
    np.testing.assert_allclose(emb @ emb.T, np.eye(m), atol=1e-12)
    np.testing.assert_allclose((emb @ coef) @ emb, coef, atol=1e-12)


def test_bad_knobs_are_refused():
    with pytest.raises(ValueError, match="polysemantic"):
        cb.make_scenario("cow_planted", polysemantic=0.5, superposition=2)
    with pytest.raises(ValueError, match="polysemantic"):
        cb.make_scenario("cow_planted", polysemantic=1.5)
    with pytest.raises(ValueError, match="superposition=1"):
        cb.make_scenario("cow_planted", superposition=1)
    with pytest.raises(ValueError, match="planted scenario"):
        cb.train_subject(cb.make_scenario("cow", **SMALL), None, arch="planted")


def test_hook_points_of_a_planted_network():
    subject = planted_models(cb.make_scenario("planted_mono", **SMALL))[0]
    assert list(surgery.hook_points(subject)) == ["input", "hidden.0.pre", "hidden.0", "logit"]


class _Edit(Method):
    """Test double: sets the hidden units it is given to fixed values (0 by default; none: no edit).

    References
    ----------
    None (a test double).
    """

    name = "planted_test_edit"
    family = "editing"
    access = frozenset({"pooled", "internals"})
    outputs = frozenset({"edit"})

    def __init__(self, *, units=(), values=None, random_state=None):
        self.units = units
        self.values = values
        self.random_state = random_state

    def run(self, task):
        model = task.model
        width = surgery.activations(model, "hidden.0", task.train.x[:1]).shape[1]
        values = 0.0 if self.values is None else np.array(self.values, dtype=np.float64)
        hook = surgery.unit_hook(width, list(self.units), values)
        return MethodOutput(edited=surgery.with_hook(model, "hidden.0", hook))


def _replicate(name, **knobs):
    scn = cb.make_scenario(name, **knobs)
    # the suite asks for a linear subject; the planted scenario's declaration wins
    return prepare(ReplicateSpec(scn.spec, 0, 0, SubjectConfig(arch="linear").to_dict()))


def _at_half_grass(rep):
    """Hidden activations of one input row with grass = 1/2 and every other variable 0."""
    x = np.zeros((1, len(rep.scenario.feature_names)))
    x[0, rep.scenario.input_map["grass"]] = 0.5
    return surgery.activations(rep.subject, "hidden.0", x)[0]


def test_the_scenario_declares_its_subject_and_the_oracle_edit_scores_one():
    rep = _replicate("planted_mono")
    assert rep.subject_config["arch"] == "planted" and rep.unit_truth is not None
    grass_units = np.flatnonzero(rep.unit_truth.carriers("hidden.0"))
    # grass's own units set to their values at grass = 1/2 (they read grass alone): the oracle itself, to
    # float32 rounding: exactly 1 and 0
    _, metrics, _ = execute(rep, _Edit(units=grass_units.tolist(), values=_at_half_grass(rep)[grass_units].tolist()), 0)
    assert metrics["edit_score"] == pytest.approx(1.0, abs=1e-9)
    assert metrics["residual_spurious"] == pytest.approx(0.0, abs=1e-5)
    assert metrics["causal_kept"] == pytest.approx(1.0, abs=1e-5)
    _, metrics, _ = execute(rep, _Edit(), 0)
    assert metrics["edit_score"] == pytest.approx(0.0, abs=1e-9)
    assert metrics["residual_spurious"] == pytest.approx(1.0, abs=1e-6)


def test_zero_ablating_grass_units_removes_grass_and_its_offsets_a_constant_away_from_the_oracle():
    # the offsets are no longer zero on grass's units (that was the v1 leak): zeroing them also removes the
    # constant they add, so the logit is the oracle's plus one constant, and grass's reliance is gone exactly
    rep = _replicate("planted_mono", **SMALL)
    units = np.flatnonzero(rep.unit_truth.carriers("hidden.0")).tolist()
    out = _Edit(units=units).run(Task(rep.scenario, rep.data, rep.subject, {"pooled", "internals"},
                                      subject_config=rep.subject_config))
    x = rep.data.test_bal.x
    gap = logits(out.edited, x) - logits(rep.oracle, x)
    assert np.ptp(gap) < 1e-5 * (1 + np.abs(gap).max())
    assert abs(cb.reliance(out.edited, rep.scenario, rep.data.test_id)["grass"]) < 1e-5


def test_ablating_grass_units_fails_when_they_are_polysemantic():
    rep = _replicate("planted_poly")
    grass_units = np.flatnonzero(rep.unit_truth.carriers("hidden.0"))
    _, metrics, _ = execute(rep, _Edit(units=grass_units.tolist(), values=_at_half_grass(rep)[grass_units].tolist()), 0)
    # every unit that reads grass reads moo or tail too: the units that go take half of each cause's
    # pathway with them (the mixed rows {grass, moo} and {grass, tail} of two each), so the causes move
    tol = 4 / np.sqrt(len(rep.data.test_id))
    assert abs(metrics["causal_kept"] - 1.0) > 0.1 + tol


def test_oracle_relies_on_nothing_spurious():
    for name in (*PRESETS, "planted_sparse"):
        rep = _replicate(name, **SMALL)
        ace = cb.reliance(rep.oracle, rep.scenario, rep.data.test_id)
        assert abs(ace["grass"]) < 1e-5, (name, ace)  # C = 0 and G = 0: the closed form


def _rounding_scale(models, x):
    """Float32 rounding scale of the logits of ``models`` on ``x``: ``8 eps32 (sum_k |w2_k h_k| + 1)`` over the
    models, at the row where it is largest. The readouts' cancelling random part makes the terms ``w2_k h_k`` of
    the last layer's sum up to ~15 times the logit (planted_poly, replicate 0: sum 113 against |logit| <= 8), so
    rounding follows that sum, not the logit."""
    total = 0.0
    for model in models:
        w2 = surgery.reader(model, "hidden.0").weight.detach().double().numpy()[0]
        total = total + np.abs(surgery.activations(model, "hidden.0", x) * w2).sum(1)
    return 8 * np.finfo(np.float32).eps * (np.max(total) + 1)


@pytest.mark.parametrize("name", ["planted_mono", "planted_half", "planted_poly"])
def test_removing_grass_direction_at_the_hidden_layer_is_the_oracle_at_every_polysemanticity(name):
    # An identity for every draw of the network (offsets, scales, readout noise, order: the replicate's subject
    # seed), not a sample statement. Each linear pair j (scale s_j, raw row R_j) has hidden.0 units
    # (s_j / |R_j|) (ReLU(y_j), ReLU(-y_j)), y_j = R_j . x + o_j |R_j|, and grass's loading g there is
    # (a_j, -a_j), a_j = s_j R_jg / |R_j|; so g'h = sum_j s_j^2 R_jg y_j / |R_j|^2 = K x_grass + const with
    # K = |g|^2 / 2, because the columns are orthogonal under the scales (sum_j s_j^2 R_ju R_jv / |R_j|^2 = 0).
    # The readout has w2 . g = 2 sum_j rho_j R_jg = 2 C (R' rho = c), so mean-ablating g's span moves the logit
    # by -(2C / |g|^2) g'(h - mean_train h) = -C (x_grass - mean_train x_grass) exactly: the subject's
    # C (grass - 1/2) goes and the oracle (the same draws with C = 0) plus C (mean_train grass - 1/2) is left.
    # The training mean enters both sides from the same sample, so there is no sampling error: the tolerance
    # is float32 rounding of the two networks' sums.
    rep = _replicate(name)
    subspace = rep.unit_truth.subspace("hidden.0")
    mean = surgery.activations(rep.subject, "hidden.0", rep.data.train.x).mean(0)
    edited = surgery.with_hook(rep.subject, "hidden.0", surgery.projection_hook(subspace, mean=mean))
    x = rep.data.test_bal.x
    tol = _rounding_scale([rep.subject, rep.oracle], x)
    c = rep.scenario.knobs["planted_grass"]
    shift = c * (rep.data.train.x[:, rep.scenario.input_map["grass"]].astype(np.float64).mean() - 0.5)
    assert abs(shift) > tol  # the shift is resolved: the check below fails without it
    np.testing.assert_allclose(logits(edited, x), logits(rep.oracle, x) + shift, rtol=0, atol=tol)
    # zero-ablation (no mean) also removes the offsets' constant: a constant away from the oracle
    edited = surgery.with_hook(rep.subject, "hidden.0", surgery.projection_hook(subspace))
    gap = logits(edited, x) - logits(rep.oracle, x)
    assert np.ptp(gap) < 2 * tol


def test_under_superposition_removing_grass_direction_also_moves_the_causes():
    rep = _replicate("planted_superposed")
    edited = surgery.with_hook(rep.subject, "hidden.0", surgery.projection_hook(rep.unit_truth.subspace("hidden.0")))
    ace = cb.reliance(edited, rep.scenario, rep.data.test_id)
    assert abs(ace["grass"]) < 1e-4  # grass's direction is gone ...
    assert abs(ace["moo"] - 1.0) + abs(ace["tail"] - 1.0) > 0.1  # ... and with it part of the causes'


def test_unit_truth_is_not_reachable_from_the_task():
    rep = _replicate("planted_mono")
    task = Task(rep.scenario, rep.data, rep.subject, {"pooled", "concept", "internals"},
                subject_config=rep.subject_config)
    assert reachable_leaks(task) == []
    found = [path for path, obj in reachable(task) if isinstance(obj, PlantedTruth | PlantedSpec)]
    assert found == []


def test_a_planted_replicate_id_does_not_depend_on_the_suite_subject():
    scn = cb.make_scenario("planted_mono", **SMALL)
    ids = {ReplicateSpec(scn.spec, 0, 0, SubjectConfig(**cfg).to_dict()).id
           for cfg in ({"arch": "linear"}, {"arch": "mlp", "hidden": 8}, {})}
    assert len(ids) == 1
    cow = cb.make_scenario("cow", **SMALL)  # a scenario that declares nothing keeps the suite's subject
    assert ReplicateSpec(cow.spec, 0, 0, SubjectConfig(arch="linear").to_dict()).subject["arch"] == "linear"


def test_an_edit_target_must_be_spurious():
    from cowbench.data import Truth

    with pytest.raises(ValueError, match="not spurious"):
        Truth(roles={"a": "causal", "g": "spurious"}, world_coef={}, link="probit", identifiable_with="pooled",
              identifiable_reason="", edit_target=("a",))


def test_a_trained_bottleneck_narrower_than_the_variables_is_a_subject_setting():
    # forced superposition in a trained subject: [subject] hidden = 2 < 4 observed variables
    scn = cb.make_scenario("cow", **SMALL)
    model = cb.train_subject(scn, scn.sample(0), arch="mlp", hidden=2, epochs=20)
    assert surgery.activations(model, "hidden.0", scn.sample(0).test_id.x[:3]).shape == (3, 2)


@pytest.mark.parametrize("name", (*PRESETS, "planted_sparse"))
def test_feature_directions_reproduce_the_pre_activations(name):
    scn = cb.make_scenario(name, **SMALL)
    subject, _, truth = planted_models(scn, seed=5)
    x = scn.sample(0).test_id.x
    directions = truth.feature_directions("hidden.0.pre")
    assert truth.feature_names == tuple(scn.feature_names)
    assert directions.shape == (len(scn.feature_names), surgery.activations(subject, "hidden.0", x[:1]).shape[1])
    bias = surgery.reader(subject, "input").bias.detach().double().numpy()
    pre = surgery.activations(subject, "hidden.0.pre", x)
    # float32 first layer: rounding of x @ W', relative to the inputs' and weights' scale
    np.testing.assert_allclose(pre, x.astype(np.float64) @ directions + bias, atol=1e-5 * (1 + np.abs(pre).max()))
    np.testing.assert_allclose(truth.feature_directions("input"), np.eye(len(scn.feature_names)))
    with pytest.raises(ValueError, match=r"hidden\.7"):
        truth.feature_directions("hidden.7")


def test_sparse_superposition_has_more_features_than_units():
    scn = cb.make_scenario("planted_sparse", **SMALL)
    subject, _, truth = planted_models(scn)
    directions = truth.feature_directions("hidden.0")
    n_features, width = directions.shape
    assert n_features == 8 and width == 6 and n_features > width
    assert np.linalg.matrix_rank(directions) == 3  # eight features in three directions
    x = scn.sample(0).train.x
    # nuisances are sparse inputs: exactly 0 with probability 0.9 (the causes too, before measurement noise)
    for v in ("sky", "sky2", "sky5"):
        zero = np.mean(x[:, scn.input_map[v]] == 0)
        assert abs(zero - 0.9) < 4 * np.sqrt(0.9 * 0.1 / len(x))
    # the label and the logit still follow A moo + B tail + C (grass - 1/2): the nuisances have coefficient 0
    test = scn.sample(0).test_id.x
    np.testing.assert_allclose(logits(subject, test), planted_logit(PlantedSpec.from_scenario(scn), test),
                               atol=1e-5 * (1 + np.abs(logits(subject, test)).max()))
    ace = cb.reliance(subject, scn, scn.sample(0).test_id)
    assert abs(ace["sky3"]) < 1e-4 and ace["grass"] == pytest.approx(4.0, abs=1e-4)


def test_feature_importance_sets_the_embedding_norms_by_a_drawn_order():
    scn = cb.make_scenario("planted_sparse", **SMALL)
    spec = PlantedSpec.from_scenario(scn, seed=3)
    w = importances(spec)
    assert sorted(w.tolist()) == pytest.approx(sorted(0.8 ** np.arange(8)))  # q^0, ..., q^7
    assert not np.allclose(importances(PlantedSpec.from_scenario(scn, seed=4)), w)  # the order is drawn
    flat = PlantedSpec.from_scenario(cb.make_scenario("planted_sparse", feature_importance=1.0, **SMALL), seed=3)
    assert np.all(importances(flat) == 1.0)


@pytest.mark.parametrize(("knobs", "match"), [
    ({"superposition": 4}, r"superposition=4 is invalid: allowed 0 or 2 to 3"),
    ({"superposition": 8, "n_nuisance": 5}, r"superposition=8 is invalid: allowed 0 or 2 to 7"),
    ({"n_nuisance": 0}, r"n_nuisance=0 is invalid: allowed"),
    ({"sparsity": 1.0}, r"sparsity=1.0 is invalid: allowed"),
    ({"feature_importance": 0.0}, r"feature_importance=0.0 is invalid: allowed"),
    ({"feature_importance": 1.5}, r"feature_importance=1.5 is invalid: allowed"),
])
def test_bad_superposition_knobs_name_the_knob_and_the_allowed_range(knobs, match):
    with pytest.raises(ValueError, match=match):
        cb.make_scenario("cow_planted", **knobs)


def test_each_seed_draws_a_network_and_every_draw_computes_the_same_logit():
    scn = cb.make_scenario("planted_mono", **SMALL)
    x = scn.sample(0).test_id.x
    a, b = planted_models(scn, seed=1)[0], planted_models(scn, seed=2)[0]
    wa, wb = (surgery.reader(m, "input").weight.detach().numpy() for m in (a, b))
    assert not np.allclose(wa, wb)  # another order, other norms and offsets ...
    np.testing.assert_allclose(logits(a, x), logits(b, x), atol=1e-5 * (1 + np.abs(logits(a, x)).max()))  # same map
    again = planted_models(scn, seed=1)[0]
    assert np.array_equal(surgery.reader(again, "input").weight.detach().numpy(), wa)  # deterministic
    default = [surgery.reader(planted_models(scn)[0], "input").weight.detach().numpy() for _ in range(2)]
    assert np.array_equal(*default)  # no seed: one derived from the scenario


def test_the_construction_places_weights_by_name_not_by_column_order():
    from dataclasses import replace

    scn = cb.make_scenario("planted_interaction", hidden_feature=1, **SMALL)
    spec = PlantedSpec.from_scenario(scn, seed=0)
    order = [2, 0, 3, 1]  # grass, moo, sky, tail
    shuffled = replace(spec, variables=tuple(spec.variables[i] for i in order))
    x = scn.sample(0).test_id.x
    model, truth = build_planted(shuffled)
    np.testing.assert_allclose(logits(model, x[:, order]), planted_logit(spec, x),
                               atol=1e-5 * (1 + np.abs(planted_logit(spec, x)).max()))
    assert truth.feature_names == shuffled.variables


def test_no_weight_points_at_grass_in_the_v1_way():
    # v1: the first-layer bias was -W[:, grass] / 2 on the linear units (cosine 1 with grass's loading column)
    for name in LINEAR:
        scn = cb.make_scenario(name, **SMALL)
        cosines = []
        for seed in range(20):
            subject, _, truth = planted_models(scn, seed=seed)
            b = surgery.reader(subject, "input").bias.detach().double().numpy()
            col = truth.loadings["hidden.0"][:, scn.input_map["grass"]]
            cosines.append(abs(b @ col) / (np.linalg.norm(b) * np.linalg.norm(col)))
        assert max(cosines) < 0.99, (name, max(cosines))
