"""`ScoreContext`: everything a score may look at for one job, with the expensive parts computed once."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from cowbench.access import IDENTIFICATION_ORDER, identifiable, levels_read, told_routes
from cowbench.data import Dataset, Truth
from cowbench.method import MethodOutput

if TYPE_CHECKING:
    from torch import nn

    from cowbench.generators.scm import Scenario


@dataclass
class ScoreContext:
    """The truth, the method's output and the shared models of one job.

    ``base_ace`` is the subject model's ``ace`` on ``test_id``; ``used`` lists the guarded access levels and
    telling routes the method read (``edit_target`` among them), ``read_log`` every guarded read in order.
    Per-unit quantities (correctness, reliance contributions) are kept so that ratio scores can put a standard
    error on their denominators.
    """

    scenario: Scenario
    data: Dataset
    output: MethodOutput
    access: frozenset[str]
    base: nn.Module
    oracle: nn.Module
    base_ace: dict[str, float]
    used: set[str] = field(default_factory=set)
    # every guarded part and capability the method read, in order (`cowbench.access.Task.read_log`); ``used`` holds
    # the levels among them, on which identifiability is to be credited (read, not declared)
    read_log: list[str] = field(default_factory=list)
    reliance_seed: int = 0
    known_base_units: dict[str, np.ndarray] | None = field(default=None, repr=False)  # from the replicate, if any
    unit_truth: Any = field(default=None, repr=False)  # a planted subject's `PlantedTruth`, for localization scores
    _correct: dict[tuple[str, str], np.ndarray] = field(default_factory=dict, repr=False)
    _logits: dict[tuple[str, str], np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def truth(self) -> Truth:
        return self.scenario.truth

    @property
    def variables(self) -> list[str]:
        return self.scenario.variables

    def vector(self, coef: dict[str, float]) -> np.ndarray:
        """A per-variable mapping as a vector over ``variables`` (missing entries count as 0)."""
        return np.array([float(coef.get(v, 0.0)) for v in self.variables])

    @property
    def world_truth(self) -> np.ndarray:
        return self.vector(dict(self.truth.world_coef))

    @property
    def model_truth(self) -> np.ndarray:
        return self.vector(self.base_ace)

    @property
    def identifiable(self) -> bool:
        """Whether the spurious role is identifiable at the method's access (group labels do not count)."""
        return identifiable(self.truth.identifiable_with, self.access)

    @property
    def levels_read(self) -> frozenset[str]:
        """The access levels the method actually read (``pooled`` always): what identifiability can be credited on."""
        return levels_read(self.used) | {"pooled"}

    @property
    def read_access(self) -> frozenset[str]:
        """The identifying access levels the method read: ``pooled`` (always) and those of ``used``.

        A level declared but never read does not count: a verdict is only as good as the data behind it.
        """
        return frozenset({"pooled"} | (set(self.used) & set(IDENTIFICATION_ORDER)))

    @property
    def identifiable_read(self) -> bool:
        """Whether the spurious role is identifiable at the access the method read (`read_access`)."""
        return identifiable(self.truth.identifiable_with, self.read_access)

    @property
    def told(self) -> list[str]:
        """The routes in ``used`` that named the spurious variable to the method (group labels, edit target)."""
        return told_routes(self.used)

    # -- edit track ---------------------------------------------------------------------------------

    @cached_property
    def edited_ace(self) -> dict[str, float]:
        """The edited model's ``ace`` on test_id: the means of `edited_ace_units`."""
        return {v: float(np.mean(u)) for v, u in self.edited_ace_units.items()}

    @cached_property
    def edited_ace_units(self) -> dict[str, np.ndarray]:
        """Per-unit contributions to the edited model's ``ace`` on test_id, for SEs."""
        from cowbench.model_truth import reliance_units

        return reliance_units(self.output.edited, self.scenario, self.data.test_id, seed=self.reliance_seed)

    @cached_property
    def base_ace_units(self) -> dict[str, np.ndarray]:
        """Per-unit contributions to the subject's ``ace`` on test_id (their mean is ``base_ace``), for SEs."""
        if self.known_base_units is not None:
            return self.known_base_units
        from cowbench.model_truth import reliance_units

        return reliance_units(self.base, self.scenario, self.data.test_id, seed=self.reliance_seed)

    @property
    def classification(self) -> bool:
        """Whether the label is binary; accuracy-based edit scores are missing for a continuous label."""
        return self.scenario.scm.label_kind == "binary"

    def logits(self, which: str, split: str) -> np.ndarray:
        """Logits (float64, shape (n,)) of the ``edited``, ``base`` or ``oracle`` model on ``split`` (computed once)."""
        from cowbench.models import logits

        key = (which, split)
        if key not in self._logits:
            self._logits[key] = logits(self._model(which), self.data.split(split).x)
        return self._logits[key]

    def correct(self, which: str, split: str) -> np.ndarray:
        """Per-unit correctness (bool, shape (n,)) of the ``edited``, ``base`` or ``oracle`` model on ``split``."""
        key = (which, split)
        if key not in self._correct:
            self._correct[key] = (self.logits(which, split) > 0) == (np.asarray(self.data.split(split).y) == 1)
        return self._correct[key]

    def accuracy(self, which: str, split: str) -> float:
        """Accuracy of the ``edited``, ``base`` or ``oracle`` model on ``split`` (computed once)."""
        return float(np.mean(self.correct(which, split)))

    def _model(self, which: str) -> Any:
        return {"edited": self.output.edited, "base": self.base, "oracle": self.oracle}[which]

    def worst_group_accuracy(self, which: str, split: str = "test_ood") -> float:
        """min over non-empty groups of accuracy on ``split``."""
        s = self.data.split(split)
        correct = self.correct(which, split)
        return float(min(correct[s.group == g].mean() for g in np.unique(s.group)))
