"""Blinding (issue 15, §3): what a method sees of a replicate, and the doors it closes.

Each attack below walks through a door the previous harness left open, with a small method written as an
adversarial author would, and shows it gains nothing now: names that give the answer, row order that gives the
environments, a pooled retrain that shuffles "the column named grass". The rest checks that honest methods
still get what they need: the edit target (as a neutral name, still a told route), interventions with neutral
do-keys, a subject model that takes the permuted columns, and a mapping back of every answer.
"""

from __future__ import annotations

import pickle

import cloudpickle
import numpy as np
import pytest
import torch

import cowbench as cb
from cowbench.access import ACCESS_LEVELS, Task, used_from_log
from cowbench.blinding import ColumnOrder, Unblinder, blind_inputs, blind_seed, draw_shown
from cowbench.conformance import reachable_leaks
from cowbench.jobs import ReplicateSpec, execute, prepare
from cowbench.method import Method, MethodOutput
from cowbench.models import logits
from cowbench.seeds import derive_seed
from cowbench.subject import SubjectConfig

SMALL = {"n_train": 300, "n_val": 100, "n_test": 300}
# the names the scenario families give their spurious variables (issue 15, §3)
ROLE_NAMES = ("grass", "color", "s", "bg1", "spu1", "z1", "x2", "spurious", "background")


def _rep(name: str, arch: str = "linear", replicate: int = 0, **knobs):
    scn = cb.make_scenario(name, **{**SMALL, **knobs})
    return prepare(ReplicateSpec(scn.spec, replicate, 0, SubjectConfig.from_mapping({"arch": arch}).to_dict()))


@pytest.fixture(scope="module")
def cow_rep():
    return _rep("cow")


class _Double(Method):
    """Test double.

    References
    ----------
    None (an attack).
    """

    family = "attribution"
    outputs = frozenset({"detect"})

    def __init__(self, *, random_state=None):
        self.random_state = random_state


class ByName(_Double):
    """Returns "the variable called grass" (or any family's name for its spurious variable)."""

    name = "by_name"
    access = frozenset({"pooled"})

    def run(self, task):
        return MethodOutput(spurious_score={v: float(v in ROLE_NAMES) for v in task.variables})


class ByColumn(_Double):
    """Returns the variable at grass's column of the unblinded cow scenario (column 2)."""

    name = "by_column"
    access = frozenset({"pooled"})

    def run(self, task):
        return MethodOutput(spurious_score={v: float(j == 2) for v, j in task.input_map.items()})


# -- door 1: names ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["cow", "four_groups", "iut_example3", "linear_sem", "cow_two_shortcuts"])
def test_a_detector_by_name_scores_at_chance(name):
    rep = _rep(name)
    _, metrics, _ = execute(rep, ByName(), 0)
    assert metrics["detect_auroc"] == 0.5  # every variable scores 0: all ties
    # the door was open: on the real names the same double ranks the spurious variable first
    real = {v: float(v in ROLE_NAMES) for v in rep.scenario.variables}
    assert max(real.values()) == 1.0 and all(real[v] == 1.0 for v in rep.scenario.truth.of_role("spurious")[:1])


def test_a_detector_by_column_position_hits_at_chance(cow):
    """Over many replicates the shown column of grass is uniform: the double hits 1 in 4 times."""
    data = cow.sample(0)
    hits = 0
    n = 400
    for r in range(n):
        shown = draw_shown(cow, data, derive_seed(r, "blind"))
        hits += int(shown.names["grass"] == "v2")  # column j is v_j
    k = len(cow.variables)
    assert abs(hits / n - 1 / k) < 4 * np.sqrt((1 / k) * (1 - 1 / k) / n)


def test_the_column_position_detector_gains_nothing_in_a_job(cow_rep):
    from cowbench.scores import compute_scores
    from cowbench.scores.context import ScoreContext

    plain = Task(cow_rep.scenario, cow_rep.data, cow_rep.subject, {"pooled"}, subject_config=cow_rep.subject_config)
    ctx = ScoreContext(cow_rep.scenario, cow_rep.data, ByColumn().run(plain), frozenset({"pooled"}), cow_rep.subject,
                       cow_rep.oracle, dict(cow_rep.base_ace))
    assert compute_scores(ctx)["detect_auroc"] == 1.0  # the door, unblinded
    _, metrics, _ = execute(cow_rep, ByColumn(), 0)
    shown = draw_shown(cow_rep.scenario, cow_rep.data, blind_seed(cow_rep.data.seed))
    # blinded it scores whichever variable is shown as v2: right only when that happens to be grass (1 in 4)
    assert (metrics["detect_auroc"] == 1.0) == (shown.names["grass"] == "v2")


