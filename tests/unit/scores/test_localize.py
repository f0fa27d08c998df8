"""Localization scores (loc_auroc, loc_overlap) and other_spurious_ratio, attacked: truth -> 1, complement or
reversal -> 0, random -> the closed-form chance level, and missing with a reason where no truth exists."""

import numpy as np
import pytest
import torch

import cowbench as cb
from cowbench import surgery
from cowbench.jobs import ReplicateSpec, execute, prepare
from cowbench.method import Method, MethodOutput, Real
from cowbench.scores.localize import auroc, subspace_overlap
from cowbench.subject import SubjectConfig

SMALL = {"n_train": 300, "n_val": 100, "n_test": 500}


def test_auroc_perfect_reversed_tied():
    pos = np.array([False, False, True, True])
    assert auroc(np.array([0.0, 1.0, 2.0, 3.0]), pos) == 1.0
    assert auroc(np.array([3.0, 2.0, 1.0, 0.0]), pos) == 0.0
    assert auroc(np.zeros(4), pos) == 0.5  # ties count 1/2
    assert auroc(np.array([0.0, 2.0, 2.0, 3.0]), pos) == 0.875  # one positive-negative tie out of 4 pairs


def test_auroc_of_random_scores_is_one_half():
    rng = np.random.default_rng(0)
    pos = np.arange(20) < 6
    draws = [auroc(rng.standard_normal(20), pos) for _ in range(2000)]
    # AUROC of random scores: mean 1/2, variance (n_pos + n_neg + 1) / (12 n_pos n_neg) (Mann-Whitney)
    sd = np.sqrt((6 + 14 + 1) / (12 * 6 * 14))
    assert abs(np.mean(draws) - 0.5) < 4 * sd / np.sqrt(len(draws))


def test_overlap_truth_complement_and_superset():
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.standard_normal((8, 8)))
    true = q[:, :2]
    assert subspace_overlap(true, true @ rng.standard_normal((2, 2))) == pytest.approx(1.0)  # any basis of it
    assert subspace_overlap(true, q[:, 2:]) == pytest.approx(0.0, abs=1e-12)
    assert subspace_overlap(true, np.eye(8)) == pytest.approx(2 / 8)  # the whole space pays for its size
    assert subspace_overlap(true, q[:, :1]) == pytest.approx(1 / 2)  # half of the truth


@pytest.mark.parametrize(("k", "w"), [(1, 6), (2, 10), (3, 5)])
def test_overlap_of_a_random_subspace_is_k_over_w(k, w):
    rng = np.random.default_rng(k * w)
    true = np.linalg.qr(rng.standard_normal((w, k)))[0]
    draws = np.array([subspace_overlap(true, rng.standard_normal((w, k))) for _ in range(3000)])
    # closed form: E ||Q_t' Q_f||_F^2 = k * k / w for a uniformly random k-subspace, divided by k
    assert abs(draws.mean() - k / w) < 4 * draws.std() / np.sqrt(draws.size)


class _Localize(Method):
    """Test double: reports a fixed localization at hidden.0 and edits nothing.

    References
    ----------
    None (a test double).
    """

    name = "localize_test_double"
    family = "editing"
    access = frozenset({"pooled", "internals"})
    outputs = frozenset({"edit"})

    def __init__(self, *, point="hidden.0", unit_scores=None, subspace=None, random_state=None):
        self.point, self.unit_scores, self.subspace = point, unit_scores, subspace
        self.random_state = random_state

    def run(self, task):
        # as the real localizers build it (methods/_internals.py `localized`): plain float64 arrays, and an
        # array the method did not find left out of the dict (the blind job path's plain-data boundary takes
        # numeric arrays only under "unit_scores"/"subspace"; a None there is an object array to it)
        loc = {"point": self.point}
        if self.unit_scores is not None:
            loc["unit_scores"] = np.asarray(self.unit_scores, dtype=np.float64)
        if self.subspace is not None:
            loc["subspace"] = np.asarray(self.subspace, dtype=np.float64)
        return MethodOutput(edited=task.model, localized=loc)


def _planted(name="planted_mono"):
    scn = cb.make_scenario(name, **SMALL)
    return prepare(ReplicateSpec(scn.spec, 0, 0, SubjectConfig().to_dict()))


