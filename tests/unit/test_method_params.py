"""Hyperparameters are validated before anything runs: names from the constructor, values against each
method's constraints (declared, or implied by its search space and constructor default)."""

import math

import numpy as np
import pytest

import cowbench as cb
from cowbench.errors import InputError
from cowbench.method import Integer, LogUniform, Method, MethodOutput, Options, OrNone, Real, register_method
from cowbench.registries import METHODS

ALL = cb.list_methods()


@pytest.mark.parametrize("name", ALL)
def test_every_default_and_every_search_space_draw_is_allowed(name):
    cls = METHODS.get(name)
    assert cls.check_params(cls().hyperparameters()) == cls().hyperparameters()
    rng = np.random.default_rng(0)
    for key, space in cls.search_space.items():
        for _ in range(50):  # the sampler must never propose what the constraint refuses
            cls.check_params({key: space.sample(rng)})


def numeric_params():
    for name in ALL:
        cls = METHODS.get(name)
        for key, rule in cls.constraints().items():
            inner = rule.inner if isinstance(rule, OrNone) else rule
            if isinstance(inner, Real | Integer):
                yield name, key


@pytest.mark.parametrize(("name", "key"), list(numeric_params()))
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1e308, "abc", [1, 2], True, {"a": 1}])
def test_bad_numeric_values_name_the_method_and_the_hyperparameter(name, key, value):
    cls = METHODS.get(name)
    with pytest.raises(InputError) as info:
        cls.check_params({key: value})
    message = str(info.value)
    assert f"method {name!r}" in message and f"{key}=" in message and "allowed" in message
    assert "\n" not in message


@pytest.mark.parametrize(("name", "params", "allowed"), [
    ("irm_linear", {"dummy": "vectr"}, "'scalar', 'vector', 'matrix'"),  # silently ran the vector variant
    ("irm_linear", {"optimizer": "sgd"}, "'lbfgs', 'adam'"),
    ("vrex_linear", {"optimizer": "LBFGS"}, "'lbfgs', 'adam'"),
    ("integrated_gradients", {"rule": "simpson"}, "trapezoid"),
    ("integrated_gradients", {"n_steps": 32.0}, "an integer"),
    ("icp", {"alpha": 1.5}, "(0, 1]"),
    ("icp", {"alpha": 0.0}, "(0, 1]"),
    ("logistic", {"C": 0}, "> 0"),
    ("logistic", {"max_iter": 0}, ">= 1"),
    ("ridge", {"alpha": -1.0}, "> 0"),
    ("iv_2sls", {"unidentified": "Omit"}, "'omit', 'control'"),
    ("group_reweight", {"epochs": 0}, "None or an integer >= 1"),
    ("logistic", {"D": 1}, "allowed: C, max_iter"),
])
def test_values_outside_the_declared_constraints_are_refused(name, params, allowed):
    with pytest.raises(InputError, match="allowed") as info:
        METHODS.get(name).check_params(params)
    assert allowed in str(info.value)


@pytest.mark.parametrize(("name", "params"), [
    ("logistic", {"C": 1e6}),  # outside the search range, inside the support: allowed
    ("logistic", {"C": 2}),  # an int where a float is expected
    ("anchor_regression", {"gamma": 0.0}),  # partialling out the anchors
    ("irm_linear", {"anneal_steps": 0, "dummy": "matrix"}),
    ("group_reweight", {"epochs": None}),
    ("icp", {"alpha": np.float64(0.1)}),
])
def test_legitimate_values_pass(name, params):
    assert METHODS.get(name).check_params(params) == params


def test_evaluate_refuses_a_nan_hyperparameter_before_running(cow):
    method = cb.get_method("logistic")(C=math.nan)
    with pytest.raises(InputError, match=r"method 'logistic': hyperparameter C=nan is invalid"):
        cb.evaluate(cow, method, seed=0)


def test_a_declaration_whose_default_breaks_its_constraint_is_refused_at_registration():
    with pytest.raises(ValueError, match="default k=0 breaks its constraint"):
        @register_method
        class Bad(Method):
            """A test double.

            References
            ----------
            None.
            """
            name = "bad_default_for_tests"
            family = "estimation"
            access = frozenset({"pooled"})
            outputs = frozenset({"world"})
            param_constraints = {"k": Integer(1)}

            def __init__(self, *, k: int = 0, random_state=None):
                self.k = k
                self.random_state = random_state

            def run(self, task):
                return MethodOutput()
    assert "bad_default_for_tests" not in METHODS.names()


def test_constraints_describe_what_is_allowed():
    assert Real(0.0, None, open_low=True).describe() == "a finite number > 0"
    assert Real(0.0, 1.0).describe() == "a finite number in [0, 1]"
    assert Integer(1).describe() == "an integer >= 1"
    assert Options(("a", "b")).describe() == "one of 'a', 'b'"
    assert not Options((1,)).accepts(True) and not Integer(0).accepts(False)
    assert LogUniform(1.0, 2.0).sample(np.random.default_rng(0)) >= 1.0