def test_every_per_variable_field_uses_neutral_names(cow_rep):
    inputs, _ = blind_inputs(cow_rep, ACCESS_LEVELS, seed=3)
    k = len(cow_rep.scenario.variables)
    neutral = {f"v{i}" for i in range(k)}
    assert list(inputs.variables) == [f"v{i}" for i in range(k)]
    assert set(inputs.variable_kinds) == set(inputs.input_map) == neutral
    assert set(inputs.feature_names) == neutral
    assert list(inputs.concepts.columns) == list(inputs.variables)
    # no order shows the real declaration order through (grass is declared third in cow)
    assert list(inputs.input_map) == list(inputs.variable_kinds) == list(inputs.variables)
    assert [inputs.input_map[v] for v in inputs.variables] == list(range(k))
    assert set(inputs.edit_target) <= neutral and set(inputs.instruments) <= neutral
    task = Task(inputs)
    assert list(task.intervene({}, "train").concepts.columns) == list(inputs.variables)


def test_names_columns_and_rows_are_a_function_of_the_replicate(cow_rep):
    a, _ = blind_inputs(cow_rep, {"pooled"}, seed=blind_seed(cow_rep.data.seed))
    b, _ = blind_inputs(cow_rep, {"pooled"}, seed=blind_seed(cow_rep.data.seed))
    assert np.array_equal(a.train.x, b.train.x) and a.input_map == b.input_map
    assert blind_seed(cow_rep.data.seed) == derive_seed(cow_rep.data.seed, "blind")
    other = _rep("cow", replicate=1)
    assert blind_seed(other.data.seed) != blind_seed(cow_rep.data.seed)


# -- door 2: row order --------------------------------------------------------------------------------------


def test_a_method_without_env_access_cannot_read_environments_off_row_order(cow_rep):
    """Stored splits are environment by environment: the first half of the rows was environment 0."""
    stored = cow_rep.data.train.env
    n = len(stored)
    first_half = np.arange(n) < n // 2
    assert np.mean(first_half == (stored == stored[0])) == 1.0  # the door, unblinded
    inputs, unblinder = blind_inputs(cow_rep, {"pooled"}, seed=blind_seed(cow_rep.data.seed))
    assert inputs.train.env is None and inputs.val.env is None
    shown_env = stored[unblinder.shown.rows["train"]]
    agree = np.mean(first_half == (shown_env == shown_env[0]))
    assert abs(agree - 0.5) < 4 * 0.5 / np.sqrt(n)  # chance, within sampling noise


def test_environment_and_group_ids_are_relabelled_consistently(cow_rep):
    access = {"pooled", "env", "group"}
    for seed in range(6):
        inputs, unblinder = blind_inputs(cow_rep, access, seed=seed)
        shown = unblinder.shown
        for split in ("train", "val"):
            rows = shown.order(split, len(cow_rep.data.split(split)))
            real = cow_rep.data.split(split)
            got = getattr(inputs, split)
            assert np.array_equal(got.env, [shown.env[int(e)] for e in real.env[rows]])
            assert np.array_equal(got.group, [shown.group[int(g)] for g in real.group[rows]])
            assert np.array_equal(got.y, real.y[rows])
        assert sorted(shown.env.values()) == sorted(shown.env)  # a permutation of the same ids
    relabelled = {tuple(sorted(blind_inputs(cow_rep, access, seed=s)[1].shown.group.items())) for s in range(6)}
    assert len(relabelled) > 1