def test_the_truth_scores_one_and_its_reverse_zero():
    rep = _planted()
    carriers = rep.unit_truth.carriers("hidden.0").astype(float)
    basis = rep.unit_truth.subspace("hidden.0")
    _, m, _ = execute(rep, _Localize(unit_scores=carriers, subspace=basis), 0)
    assert m["loc_auroc"] == 1.0 and m["loc_overlap"] == pytest.approx(1.0)
    complement = np.linalg.svd(np.eye(basis.shape[0]) - basis @ basis.T)[0][:, : basis.shape[0] - basis.shape[1]]
    _, m, _ = execute(rep, _Localize(unit_scores=-carriers, subspace=complement), 0)
    assert m["loc_auroc"] == 0.0 and m["loc_overlap"] == pytest.approx(0.0, abs=1e-12)


def test_a_unit_ablation_subspace_of_grass_units_is_half_right():
    # grass's two own pairs span four unit axes; its true direction at hidden.0 is one line in them (the
    # loading column): the axes' span holds it, at the price of its size, 1/4
    rep = _planted()
    units = np.flatnonzero(rep.unit_truth.carriers("hidden.0"))
    width = rep.unit_truth.carriers("hidden.0").size
    assert units.size == 4
    _, m, _ = execute(rep, _Localize(subspace=np.eye(width)[:, units]), 0)
    assert m["loc_overlap"] == pytest.approx(1 / 4)


def test_polysemantic_truth_is_a_direction_across_mixed_units():
    rep = _planted("planted_poly")
    basis = rep.unit_truth.subspace("hidden.0")
    assert basis.shape[1] == 1 and np.count_nonzero(np.abs(basis[:, 0]) > 1e-9) == 8  # spread over the mixed units


def test_missing_with_reason_without_unit_truth_or_at_an_unknown_point():
    scn = cb.make_scenario("cow", **SMALL)
    rep = prepare(ReplicateSpec(scn.spec, 0, 0, SubjectConfig(arch="mlp", epochs=5).to_dict()))
    _, m, _ = execute(rep, _Localize(unit_scores=np.arange(32.0), subspace=np.eye(32)[:, :1]), 0)
    assert m["loc_auroc"] is None and "trained, not planted" in m.missing["loc_auroc"]
    assert m["loc_overlap"] is None and "trained, not planted" in m.missing["loc_overlap"]
    rep = _planted()
    _, m, _ = execute(rep, _Localize(point="hidden.3", unit_scores=np.arange(12.0)), 0)
    assert m["loc_auroc"] is None and "hidden.3" in m.missing["loc_auroc"]
    _, m, _ = execute(rep, _Localize(unit_scores=np.arange(5.0)), 0)  # wrong width
    assert m["loc_auroc"] is None and "width 12" in m.missing["loc_auroc"]
    _, m, _ = execute(rep, _Localize(), 0)  # localized nothing: plain absence
    assert m["loc_auroc"] is None and "loc_auroc" not in m.missing


@pytest.mark.parametrize("name", ["planted_mono", "planted_superposed"])
def test_localizing_at_the_input_gets_no_localization_score(name):
    # at the input the units are the variables' columns and the target is named: "the target's column" is
    # the answer without reading the model (v1: loc_auroc 1.000 on planted_superposed, where no hidden
    # ranking is scorable), so nothing is scored there, whatever the method returns
    rep = _planted(name)
    column = np.zeros(len(rep.scenario.feature_names))
    column[rep.scenario.input_map["grass"]] = 1.0
    _, m, _ = execute(rep, _Localize(point="input", unit_scores=column, subspace=column[:, None]), 0)
    for key in ("loc_auroc", "loc_overlap"):
        assert m[key] is None and "not scored at 'input'" in m.missing[key] and "hidden.0" in m.missing[key]
    # the same method at a hidden point is scored (the rule is about the point, not the method)
    carriers = rep.unit_truth.carriers("hidden.0").astype(float)
    _, m, _ = execute(rep, _Localize(unit_scores=carriers, subspace=rep.unit_truth.subspace("hidden.0")), 0)
    assert m["loc_overlap"] == pytest.approx(1.0)


def test_scored_points_are_the_hidden_points():
    from cowbench.scores.localize import scored_points

    assert scored_points(_planted().unit_truth) == ["hidden.0.pre", "hidden.0"]


class _DropInput(Method):
    """Test double: zeroes the first layer's weights on the input columns of the given variables, by the names
    the method is shown (no edit when empty), then multiplies the layer by ``scale``.

    References
    ----------
    None (a test double).
    """

    name = "drop_input_test_double"
    param_constraints = {"scale": Real(0.0)}
    family = "editing"
    access = frozenset({"pooled", "internals"})
    outputs = frozenset({"edit"})

    def __init__(self, *, variables=(), scale=1.0, random_state=None):
        self.variables = variables
        self.scale = scale
        self.random_state = random_state

    def run(self, task):
        model = task.model
        # the method runs blind: its columns are the shown variables' (`cowbench.blinding`), found by name
        columns = [task.input_map[v] for v in self.variables]
        w = surgery.reader(model, "input").weight
        with torch.no_grad():
            w[:, columns] = 0.0
            w *= self.scale
        return MethodOutput(edited=model)


