import pytest

from cowbench.errors import InputError
from cowbench.suite import builtin_suites, load_suite, parse_suite


def test_builtin_smoke_suite_plans_15_jobs_with_distinct_ids():
    suite = load_suite("smoke")
    jobs = suite.plan()
    assert "smoke" in builtin_suites()
    assert len(jobs) == 15 and len({j.id for j in jobs}) == 15
    assert {j.method for j in jobs} == {"logistic", "env_instability", "input_gradient", "erase_spurious",
                                        "group_reweight"}


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