def test_the_concept_subset_is_the_same_units_in_a_shuffled_order(cow_rep):
    inputs, unblinder = blind_inputs(cow_rep, {"pooled", "concept"}, seed=11)
    plain = Task(cow_rep.scenario, cow_rep.data, cow_rep.subject, {"pooled", "concept"},
                 subject_config=cow_rep.subject_config)
    rows = unblinder.shown.rows["train"]
    assert np.all(np.diff(inputs.concept_index) > 0)
    assert sorted(rows[inputs.concept_index]) == sorted(plain.concept_index)
    # the concepts line up with the shown training rows and the shown columns (a column is its variable plus
    # measurement noise, none on grass)
    np.testing.assert_array_equal(inputs.concept_x, inputs.train.x[inputs.concept_index])
    for v, j in inputs.input_map.items():
        corr = [np.corrcoef(inputs.concept_x[:, c], inputs.concepts[v])[0, 1] for c in range(4)]
        assert int(np.argmax(corr)) == j and corr[j] > 0.5, (v, corr)
    grass = unblinder.shown.names["grass"]
    np.testing.assert_array_equal(inputs.concept_x[:, inputs.input_map[grass]],
                                  inputs.concepts[grass].to_numpy(np.float32))


# -- door 3: a pooled retrain that shuffles the column named grass ------------------------------------------


class ShuffleGrass(Method):
    """Test double: logistic regression refit with the column named ``grass`` permuted (a pooled "edit").

    References
    ----------
    None (an attack).
    """

    name = "shuffle_grass"
    family = "robust_training"
    access = frozenset({"pooled"})
    outputs = frozenset({"edit"})

    def __init__(self, *, target: str = "grass", random_state=None):
        self.target = target
        self.random_state = random_state

    def run(self, task):
        x = np.array(task.train.x, dtype=np.float64)
        j = (task.input_map or {}).get(self.target)
        if j is not None:
            x[:, j] = np.random.default_rng(0).permutation(x[:, j])
        model = torch.nn.Sequential(torch.nn.Linear(x.shape[1], 1), torch.nn.Flatten(0)).double()
        opt = torch.optim.LBFGS(model.parameters(), max_iter=200)
        xt, yt = torch.tensor(x), torch.tensor(np.asarray(task.train.y), dtype=torch.float64)

        def closure():
            opt.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model(xt), yt)
            loss.backward()
            return loss

        opt.step(closure)
        return MethodOutput(edited=model.float().eval())


def test_a_pooled_retrain_shuffling_the_column_named_grass_gains_nothing(cow_rep):
    from cowbench.scores import compute_scores
    from cowbench.scores.context import ScoreContext

    # the door, unblinded: shuffling the named column removes the shortcut
    plain = Task(cow_rep.scenario, cow_rep.data, cow_rep.subject, {"pooled"}, subject_config=cow_rep.subject_config)
    scores = {}
    for target in ("grass", "none"):
        out = ShuffleGrass(target=target, random_state=0).run(plain)
        ctx = ScoreContext(cow_rep.scenario, cow_rep.data, out, frozenset({"pooled"}), cow_rep.subject,
                           cow_rep.oracle, dict(cow_rep.base_ace))
        scores[target] = compute_scores(ctx)["acc_bal"]
    assert scores["grass"] > scores["none"] + 0.05
    # blinded, no column is named grass: the attack is plain ERM, to the last digit
    _, attack, _ = execute(cow_rep, ShuffleGrass(target="grass", random_state=0), 0)
    _, erm, _ = execute(cow_rep, ShuffleGrass(target="none", random_state=0), 0)
    assert attack["acc_bal"] == erm["acc_bal"] and attack["edit_score"] == erm["edit_score"]


# -- what honest methods still get ---------------------------------------------------------------------------


def test_the_edit_target_is_a_neutral_name_and_stays_a_told_route(cow_rep):
    inputs, unblinder = blind_inputs(cow_rep, {"pooled", "concept"}, seed=blind_seed(cow_rep.data.seed))
    task = Task(inputs)
    (target,) = task.edit_target
    assert target in task.variables and unblinder.name(target) == "grass"
    assert task.told == ["edit_target"] and task.read_log == ["edit_target"]
    _, metrics, resources = execute(cow_rep, cb.get_method("erase_spurious")(), 0)
    assert resources["told"] == ["edit_target"] and "edit_target" in resources["read_log"]
    assert metrics["edit_score"] > 0.5  # the edit still works through the neutral name


