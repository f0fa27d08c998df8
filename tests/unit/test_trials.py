"""Hyperparameter trials: the draws are a function of (root seed, method, index) only; suites plan one job each."""

import json
import subprocess
import sys

import pytest

import cowbench as cb
from cowbench.errors import InputError
from cowbench.method import Choice, LogUniform
from cowbench.registries import METHODS
from cowbench.suite import load_suite, parse_suite
from cowbench.trials import draw_hparams, hparam_seed, trial_settings


def _raw(**suite):
    return {"suite": {"name": "t", "replicates": 2, **suite}, "subject": {"arch": "linear", "epochs": 5},
            "scenarios": [{"name": "cow", "knobs": {"n_train": 200, "n_val": 100, "n_test": 200}}],
            "methods": {"include": ["logistic", "ols", {"name": "ridge", "params": {"alpha": 3.0}},
                                     {"name": "lasso", "trials": 2}]}}


def test_draw_zero_is_the_defaults_and_the_fixed_params():
    assert draw_hparams(METHODS.get("logistic"), 0, 0) == {}
    assert draw_hparams(METHODS.get("ridge"), 0, 0, {"alpha": 3.0}) == {"alpha": 3.0}


def test_draws_repeat_across_calls_and_change_with_index_seed_and_method():
    cls = METHODS.get("logistic")
    first = [draw_hparams(cls, 0, i) for i in range(1, 6)]
    assert first == [draw_hparams(cls, 0, i) for i in range(1, 6)]
    assert len({d["C"] for d in first}) == 5  # a continuous space: five different values
    assert draw_hparams(cls, 1, 1) != draw_hparams(cls, 0, 1)
    assert hparam_seed(0, "logistic", 1) != hparam_seed(0, "ridge", 1)


def test_draws_stay_in_the_search_space_and_pass_the_method_checks():
    for name in cb.list_methods():
        cls = METHODS.get(name)
        for index, params in trial_settings(cls, 6, 0):
            cls.check_params(params)
            for key, value in params.items():
                space = cls.search_space[key]
                if isinstance(space, LogUniform):
                    assert space.low <= value <= space.high
                elif isinstance(space, Choice):
                    assert value in space.options
            assert (index == 0) == (params == {})


def test_a_method_without_a_search_space_gets_one_setting():
    assert trial_settings(METHODS.get("ols"), 8, 0) == [(0, {})]
    assert trial_settings(METHODS.get("ridge"), 8, 0, {"alpha": 1.0}) == [(0, {"alpha": 1.0})]  # nothing free


def test_a_choice_space_drops_repeated_settings():
    settings = trial_settings(METHODS.get("icp"), 20, 0)  # alpha in (0.01, 0.05, 0.1)
    values = [json.dumps(p, sort_keys=True) for _, p in settings]
    assert len(values) == len(set(values)) <= 4  # the defaults and at most the three options


def test_the_draws_do_not_depend_on_the_process():
    # Python's hash() is salted per process: a draw that used it would change here
    code = ("from cowbench.registries import METHODS; from cowbench.trials import draw_hparams; "
            "print(repr(draw_hparams(METHODS.get('logistic'), 0, 3)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "123", "PATH": ""}).stdout.strip()
    assert out == repr(draw_hparams(METHODS.get("logistic"), 0, 3))


def test_a_suite_plans_one_job_per_setting_and_replicate():
    suite = parse_suite(_raw(trials=3))
    jobs = suite.plan()
    per = {m: sorted({j.trial for j in jobs if j.method == m}) for m in ("logistic", "ols", "ridge", "lasso")}
    # ols has no search space; ridge's only key is fixed by the suite; lasso's own trials = 2 win
    assert per == {"logistic": [0, 1, 2], "ols": [0], "ridge": [0], "lasso": [0, 1]}
    assert len(jobs) == 2 * (3 + 1 + 1 + 2)
    assert [j.hparams for j in jobs if j.method == "ridge"] == [{"alpha": 3.0}] * 2


def test_plans_are_identical_across_loads_and_draw_zero_keeps_the_old_job_ids():
    a, b = parse_suite(_raw(trials=3)), parse_suite(_raw(trials=3))
    assert [j.id for j in a.plan()] == [j.id for j in b.plan()]
    defaults_only = {j.id for j in parse_suite(_raw()).plan()}
    assert defaults_only <= {j.id for j in a.plan()}  # draw 0 is the job a suite without trials runs


def test_suites_without_trials_keep_their_hash():
    # the committed standard results were made before trials and selection existed
    assert "trials" not in load_suite("standard").to_dict()
    assert "selection" not in load_suite("standard").to_dict()
    assert parse_suite(_raw(trials=2)).hash != parse_suite(_raw()).hash


def test_the_trials_flag_overrides_every_method(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text('[suite]\nname = "t"\ntrials = 5\n[[scenarios]]\nname = "cow"\n'
                    '[methods]\ninclude = [{ name = "logistic", trials = 4 }, "lasso"]\n')
    assert load_suite(str(path)).entry_trials() == [4, 5]
    flagged = load_suite(str(path), trials=2)
    assert flagged.trials == 2 and flagged.entry_trials() == [2, 2]


@pytest.mark.parametrize(("key", "value", "needle"), [
    ("trials", 0, "[suite] trials"), ("trials", "3", "[suite] trials"), ("trials", True, "[suite] trials"),
    ("selection", ["best"], "unknown rule"), ("selection", [], "non-empty"),
    ("selection", ["oracle", "oracle"], "distinct"),
])
def test_bad_trials_and_selection_are_refused_by_name(key, value, needle):
    with pytest.raises(InputError, match=needle.replace("[", r"\[").replace("]", r"\]")):
        parse_suite(_raw(**{key: value}))


def test_a_bad_per_method_trials_is_refused():
    raw = _raw()
    raw["methods"]["include"] = [{"name": "logistic", "trials": -1}]
    with pytest.raises(InputError, match="trials"):
        parse_suite(raw)


def test_loeo_marks_only_edit_jobs_on_scenarios_with_three_environments():
    raw = _raw(selection=["defaults", "loeo"])
    raw["scenarios"].append({"name": "cow", "knobs": {"n_train": 200, "n_val": 100, "n_test": 200,
                                                      "agreement_train": [0.9, 0.8, 0.7]}})
    raw["methods"]["include"] = ["logistic", "group_reweight"]
    suite = parse_suite(raw)
    flagged = {(j.replicate.scenario["knobs"]["agreement_train"].__len__(), j.method) for j in suite.plan() if j.loeo}
    assert flagged == {(3, "group_reweight")}
    reasons = [s["reason"] for s in suite.skipped()]
    assert any("needs at least 3" in r for r in reasons) and any("no edited model" in r for r in reasons)
    plain = parse_suite(_raw())
    assert not any(j.loeo for j in plain.plan()) and all("loeo" not in j.to_dict() for j in plain.plan())