def _shown_names(rep) -> dict[str, str]:
    """Real variable name -> the name the replicate's methods are shown (the harness's own blinding draw)."""
    from cowbench.blinding import blind_seed, draw_shown

    return dict(draw_shown(rep.scenario, rep.data, blind_seed(rep.data.seed)).names)


def _ratio_closed_form(base: dict[str, float], dropped: set[str], others: list[str], kept: list[str]) -> float:
    """other_spurious_ratio of a linear subject on identity rendering after zeroing the ``dropped`` columns and
    any rescaling: its ace on a variable is its weight on the column exactly (`cowbench.model_truth`), so the
    edited ace is the base ace with the dropped variables at 0 (a common scale cancels in the shares), and
    ``(sum_O |e| / sum_W |e|) / (sum_O |b| / sum_W |b|)`` follows from the base alone."""
    edited = {v: 0.0 if v in dropped else abs(base[v]) for v in base}
    share = lambda ace: sum(ace[v] for v in others) / sum(ace[v] for v in kept)  # noqa: E731
    return share(edited) / share({v: abs(a) for v, a in base.items()})


def test_other_spurious_ratio_watches_the_shortcut_that_is_not_the_target():
    scn = cb.make_scenario("cow_two_shortcuts", **SMALL)
    assert scn.truth.edit_targets == ["grass"]
    rep = prepare(ReplicateSpec(scn.spec, 0, 0, SubjectConfig(arch="linear").to_dict()))
    assert abs(rep.base_ace["sky"]) > 0.3  # ERM uses the other shortcut
    shown = _shown_names(rep)
    kept = ["moo", "tail", "sky"]  # W: every observed variable but the target; O = [sky]
    assert [v for v in rep.scenario.variables if v != "grass"] == kept

    def ratio(*dropped: str, scale: float = 1.0):
        _, m, _ = execute(rep, _DropInput(variables=tuple(shown[v] for v in dropped), scale=scale), 0)
        return m

    base = rep.base_ace
    expected = {d: _ratio_closed_form(base, set(d), ["sky"], kept) for d in [(), ("grass",), ("sky",), ("tail",)]}
    # the closed form's values: the target is outside W, so removing it, and only it, leaves sky's share
    assert expected[()] == expected[("grass",)] == 1.0 and expected[("sky",)] == 0.0
    assert ratio()["other_spurious_ratio"] == pytest.approx(1.0)  # no edit: untouched
    assert ratio("grass")["other_spurious_ratio"] == pytest.approx(1.0)  # remove grass only
    assert ratio("sky")["other_spurious_ratio"] == pytest.approx(0.0, abs=1e-6)  # remove sky, the watched one
    # a share: removing a cause's reliance raises sky's share of W, to sum_W |b| / (sum_W |b| - |b_tail|)
    w_total = sum(abs(base[v]) for v in kept)
    assert expected[("tail",)] == pytest.approx(w_total / (w_total - abs(base["tail"])))
    assert expected[("tail",)] > 1.1
    assert ratio("tail")["other_spurious_ratio"] == pytest.approx(expected[("tail",)])
    # attacks: shrinking the model is not removing sky; a model that relies on nothing is not best
    assert ratio("grass", scale=0.01)["other_spurious_ratio"] == pytest.approx(1.0)
    m = ratio(scale=0.0)
    assert m["other_spurious_ratio"] is None and "total reliance" in m.missing["other_spurious_ratio"]
    cow = cb.make_scenario("cow", **SMALL)  # one shortcut, and it is the target: nothing to watch
    rep = prepare(ReplicateSpec(cow.spec, 0, 0, SubjectConfig(arch="linear").to_dict()))
    _, m, _ = execute(rep, _DropInput(variables=(_shown_names(rep)["grass"],)), 0)
    assert m["other_spurious_ratio"] is None and "other_spurious_ratio" not in m.missing


def test_the_edit_target_reaches_the_task():
    from cowbench.access import Task

    scn = cb.make_scenario("cow_two_shortcuts", edit_target="sky", **SMALL)
    rep = prepare(ReplicateSpec(scn.spec, 0, 0, SubjectConfig(arch="linear").to_dict()))
    task = Task(rep.scenario, rep.data, rep.subject, {"pooled", "concept"}, subject_config=rep.subject_config)
    assert task.edit_target == ["sky"] and task.told == ["edit_target"]
