import pytest

from cowbench.errors import InputError
from cowbench.suite import builtin_suites, load_suite, parse_suite


def test_builtin_smoke_suite_plans_36_jobs_with_distinct_ids():
    suite = load_suite("smoke")
    jobs = suite.plan()
    assert "smoke" in builtin_suites()
    assert len(jobs) == 36 and len({j.id for j in jobs}) == 36  # 12 methods (7 of them controls) x 3 replicates
    assert {j.method for j in jobs} == {"logistic", "env_instability", "input_gradient", "erase_spurious",
                                        "group_reweight", "zero_world", "random_world", "constant_attribution",
                                        "random_attribution", "random_detect", "always_abstain", "no_edit"}


def test_data_seed_is_shared_by_methods_and_fit_seed_is_not():
    jobs = load_suite("smoke").plan()
    rep0 = [j for j in jobs if j.replicate.replicate == 0]
    assert len({j.replicate.data_seed for j in rep0}) == 1
    assert len({j.fit_seed for j in rep0}) == len(rep0)
    assert len({j.replicate.data_seed for j in jobs}) == 3


def test_grids_expand_and_overrides_apply():
    raw = {"suite": {"name": "g", "replicates": 2},
           "scenarios": [{"name": "cow", "grid": {"agreement_test": [0.1, 0.5], "label_noise": [0.5, 1.0]}}],
           "methods": {"include": ["logistic", {"name": "env_instability", "params": {"C": 10.0}}]}}
    suite = parse_suite(raw)
    assert len(suite.scenarios) == 4 and len(suite.plan()) == 4 * 2 * 2
    assert dict(suite.methods)["env_instability"] == {"C": 10.0}
    assert load_suite("smoke", replicates=1, methods=["logistic"]).plan().__len__() == 1


def test_changing_a_version_changes_the_job_id():
    from dataclasses import replace

    job = load_suite("smoke").plan()[0]
    assert replace(job, method_version="2").id != job.id
    assert replace(job, scorer_version="x").id != job.id


def test_random_state_cannot_be_set_in_a_suite():
    raw = {"scenarios": [{"name": "cow"}],
           "methods": {"include": [{"name": "logistic", "params": {"random_state": 1}}]}}
    with pytest.raises(InputError, match="random_state"):
        parse_suite(raw)


def suite_with(methods=None, scenarios=None, head=None):
    return {"suite": head or {}, "scenarios": scenarios or [{"name": "cow"}],
            "methods": {"include": methods or ["logistic"]}}


@pytest.mark.parametrize(("raw", "message"), [
    (suite_with(head={"name": "/abs/path"}), "suite name '/abs/path' is invalid"),
    (suite_with(head={"name": "../../x"}), "suite name '../../x' is invalid"),
    (suite_with(head={"name": 3}), "suite name 3 is invalid"),
    (suite_with(head={"description": ["x"]}), "description"),
    (suite_with(methods=[{"name": "logistic", "params": 3}]), "'params' must be a table"),
    (suite_with(methods=[{"name": 3}]), "neither a name nor"),
    (suite_with(methods=[{"name": "logistic", "params": {"C": float("nan")}}]),
     "method 'logistic': hyperparameter C=nan is invalid"),
    (suite_with(methods=[{"name": "ridge", "params": {"alpha": "abc"}}]), "alpha='abc' is invalid"),
    (suite_with(methods=[{"name": "ridge", "params": {"alpha": -1e308}}]), "alpha=-1e+308 is invalid"),
    (suite_with(methods=[{"name": "ridge", "params": {"alpha": [1, 2]}}]), "alpha=[1, 2] is invalid"),
    (suite_with(methods=["logistic", "logistic"]), "listed twice"),
    (suite_with(scenarios=[{"name": "cow"}, {"name": "cow"}]), "appears twice"),
    (suite_with(scenarios=[{"name": "cow", "grid": {"agreement_test": [0.1, 0.1]}}]), "appears twice"),
    (suite_with(scenarios=[{"name": "cow", "knobs": {"agreement_test": 0.1},
                            "grid": {"agreement_test": [0.2]}}]), "both fixed"),
    (suite_with(scenarios=[{"name": 7}]), "'name' must be a scenario name"),
])
def test_malformed_suites_are_refused_before_planning(raw, message):
    with pytest.raises(InputError) as info:
        parse_suite(raw)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_file_name_that_is_not_a_suite_name_needs_an_explicit_name(tmp_path):
    path = tmp_path / "my suite.toml"
    path.write_text('[[scenarios]]\nname = "cow"\n[methods]\ninclude = ["logistic"]\n')
    with pytest.raises(InputError, match="set \\[suite\\] name"):
        load_suite(str(path))
    path.write_text('[suite]\nname = "mine"\n[[scenarios]]\nname = "cow"\n[methods]\ninclude = ["logistic"]\n')
    assert load_suite(str(path)).name == "mine"


def test_suite_files_that_are_not_text_or_not_files_are_named(tmp_path):
    binary = tmp_path / "b.toml"
    binary.write_bytes(b"\xff\xfe[suite]")
    with pytest.raises(InputError, match="not UTF-8"):
        load_suite(str(binary))
    with pytest.raises(InputError, match="not a regular file"):
        load_suite(str(tmp_path))
    with pytest.raises(InputError, match="empty string"):
        load_suite("")
