"""A small synthetic run (2 scenarios x 3 methods x 3 replicates) with known values, as report tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

# world_err: lower is better, range [0, 1], chance 1. Values chosen so that every table has a clear order
# and one exact tie (b and c on "four_groups" replicate by replicate).
VALUES = {
    ("cow", "a_method", "pooled"): [0.20, 0.30, 0.25],
    ("cow", "b", "pooled+env"): [0.50, 0.55, 0.60],
    ("cow", "c", "pooled"): [0.70, 0.72, 0.74],
    ("four_groups", "a_method", "pooled"): [0.40, 0.42, 0.44],
    ("four_groups", "b", "pooled+env"): [0.10, 0.20, 0.30],
    ("four_groups", "c", "pooled"): [0.10, 0.20, 0.30],
}
# world_cos: higher is better, range [-1, 1]
COS = {key: [1 - v for v in vals] for key, vals in VALUES.items()}

MANIFEST = {
    "suite": {"name": "synthetic", "root_seed": 7, "replicates": 3, "subject": {"arch": "linear"}},
    "suite_hash": "abc123def456", "jobs": [],
    "skipped": [{"method": "iv_2sls", "scenario": {"generator": "cow", "knobs": {}},
                 "reason": "needs an instrument"}],
}


def synthetic_frame() -> pd.DataFrame:
    rows = []
    for metric, table in (("world_err", VALUES), ("world_cos", COS)):
        for (scenario, method, access), values in table.items():
            for rep, v in enumerate(values):
                rows.append({"job_id": f"{scenario}-{method}-{rep}", "scenario": scenario, "method": method,
                             "hparams": "", "access": access, "told": "", "replicate": rep, "metric": metric,
                             "value": float(v)})
    return pd.DataFrame(rows)


def _expected_means() -> dict[tuple[str, str, str], float]:
    """(scenario, method, metric) -> mean, computed here independently of the report code."""
    out = {}
    for metric, table in (("world_err", VALUES), ("world_cos", COS)):
        for (scenario, method, _), values in table.items():
            out[(scenario, method, metric)] = float(np.mean(values))
    return out


@pytest.fixture(scope="module")
def expected_means() -> dict[tuple[str, str, str], float]:
    return _expected_means()


@pytest.fixture(scope="module")
def synthetic_manifest() -> dict:
    return MANIFEST


@pytest.fixture(scope="module")
def synthetic_tables():
    from cowbench.reports.table import build_tables, results_from_frame

    return build_tables(results_from_frame(synthetic_frame(), manifest=MANIFEST))