def test_interventions_take_neutral_do_keys_and_follow_the_shown_rows_and_columns(cow_rep):
    inputs, unblinder = blind_inputs(cow_rep, {"pooled", "counterfactual", "env"}, seed=5)
    task = Task(inputs)
    shown = unblinder.shown
    grass = next(v for v in task.variables if unblinder.name(v) == "grass")
    twins = task.intervene({grass: 1.0}, "train")
    assert twins.concepts[grass].eq(1).all()
    real = cow_rep.scenario.intervene(cow_rep.data.train, {"grass": 1.0})
    rows = shown.rows["train"]
    np.testing.assert_array_equal(twins.x, real.x[rows][:, shown.columns])
    np.testing.assert_array_equal(twins.y, real.y[rows])
    np.testing.assert_array_equal(twins.env, inputs.train.env)
    # a per-unit do follows the shown rows: the factual values in, the factual inputs out
    factual = task.intervene({}, "train")
    back = task.intervene({v: factual.concepts[v].to_numpy() for v in task.variables}, "train")
    np.testing.assert_allclose(back.x, inputs.train.x, atol=1e-6)
    for bad in ("grass", "cow", "v99"):
        with pytest.raises(cb.AccessError, match="observed variables"):
            task.intervene({bad: 0.0}, "train")


@pytest.mark.parametrize("arch", ["linear", "mlp"])
def test_the_subject_takes_the_permuted_columns(arch):
    rep = _rep("cow", arch=arch)
    inputs, unblinder = blind_inputs(rep, {"pooled", "internals"}, seed=9)
    assert unblinder.shown.columns is not None
    task = Task(cloudpickle.loads(cloudpickle.dumps(inputs)))
    real_x = rep.data.train.x[unblinder.shown.rows["train"]]
    want = logits(rep.subject, real_x)
    scale = max(1.0, float(np.abs(want).max()))
    np.testing.assert_allclose(task.predict_logit(task.train.x), want, atol=1e-5 * scale, rtol=0)
    np.testing.assert_allclose(logits(task.model, task.train.x), want, atol=1e-5 * scale, rtol=0)
    assert task.model is not rep.subject and type(task.model) is torch.nn.Sequential


def test_a_planted_subject_and_an_image_subject_are_shown_too():
    planted = _rep("planted_mono", arch="planted")
    inputs, unblinder = blind_inputs(planted, {"pooled", "internals"}, seed=2)
    real_x = planted.data.train.x[unblinder.shown.rows["train"]]
    np.testing.assert_allclose(Task(inputs).predict_logit(inputs.train.x), logits(planted.subject, real_x),
                               atol=1e-5, rtol=1e-5)


def test_the_unblinder_maps_outputs_and_models_back(cow_rep):
    inputs, unblinder = blind_inputs(cow_rep, ACCESS_LEVELS, seed=4)
    shown = unblinder.shown
    grass = shown.names["grass"]
    plain = {"world_coef": {v: float(i) for i, v in enumerate(inputs.variables)}, "spurious_score": {grass: 1.0},
             "model_coef": None, "abstain": False, "details": {"accepted": [grass], "per": {grass: 2.0}, "n": 3},
             "localized": {"point": "input", "unit_scores": np.arange(4.0)}}
    out = unblinder.output(plain)
    assert out["spurious_score"] == {"grass": 1.0}
    assert set(out["world_coef"]) == set(cow_rep.scenario.variables)
    assert out["details"] == {"accepted": ["grass"], "per": {"grass": 2.0}, "n": 3}
    # input-level unit scores: shown column j is real column columns[j]
    real_scores = out["localized"]["unit_scores"]
    for j, c in enumerate(shown.columns):
        assert real_scores[c] == j
    # an edited model built on the shown columns reads the real ones after unblinding
    j = inputs.input_map[grass]
    model = torch.nn.Sequential(torch.nn.Linear(4, 1, bias=False), torch.nn.Flatten(0))
    with torch.no_grad():
        model[0].weight.zero_()
        model[0].weight[0, j] = 1.0
    wrapped = unblinder.model(model)
    assert isinstance(wrapped, ColumnOrder)
    real_x = cow_rep.data.test_id.x
    np.testing.assert_array_equal(logits(wrapped, real_x), real_x[:, cow_rep.scenario.input_map["grass"]])
    assert unblinder.read_log(["train.x", f"intervene:{grass}"]) == ["train.x", "intervene:grass"]


