"""Pieces the cow-variant families share: the knobs of cow's probit index, split sizes, equations, rendering.

Not a family (the registry skips modules whose name starts with an underscore).
"""

from __future__ import annotations

import numpy as np

from cowbench.data import Truth
from cowbench.generators.knobs import Knob, integer, real
from cowbench.generators.scm import IdentityRendering, Variable

COW_INDEX_KNOBS = (
    real("coef_moo", 1.0, -10.0, 10.0, "coefficient of moo in the probit index of cow"),
    real("coef_tail", 1.0, -10.0, 10.0, "coefficient of tail in the probit index of cow"),
    real("label_noise", 0.5, 0.0, 10.0, "sd of the Gaussian noise in the probit index of cow"),
)
MEASUREMENT_KNOB = real("measurement_noise", 1.0, 0.0, 10.0, "sd of the measurement noise on the moo and tail inputs")


def size_knobs(prefix: str = "", n_train: int = 2000, n_val: int = 500, n_test: int = 2000) -> tuple[Knob, ...]:
    """``n_train`` and ``n_val`` (per training environment) and ``n_test`` (per test split)."""
    return (
        integer("n_train", n_train, 10, 10_000_000, f"{prefix}training units per training environment"),
        integer("n_val", n_val, 10, 10_000_000, f"{prefix}validation units per training environment"),
        integer("n_test", n_test, 10, 10_000_000, "units in test_id and in test_ood"),
    )


def sizes(n_train: int, n_val: int, n_test: int) -> dict[str, int]:
    return {"n_train": n_train, "n_val": n_val, "n_test": n_test}


def standard_normal(parents, u, params):
    return u


def probit_cow(parents, u, params):
    """``cow = 1[coef_moo moo + coef_tail tail + label_noise eps > 0]``."""
    index = params["coef_moo"] * parents["moo"] + params["coef_tail"] * parents["tail"]
    return (index + params["label_noise"] * u > 0).astype(np.float64)


def cow_rendering(noise_param: str = "measurement_noise") -> IdentityRendering:
    """moo, tail, grass, sky as inputs, with measurement noise (sd: the parameter ``noise_param``) on the causes."""
    return IdentityRendering(("moo", "tail", "grass", "sky"), {"moo": noise_param, "tail": noise_param})


def cow_truth(variables: tuple[Variable, ...], coef_moo: float, coef_tail: float, identifiable_with: str,
              reason: str) -> Truth:
    """The truth every cow variant shares: moo and tail with their index coefficients, grass and sky 0, probit."""
    return Truth(roles={v.name: v.role for v in variables},
                 world_coef={"moo": coef_moo, "tail": coef_tail, "grass": 0.0, "sky": 0.0}, link="probit",
                 identifiable_with=identifiable_with, identifiable_reason=reason)
