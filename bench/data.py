"""The data vocabulary: `Split`, `Dataset` and `Truth`.

These are plain containers. The generators build them; methods see them only through a `Task`, which
hides whatever the method's access levels do not include.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

# instrument: an exogenous variable that moves a cause; its world coefficient is its direct effect on the
# label (0 when the exclusion restriction holds). It is neither spurious nor causal for detection.
# core: a child of the label whose mechanism is the same in every environment (the "core feature" of the
# group-robustness literature); its world coefficient is its weight in the invariant Bayes predictor. For
# detection and for `causal_kept` it counts with the causal variables: the features a robust model keeps.
ROLES = ("label", "causal", "spurious", "nuisance", "hidden", "instrument", "core")
KEEP_ROLES = ("causal", "core")
SPLITS = ("train", "val", "test_id", "test_ood", "test_bal")


@dataclass(frozen=True, eq=False)
class Split:
    """One split of a sampled dataset.

    Attributes
    ----------
    name : str
        ``train``, ``val``, ``test_id``, ``test_ood`` or ``test_bal``.
    x : ndarray of shape (n, d), float32
        Rendered inputs.
    y : ndarray of shape (n,), int64
        Binary label.
    env : ndarray of shape (n,), int64
        Environment index into ``Scenario.environments``.
    group : ndarray of shape (n,), int64
        ``2 * y + s`` with ``s`` the (binarised) first spurious variable, for worst-group accuracy.
    concepts : DataFrame
        Every generator variable, hidden ones and the label included, one row per unit.
    exogenous : mapping of str to ndarray
        The exogenous noise the split was made from, kept so that interventions can re-evaluate the same
        units. Not part of what methods see.
    do : mapping of str to ndarray or float
        The intervention the split was made under (empty for a plain sample; ``test_bal`` holds the
        permutation of every spurious variable). ``Scenario.intervene`` merges a new ``do`` into it, so an
        intervention on ``test_bal`` keeps the spurious variables independent of the label. Not part of
        what methods see (it names the spurious variables).
    """

    name: str
    x: np.ndarray
    y: np.ndarray
    env: np.ndarray
    group: np.ndarray
    concepts: pd.DataFrame
    exogenous: Mapping[str, np.ndarray] = field(repr=False)
    do: Mapping[str, np.ndarray | float] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def checksum(self) -> str:
        """sha256 over the arrays' bytes (x, y, env, group, concepts), in a fixed order."""
        h = hashlib.sha256()
        for arr in (self.x, self.y, self.env, self.group):
            h.update(np.ascontiguousarray(arr).tobytes())
        for col in self.concepts.columns:
            h.update(col.encode())
            h.update(np.ascontiguousarray(self.concepts[col].to_numpy()).tobytes())
        return h.hexdigest()


@dataclass(frozen=True, eq=False)
class Dataset:
    """The five splits of one sample of a scenario.

    ``test_id`` is the training distribution; ``test_ood`` the deployment shift (spurious association
    flipped: the stress test); ``test_bal`` the training distribution with every spurious variable replaced
    by a random permutation of its own values (independent of the label, causal mechanism unchanged), on
    which the oracle model is optimal and removing a shortcut, not reversing it, is what pays.
    """

    train: Split
    val: Split
    test_id: Split
    test_ood: Split
    test_bal: Split
    seed: int

    def split(self, name: str) -> Split:
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; allowed: {', '.join(SPLITS)}")
        return getattr(self, name)

    def checksum(self) -> str:
        h = hashlib.sha256()
        for name in SPLITS:
            h.update(self.split(name).checksum().encode())
        return h.hexdigest()


@dataclass(frozen=True)
class Truth:
    """The ground truth of a scenario, defined on variables (never on input coordinates).

    Attributes
    ----------
    roles : mapping of str to str
        Every variable's role (``label``, ``causal``, ``spurious``, ``nuisance``, ``hidden``).
    world_coef : mapping of str to float
        For each observed variable, its coefficient in the label's structural index (0 for spurious and
        nuisance variables).
    link : str
        The label's link function (``probit``, ``logistic``, ``identity``).
    identifiable_with : str
        The least access level at which the spurious role can be told apart from the data.
    identifiable_reason : str
        Why, in one line.
    world_undefined : str
        Empty where the world truth is defined; otherwise why it is not (e.g. the average partial effect of
        a cause with an atom at a kink grows like 1/h). ``world_coef`` is then empty and the world track is
        not scored.
    edit_target : tuple of str
        The spurious variable(s) an edit is asked to remove (``task.edit_target``); empty means every
        spurious variable. A scenario with several shortcuts names one, and the others are watched
        (``other_spurious_ratio``: removing one shortcut can raise reliance on another).
    """

    roles: Mapping[str, str]
    world_coef: Mapping[str, float]
    link: str
    identifiable_with: str
    identifiable_reason: str
    world_undefined: str = ""
    edit_target: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        wrong = [v for v in self.edit_target if self.roles.get(v) != "spurious"]
        if wrong:
            raise ValueError(f"edit target(s) {wrong} are not spurious variables; allowed: "
                             f"{', '.join(self.of_role('spurious'))}")

    @property
    def edit_targets(self) -> list[str]:
        """The variables an edit should remove: ``edit_target``, or every spurious variable when it is empty."""
        return list(self.edit_target) if self.edit_target else self.of_role("spurious")

    @property
    def world_defined(self) -> bool:
        """Whether ``world_coef`` holds a world truth (see ``world_undefined``)."""
        return not self.world_undefined

    def of_role(self, role: str) -> list[str]:
        """Variables with ``role``, in declaration order."""
        return [v for v, r in self.roles.items() if r == role]

    @property
    def keep(self) -> list[str]:
        """Variables a robust model should keep using: causal and core ones, in declaration order."""
        return [v for v, r in self.roles.items() if r in KEEP_ROLES]

    @property
    def label(self) -> str:
        return self.of_role("label")[0]

    @property
    def observed(self) -> list[str]:
        """Variables a model sees (all but the label and hidden ones), in declaration order."""
        return [v for v, r in self.roles.items() if r not in ("label", "hidden")]