def test_task_inputs_pickle_and_hold_nothing_beyond_the_access(cow_rep):
    for access in ({"pooled"}, {"pooled", "env"}, {"pooled", "group_val"}, {"pooled", "concept"},
                   {"pooled", "internals"}, {"pooled", "counterfactual"}, ACCESS_LEVELS):
        inputs, _ = blind_inputs(cow_rep, access, seed=1)
        task = Task(cloudpickle.loads(cloudpickle.dumps(inputs)))
        assert reachable_leaks(task) == [], access
        assert (inputs.train.env is None) == ("env" not in access)
        assert (inputs.train.group is None) == ("group" not in access)
        assert (inputs.val.group is None) == (not {"group", "group_val"} & set(access))
        assert (inputs.concepts is None) == ("concept" not in access)
        assert (inputs.interventions is None) == ("counterfactual" not in access)
        if "counterfactual" not in access:  # the standard pickle too: only the generator needs cloudpickle
            assert pickle.loads(pickle.dumps(inputs)).variables == inputs.variables


# -- the read log ---------------------------------------------------------------------------------------------


def test_the_read_log_records_every_guarded_read_and_gives_used(cow_rep):
    inputs, _ = blind_inputs(cow_rep, ACCESS_LEVELS, seed=1)
    task = Task(inputs)
    assert task.read_log == [] and task.used == set()
    task.train.x, task.val.group, task.predict_logit(task.train.x[:3])
    task.concepts, task.edit_target, task.model  # noqa: B018
    task.intervene({}, "val").env  # noqa: B018
    assert task.read_log == ["train.x", "val.group", "predict_logit", "concepts", "edit_target", "model",
                             "intervene", "intervene:val.env"]
    assert task.used == {"group", "concept", "edit_target", "internals", "counterfactual", "env"}
    assert used_from_log(task.read_log, task.access) == task.used
    # validation group labels alone are the finer level
    only_val = Task(blind_inputs(cow_rep, {"pooled", "group_val"}, seed=1)[0])
    only_val.val.group  # noqa: B018
    assert only_val.used == used_from_log(only_val.read_log, only_val.access) == {"group_val"}
    # the log and the set are copies: a method that clears what it gets changes nothing
    task.read_log.clear()
    task.used.clear()
    assert len(task.read_log) == 8 and "edit_target" in task.used


def test_an_unblinder_on_a_plain_task_is_the_identity(cow_rep):
    shown = draw_shown(cow_rep.scenario, cow_rep.data, 0)
    unblinder = Unblinder(shown)
    assert unblinder.name("not-a-variable") == "not-a-variable"
    assert unblinder.model(None) is None


@pytest.mark.parametrize("name", ["logistic", "occlusion", "erase_spurious", "irm_linear"])
def test_an_honest_order_free_method_scores_the_same_blind(cow_rep, name):
    """Methods that use names only as keys and do not depend on row order get the same scores blind as shown the
    real names: the unblinding (names, columns, the edited model's wrapper) loses nothing."""
    from cowbench.determinism import deterministic
    from cowbench.scores import compute_scores
    from cowbench.scores.context import ScoreContext

    cls = cb.get_method(name)
    plain = Task(cow_rep.scenario, cow_rep.data, cow_rep.subject, cls.access, subject_config=cow_rep.subject_config)
    with deterministic(1):
        out = cls(random_state=0).run(plain)
        want = compute_scores(ScoreContext(cow_rep.scenario, cow_rep.data, out, cls.access, cow_rep.subject,
                                           cow_rep.oracle, dict(cow_rep.base_ace), used=plain.used))
    _, got, _ = execute(cow_rep, cls(random_state=0), 0)
    compared = [k for k in ("world_cos", "model_cos", "detect_auroc", "edit_score", "acc_bal", "acc_id")
                if want[k] is not None]
    assert compared
    for k in compared:  # float32 sums in another column order: round-off, not a difference
        assert got[k] == pytest.approx(want[k], abs=5e-3), k
