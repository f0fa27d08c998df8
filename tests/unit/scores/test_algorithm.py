"""Extracted-algorithm scores (alg_r2_id, alg_r2_bal, alg_gap) against closed forms: the planted network's own
formula is exactly faithful; a hidden feature leaves a completeness gap no formula over the named variables
closes; constant, shrunken and malformed algorithms score what they should."""

import numpy as np
import pytest

import cowbench as cb
from cowbench.jobs import ReplicateSpec, prepare
from cowbench.method import MethodOutput
from cowbench.models import logits
from cowbench.scores import Missing
from cowbench.scores.algorithm import alg_gap, alg_r2_bal, alg_r2_id, completeness_gap
from cowbench.scores.context import ScoreContext
from cowbench.subject import SubjectConfig


def _ctx(scenario: str, output: MethodOutput) -> ScoreContext:
    scn = cb.make_scenario(scenario)
    rep = prepare(ReplicateSpec(scn.spec, 0, 0, SubjectConfig.from_mapping({}).to_dict()))
    return ScoreContext(rep.scenario, rep.data, output, frozenset({"pooled"}), rep.subject, rep.oracle,
                        dict(rep.base_ace), unit_truth=rep.unit_truth)


def _planted_formula(scenario: str, scale: float = 1.0) -> MethodOutput:
    knobs = cb.make_scenario(scenario).knobs
    coef = {"moo": knobs["planted_moo"], "tail": knobs["planted_tail"], "grass": knobs["planted_grass"], "sky": 0.0}
    return MethodOutput(algorithm={"coef": {v: scale * c for v, c in coef.items()},
                                   "intercept": -scale * knobs["planted_grass"] / 2})


def test_completeness_gap_closed_form():
    rng = np.random.default_rng(0)
    n = 20000
    x = rng.standard_normal((n, 3))
    f = x @ np.array([1.0, -2.0, 0.5]) + 0.7 + rng.standard_normal(n)  # unexplained variance 1 of 1 + 5.25
    gap, se = completeness_gap(f, x)
    assert abs(gap - 1 / 6.25) < 4 * se
    assert se < 4 / np.sqrt(n)
    assert completeness_gap(x @ np.ones(3), x)[0] == pytest.approx(0.0, abs=1e-12)


def test_the_planted_formula_is_exactly_faithful_where_the_logit_is_linear():
    ctx = _ctx("planted_mono", _planted_formula("planted_mono"))
    assert alg_r2_id(ctx) == pytest.approx(1.0, abs=1e-6)  # float32 logits
    assert alg_r2_bal(ctx) == pytest.approx(1.0, abs=1e-6)
    assert alg_gap(ctx) == pytest.approx(0.0, abs=1e-6)


def test_a_hidden_feature_leaves_a_gap_of_more_than_three_standard_errors():
    ctx = _ctx("planted_hidden", _planted_formula("planted_hidden"))
    f = logits(ctx.base, ctx.data.test_id.x).astype(np.float64)
    x = ctx.data.test_id.x[:, [ctx.scenario.input_map[v] for v in ("moo", "tail", "grass", "sky")]]
    gap, se = completeness_gap(f, x.astype(np.float64))
    assert alg_gap(ctx) == pytest.approx(gap)
    assert gap > 3 * se  # the |moo + sky| term: no coefficients over the named variables explain it
    assert alg_r2_id(ctx) < 1 - 3 * se


def test_constant_and_shrunken_algorithms_lose_faithfulness_not_completeness():
    shrunk = _ctx("planted_mono", _planted_formula("planted_mono", scale=0.01))
    assert alg_r2_id(shrunk) < 0.05  # a formula at 1/100 of the logit's scale explains almost nothing
    assert alg_gap(shrunk) == pytest.approx(0.0, abs=1e-6)  # its variables still could
    flat = _ctx("planted_mono", MethodOutput(algorithm={"coef": {"moo": 0.0}, "intercept": 0.0}))
    assert alg_r2_id(flat) <= 0.0  # a constant: R^2 at most 0


def test_malformed_algorithms_are_missing_with_a_reason():
    bad = _ctx("planted_mono", MethodOutput(algorithm={"coef": {"grazz": 1.0}, "intercept": 0.0}))
    assert isinstance(alg_r2_id(bad), Missing) and "grazz" in alg_r2_id(bad).reason
    no_dirs = _ctx("planted_mono", MethodOutput(algorithm={"direction_coef": [1.0], "intercept": 0.0}))
    assert isinstance(alg_gap(no_dirs), Missing)
    assert alg_r2_id(_ctx("planted_mono", MethodOutput())) is None  # no algorithm: a plain absence
