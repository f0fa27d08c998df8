"""Fixtures of the method tests: a pooled-access Task on a sampled scenario, and detection AUROC against truth."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from cowbench.access import Task


def _pooled_task(scn, seed: int = 0) -> Task:
    data = scn.sample(seed)
    model = torch.nn.Sequential(torch.nn.Linear(len(scn.feature_names), 1))  # never queried by these methods
    return Task(scn, data, model, frozenset({"pooled"}), subject_config={"arch": "linear"})


def _detect_auroc(scn, scores: dict[str, float]) -> float:
    roles = scn.truth.roles
    pos = [scores[v] for v in scores if roles[v] == "spurious"]
    neg = [scores[v] for v in scores if roles[v] in ("causal", "core")]
    return float(np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg]))


@pytest.fixture
def pooled_task() -> Callable:
    """``pooled_task(scn, seed)``: a Task with pooled access only on ``scn.sample(seed)``."""
    return _pooled_task


@pytest.fixture
def detect_auroc() -> Callable:
    """``detect_auroc(scn, scores)``: AUROC, spurious positive, causal (or core) negative, ties half."""
    return _detect_auroc
