"""Anchor sae_toy_recovery on a small grid: the shape of Sharkey et al.'s toy result (a dictionary at least as
large as the number of features, a middle L1, sparse features) holds for the `sae_l1` discovery method."""

import pandas as pd

from cowbench.anchors import anchor_module
from cowbench.anchors.sae_toy_recovery import SPARSITY, reproduce


def _cell(frame: pd.DataFrame, **where) -> float:
    rows = frame
    for k, v in where.items():
        rows = rows[rows[k] == v]
    assert len(rows), where
    return float(rows.mmcs.mean())


def test_recovery_needs_a_large_enough_dictionary_some_l1_and_sparse_features():
    frame = reproduce(1, 0, l1_grid=(0.003, 0.3), ratio_grid=(0.5, 1.0), density_grid=(SPARSITY, 0.4))
    mid = _cell(frame, curve="l1", ratio=1.0, l1=0.3)
    assert mid > _cell(frame, curve="l1", ratio=0.5, l1=0.3) + 0.05  # half as many elements as features
    assert mid > _cell(frame, curve="l1", ratio=1.0, l1=0.003) + 0.05  # too little L1: mixed elements
    assert _cell(frame, curve="density", p=SPARSITY) > _cell(frame, curve="density", p=0.4) + 0.05  # dense
    assert frame.alive.between(0, 1).all()


def test_the_anchor_is_registered_with_its_command():
    module = anchor_module("sae_toy_recovery")
    assert module.COMMAND == "cowbench anchor sae_toy_recovery" and module.DEFAULT_REPS >= 2
