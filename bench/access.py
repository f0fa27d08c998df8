"""Access levels and the `Task`: what a method may see of a job, and nothing more.

A method declares the access levels it needs; the harness hands it a `Task` that exposes the data of
those levels and raises `AccessError` on anything else. Arrays come out read-only, so a method that
tries to modify its inputs fails loudly instead of corrupting the data shared with other methods.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cowbench.data import Dataset, Split
from cowbench.errors import AccessError

if TYPE_CHECKING:
    import torch

    from cowbench.generators.scm import Scenario

ACCESS_LEVELS = ("pooled", "env", "group", "concept", "internals", "counterfactual")
ACCESS_DOC = {
    "pooled": "training inputs and labels, and black-box queries of the subject model",
    "env": "environment labels of the training and validation units",
    "group": "group labels (label x spurious value) of the training and validation units",
    "concept": "generator variables on a labelled subset of the training units, and the edit target",
    "internals": "the subject model's weights and activations",
    "counterfactual": "interventions on the generator (do-queries on the training units)",
}
# The levels at which the spurious role can become identifiable, weakest first.
IDENTIFICATION_ORDER = ("pooled", "env", "group", "concept", "counterfactual")


def check_access(levels: Any) -> frozenset[str]:
    """Validate a declared access set."""
    levels = frozenset(levels)
    unknown = levels - set(ACCESS_LEVELS)
    if unknown:
        raise ValueError(f"unknown access level(s) {sorted(unknown)}; allowed: {', '.join(ACCESS_LEVELS)}")
    if "pooled" not in levels:
        raise ValueError("every method has 'pooled' access; declare it explicitly")
    return levels


def identifiable(identifiable_with: str, access: frozenset[str]) -> bool:
    """Whether a method with ``access`` can identify a spurious role that needs ``identifiable_with``."""
    if identifiable_with not in IDENTIFICATION_ORDER:
        return False  # "never": no access level suffices
    need = IDENTIFICATION_ORDER.index(identifiable_with)
    return any(IDENTIFICATION_ORDER.index(a) >= need for a in access if a in IDENTIFICATION_ORDER)


def spread_rows(n_rows: int, n: int) -> np.ndarray:
    """``min(n, n_rows)`` row indices evenly spaced over ``range(n_rows)``.

    Splits are stored environment by environment, so the first ``n`` rows would all come from the first
    environment; evenly spaced rows represent every environment in proportion.
    """
    n = min(int(n), n_rows)
    return np.round(np.linspace(0, n_rows - 1, n)).astype(np.int64)


def _readonly(a: np.ndarray) -> np.ndarray:
    view = a.view()
    view.setflags(write=False)
    return view


class SplitView:
    """One split as a method sees it: ``x`` and ``y`` always, the rest by access level."""

    def __init__(self, task: Task, split: Split):
        self._task = task
        self._split = split

    def spread(self, n: int) -> SplitView:
        """The same split restricted to ``n`` evenly spaced units (all of them if it has fewer)."""
        if n >= len(self._split):
            return self
        rows = spread_rows(len(self._split), n)
        s = self._split
        sub = dataclasses.replace(s, x=s.x[rows], y=s.y[rows], env=s.env[rows], group=s.group[rows],
                                  concepts=s.concepts.iloc[rows].reset_index(drop=True),
                                  exogenous={k: v[rows] for k, v in s.exogenous.items()})
        return SplitView(self._task, sub)

    @property
    def x(self) -> np.ndarray:
        """Inputs, shape (n, d), float32, read-only."""
        return _readonly(self._split.x)

    @property
    def y(self) -> np.ndarray:
        """Labels, shape (n,), int64, read-only."""
        return _readonly(self._split.y)

    @property
    def env(self) -> np.ndarray:
        self._task._need("env", "environment labels")
        return _readonly(self._split.env)

    @property
    def group(self) -> np.ndarray:
        self._task._need("group", "group labels")
        return _readonly(self._split.group)

    def __len__(self) -> int:
        return len(self._split)


class Task:
    """A job's data and subject model, seen through the method's declared access levels.

    Parameters
    ----------
    scenario : Scenario
    data : Dataset
    subject : torch.nn.Module
        The shared subject model; methods with ``internals`` get a private copy.
    access : iterable of str
        The method's declared access levels.
    subject_config : mapping
        How the subject model was built and trained (public: a method may retrain the architecture).
    n_concept : int
        Size of the labelled subset of training units that ``concept`` access reveals.
    """

    def __init__(self, scenario: Scenario, data: Dataset, subject: torch.nn.Module, access: Any, *,
                 subject_config: Mapping[str, Any], n_concept: int = 1000):
        self._scenario = scenario
        self._data = data
        self._subject = subject
        self._model_copy: torch.nn.Module | None = None
        self.access = check_access(access)
        self.subject_config = dict(subject_config)
        self.n_concept = min(int(n_concept), len(data.train))
        self.used: set[str] = set()  # which guarded parts were read, for the scorer's bookkeeping

    def _need(self, level: str, what: str) -> None:
        if level not in self.access:
            raise AccessError(
                f"{what} need(s) access level {level!r}; the method declared {sorted(self.access)}"
            )
        self.used.add(level)

    # -- always visible: metadata --------------------------------------------------------------------

    @property
    def variables(self) -> list[str]:
        """Observed variable names (what the per-variable outputs are keyed by)."""
        return list(self._scenario.variables)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self._scenario.feature_names

    @property
    def input_map(self) -> dict[str, int] | None:
        """Variable -> input column where the rendering has one column per variable; else None."""
        return self._scenario.input_map

    @property
    def variable_kinds(self) -> dict[str, str]:
        return {v: self._scenario.kind(v) for v in self.variables}

    @property
    def instruments(self) -> list[str]:
        """Variables the study design offers as instruments or anchors (design metadata, not truth)."""
        return self._scenario.truth.of_role("instrument")

    @property
    def label_kind(self) -> str:
        """``binary`` (the subject model outputs a logit) or ``continuous`` (it outputs a prediction)."""
        return self._scenario.scm.label_kind

    @property
    def n_environments(self) -> int:
        """Number of training environments."""
        return len(self._scenario.scm.train_envs)

    # -- pooled -----------------------------------------------------------------------------------

    @property
    def train(self) -> SplitView:
        return SplitView(self, self._data.train)

    @property
    def val(self) -> SplitView:
        return SplitView(self, self._data.val)

    def predict_logit(self, x: np.ndarray) -> np.ndarray:
        """Black-box query of the subject model: logits, shape (n,)."""
        from cowbench.models import logits

        return logits(self._subject, x)

    # -- concept ----------------------------------------------------------------------------------

    @property
    def concept_index(self) -> np.ndarray:
        """Training-row indices of the labelled subset: ``n_concept`` rows evenly spaced over the training split,
        so every training environment is represented in proportion (the split is stored by environment)."""
        self._need("concept", "concept labels")
        return _readonly(spread_rows(len(self._data.train), self.n_concept))

    @property
    def concepts(self) -> pd.DataFrame:
        """Observed generator variables of the labelled training units ``concept_index`` (a copy)."""
        return self._data.train.concepts.iloc[self.concept_index][self.variables].reset_index(drop=True)

    @property
    def concept_x(self) -> np.ndarray:
        """Inputs of the units ``concepts`` describes, shape (n_concept, d)."""
        return _readonly(self._data.train.x[self.concept_index])

    @property
    def edit_target(self) -> list[str]:
        """The variable(s) an edit should remove, as a benchmark user names them.

        Reading it marks the method's detection scores as not comparable (the scorer drops them).
        """
        self._need("concept", "the edit target")
        self.used.add("edit_target")
        return self._scenario.truth.of_role("spurious")

    # -- internals --------------------------------------------------------------------------------

    @property
    def model(self) -> torch.nn.Module:
        """A private copy of the subject model (weights and activations)."""
        self._need("internals", "the subject model's internals")
        if self._model_copy is None:
            self._model_copy = copy.deepcopy(self._subject)
        return self._model_copy

    # -- counterfactual ---------------------------------------------------------------------------

    def intervene(self, do: Mapping[str, Any], split: str = "train") -> Split:
        """The training (or validation) units under ``do``, same exogenous noise.

        The returned split's ``concepts`` hold the observed variables only (no label, no hidden ones).
        """
        self._need("counterfactual", "interventions")
        if split not in ("train", "val"):
            raise AccessError(f"interventions are on 'train' or 'val' units, not {split!r}")
        out = self._scenario.intervene(self._data.split(split), do)
        # hidden variables are never given to methods, nor the exogenous noise behind the units
        return dataclasses.replace(out, concepts=out.concepts[self.variables].copy(), exogenous={})
