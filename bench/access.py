"""Access levels and the `Task`: what a method may see of a job, and nothing more.

A method declares the access levels it needs; the harness hands it a `Task` that exposes the data of
those levels and raises `AccessError` on anything else. The Task is built from pieces filtered at
construction: it holds copies of the arrays the declared levels allow, never the `Scenario`, the
`Dataset`, the `Truth` or an unfiltered `Split`, so what a method did not declare is not reachable
through its attributes either (`cowbench.conformance.reachable_leaks` walks them to prove it).
Capabilities (black-box queries, the model copy, interventions) are closures that return filtered
results. Arrays come out read-only and are the Task's own copies, so a method that modifies them
fails loudly or changes only its own view, never the data shared with other methods.

Routes that tell a method which variable is spurious (`TELLING_ROUTES`: group labels, the edit
target) are recorded in ``task.used`` when read; the scorer leaves such a job unranked on detection.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cowbench.errors import AccessError

if TYPE_CHECKING:
    import torch

    from cowbench.data import Dataset, Split
    from cowbench.generators.scm import Scenario

ACCESS_LEVELS = ("pooled", "env", "group_val", "group", "concept", "internals", "counterfactual")
ACCESS_DOC = {
    "pooled": "training inputs and labels, and black-box queries of the subject model",
    "env": "environment labels of the training and validation units",
    "group_val": "group labels of the validation units only (held-out group labels, as DFR and worst-group "
                 "validation use them); they name the spurious variable like 'group' does",
    "group": "group labels (label x spurious value) of the training and validation units; they name the "
             "spurious variable, so a method that reads them is not ranked on detection",
    "concept": "generator variables on a labelled subset of the training units, and the edit target (which "
               "names the spurious variable: reading it leaves the method unranked on detection)",
    "internals": "the subject model's weights and activations",
    "counterfactual": "interventions on the generator (do-queries on the training or validation units: the "
                      "inputs, labels and observed variables of the intervened units)",
}
# The levels at which the spurious role can become identifiable, weakest first. Group labels (``group``,
# ``group_val``) are not among them: they name the spurious variable, so they reveal the answer rather than
# identify it.
IDENTIFICATION_ORDER = ("pooled", "env", "concept", "counterfactual")
NEVER = "never"  # no access level that does not reveal the answer suffices
# What a method can read that names the spurious variable, and how a report says it in one line.
TELLING_ROUTES = {"group": "group labels", "group_val": "validation group labels",
                  "edit_target": "the edit target"}


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
    """Whether a method with ``access`` can identify a spurious role that needs ``identifiable_with``.

    Levels outside `IDENTIFICATION_ORDER` (``group``, ``group_val``, ``internals``) never count: group labels reveal the
    answer, the model's internals say nothing about the world.
    """
    if identifiable_with not in IDENTIFICATION_ORDER:
        return False  # "never": no access level suffices
    need = IDENTIFICATION_ORDER.index(identifiable_with)
    return any(IDENTIFICATION_ORDER.index(a) >= need for a in access if a in IDENTIFICATION_ORDER)


def told_routes(used: set[str] | frozenset[str]) -> list[str]:
    """The routes in ``used`` through which a method learnt which variable is spurious, sorted."""
    return sorted(set(used) & set(TELLING_ROUTES))


def spread_rows(n_rows: int, n: int) -> np.ndarray:
    """``min(n, n_rows)`` row indices evenly spaced over ``range(n_rows)``.

    Splits are stored environment by environment, so the first ``n`` rows would all come from the first
    environment; evenly spaced rows represent every environment in proportion.
    """
    n = min(int(n), n_rows)
    return np.round(np.linspace(0, n_rows - 1, n)).astype(np.int64)


def _frozen(a: np.ndarray) -> np.ndarray:
    """A read-only copy that owns its memory (no ``.base`` leading back to the shared array)."""
    out = np.array(a, copy=True)
    out.setflags(write=False)
    return out


def _readonly(a: np.ndarray) -> np.ndarray:
    view = a.view()
    view.setflags(write=False)
    return view


Need = Callable[[str, str], None]


class SplitView:
    """One split as a method sees it: ``x`` and ``y`` always, ``env`` and ``group`` only where declared.

    It holds only the arrays the method's access allows (undeclared ones are None and their property
    raises `AccessError`); ``need(level, what)`` records a read of a guarded part, or raises.
    """

    __slots__ = ("_env", "_group", "_group_level", "_need", "_x", "_y", "name")

    def __init__(self, name: str, x: np.ndarray, y: np.ndarray, env: np.ndarray | None,
                 group: np.ndarray | None, need: Need, group_level: str = "group"):
        self.name = name
        self._x, self._y, self._env, self._group, self._need = x, y, env, group, need
        self._group_level = group_level  # the level a read of ``group`` is checked against and recorded as

    def spread(self, n: int) -> SplitView:
        """The same split restricted to ``n`` evenly spaced units (all of them if it has fewer)."""
        if n >= len(self):
            return self
        rows = spread_rows(len(self), n)

        def pick(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else _frozen(a[rows])

        return self._restricted(rows, pick)

    def _restricted(self, rows: np.ndarray, pick: Callable) -> SplitView:
        return SplitView(self.name, pick(self._x), pick(self._y), pick(self._env), pick(self._group), self._need,
                         self._group_level)

    @property
    def x(self) -> np.ndarray:
        """Inputs, shape (n, d), float32, read-only."""
        return _readonly(self._x)

    @property
    def y(self) -> np.ndarray:
        """Labels, shape (n,), read-only."""
        return _readonly(self._y)

    @property
    def env(self) -> np.ndarray:
        """Environment labels, shape (n,) (access level ``env``)."""
        self._need("env", "environment labels")
        return _readonly(self._env)

    @property
    def group(self) -> np.ndarray:
        """Group labels ``2 y + s``, shape (n,) (access level ``group``, or ``group_val`` for the validation
        split only; they name the spurious variable)."""
        self._need(self._group_level, f"group labels of {self.name!r}")
        return _readonly(self._group)

    def __len__(self) -> int:
        return int(self._y.shape[0])


class Intervened(SplitView):
    """Units under an intervention: ``x``, ``y`` and ``concepts`` (observed variables), ``env`` if declared.

    Group labels are never part of it: they are the training and validation units' (access ``group``),
    and they would name the spurious variable to a method that declared only ``counterfactual``.
    """

    __slots__ = ("_concepts",)

    def __init__(self, name: str, x: np.ndarray, y: np.ndarray, env: np.ndarray | None, concepts: pd.DataFrame,
                 need: Need):
        super().__init__(name, x, y, env, None, need)
        self._concepts = concepts

    def _restricted(self, rows: np.ndarray, pick: Callable) -> SplitView:
        return Intervened(self.name, pick(self._x), pick(self._y), pick(self._env),
                          self._concepts.iloc[rows].reset_index(drop=True), self._need)

    @property
    def concepts(self) -> pd.DataFrame:
        """The observed variables of the intervened units (no label, no hidden ones), a copy."""
        return self._concepts.copy()

    @property
    def group(self) -> np.ndarray:
        raise AccessError("interventions do not return group labels (they would name the spurious variable)")


def _black_box(subject: torch.nn.Module) -> Callable[[np.ndarray], np.ndarray]:
    def predict_logit(x: np.ndarray) -> np.ndarray:
        from cowbench.models import logits

        return logits(subject, x)

    return predict_logit


def _private_copy(subject: torch.nn.Module) -> Callable[[], torch.nn.Module]:
    made: list[torch.nn.Module] = []

    def model() -> torch.nn.Module:
        if not made:
            made.append(copy.deepcopy(subject))
        return made[0]

    return model


@dataclasses.dataclass(frozen=True)
class _Units:
    """The units an intervention re-evaluates: their split name, environments and exogenous noise only."""

    name: str
    env: np.ndarray
    exogenous: Mapping[str, np.ndarray]
    do: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.env.shape[0])


def _anonymous_generator(scenario: Scenario) -> Scenario:
    """The scenario's equations, parameters and rendering without its truth, roles or equation texts.

    Interventions need the generator; this copy keeps only what re-evaluating units needs. Every observed
    variable gets the role ``nuisance``, the truth has no world coefficients and no identification, the
    spec names no family or knobs. What stays reachable (documented in `Task`): the equations as functions
    (their own constants included), the parameters by name per environment, and the rendering.
    """
    from cowbench.data import Truth
    from cowbench.generators.scm import SCM, Scenario

    scm = scenario.scm
    keep = ("label", "hidden")
    variables = tuple(dataclasses.replace(v, role=v.role if v.role in keep else "nuisance", text="")
                      for v in scm.variables)
    truth = Truth(roles={v.name: v.role for v in variables}, world_coef={}, link="", identifiable_with="",
                  identifiable_reason="")
    bare = SCM(variables, scm.params, scm.environments, scm.rendering, truth, scm.sizes)
    return Scenario({"generator": "anonymous", "knobs": {}}, bare)


def _interventions(scenario: Scenario, data: Dataset, observed: list[str], with_env: bool, need: Need
                   ) -> Callable[[Mapping[str, Any], str], Intervened]:
    generator = _anonymous_generator(scenario)
    units = {name: _Units(name, _frozen(s.env), {k: _frozen(v) for k, v in s.exogenous.items()})
             for name, s in (("train", data.train), ("val", data.val))}

    def intervene(do: Mapping[str, Any], split: str) -> Intervened:
        if split not in units:
            raise AccessError(f"interventions are on 'train' or 'val' units, not {split!r}")
        out = generator.intervene(units[split], do)
        return Intervened(split, _frozen(out.x), _frozen(out.y), _frozen(out.env) if with_env else None,
                          out.concepts[observed].copy(), need)

    return intervene


class Task:
    """A job's data and subject model, seen through the method's declared access levels.

    Built from pieces filtered here: copies of the arrays the access allows, metadata as plain values, and
    closures for what needs the generator or the model. What stays reachable from a Task's attributes:
    with any access, the subject model inside ``predict_logit``'s closure (a black-box query needs it;
    its weights carry no truth); with ``counterfactual``, the exogenous noise of the training and
    validation units and an anonymous copy of the generator (equations as functions with their constants,
    parameters by name, rendering), roles, texts, truth and family stripped. A do-query answers questions
    about those anyway; nothing else of the truth is reachable.

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
        self.access = check_access(access)
        self.subject_config = dict(subject_config)
        self.n_concept = min(int(n_concept), len(data.train))
        self.used: set[str] = set()  # which guarded parts were read, for the scorer's bookkeeping
        observed = list(scenario.variables)
        self._variables = tuple(observed)
        self._feature_names = tuple(scenario.feature_names)
        self._input_map = None if scenario.input_map is None else dict(scenario.input_map)
        self._kinds = {v: scenario.kind(v) for v in observed}
        self._instruments = tuple(scenario.truth.of_role("instrument"))
        self._label_kind = scenario.scm.label_kind
        self._n_environments = len(scenario.scm.train_envs)
        self._splits = {name: self._view(data.split(name)) for name in ("train", "val")}
        self._concept_index = self._concepts = self._concept_x = self._edit_target = None
        if "concept" in self.access:
            rows = spread_rows(len(data.train), self.n_concept)
            self._concept_index = _frozen(rows)
            self._concepts = data.train.concepts.iloc[rows][observed].reset_index(drop=True)
            self._concept_x = _frozen(data.train.x[rows])
            self._edit_target = tuple(scenario.truth.edit_targets)
        self._predict = _black_box(subject)
        self._model = _private_copy(subject) if "internals" in self.access else None
        self._intervene = (_interventions(scenario, data, observed, "env" in self.access, self._need)
                           if "counterfactual" in self.access else None)

    def _view(self, split: Split) -> SplitView:
        # validation group labels alone are the finer level ``group_val``; ``group`` covers both splits
        level = "group_val" if split.name == "val" and "group" not in self.access else "group"
        return SplitView(split.name, _frozen(split.x), _frozen(split.y),
                         _frozen(split.env) if "env" in self.access else None,
                         _frozen(split.group) if level in self.access else None, self._need, level)

    def _need(self, level: str, what: str) -> None:
        if level not in self.access:
            raise AccessError(
                f"{what} need(s) access level {level!r}; the method declared {sorted(self.access)}"
            )
        self.used.add(level)

    @property
    def told(self) -> list[str]:
        """The routes read so far that name the spurious variable (`TELLING_ROUTES`), sorted."""
        return told_routes(self.used)

    # -- always visible: metadata --------------------------------------------------------------------

    @property
    def variables(self) -> list[str]:
        """Observed variable names (what the per-variable outputs are keyed by)."""
        return list(self._variables)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self._feature_names

    @property
    def input_map(self) -> dict[str, int] | None:
        """Variable -> input column where the rendering has one column per variable; else None."""
        return None if self._input_map is None else dict(self._input_map)

    @property
    def variable_kinds(self) -> dict[str, str]:
        return dict(self._kinds)

    @property
    def instruments(self) -> list[str]:
        """Variables the study design offers as instruments or anchors (design metadata, not truth)."""
        return list(self._instruments)

    @property
    def label_kind(self) -> str:
        """``binary`` (the subject model outputs a logit) or ``continuous`` (it outputs a prediction)."""
        return self._label_kind

    @property
    def n_environments(self) -> int:
        """Number of training environments."""
        return self._n_environments

    # -- pooled -----------------------------------------------------------------------------------

    @property
    def train(self) -> SplitView:
        return self._splits["train"]

    @property
    def val(self) -> SplitView:
        return self._splits["val"]

    def predict_logit(self, x: np.ndarray) -> np.ndarray:
        """Black-box query of the subject model: logits, shape (n,)."""
        return self._predict(x)

    # -- concept ----------------------------------------------------------------------------------

    @property
    def concept_index(self) -> np.ndarray:
        """Training-row indices of the labelled subset: ``n_concept`` rows evenly spaced over the training split,
        so every training environment is represented in proportion (the split is stored by environment)."""
        self._need("concept", "concept labels")
        return self._concept_index

    @property
    def concepts(self) -> pd.DataFrame:
        """Observed generator variables of the labelled training units ``concept_index`` (a copy)."""
        self._need("concept", "concept labels")
        return self._concepts.copy()

    @property
    def concept_x(self) -> np.ndarray:
        """Inputs of the units ``concepts`` describes, shape (n_concept, d)."""
        self._need("concept", "concept labels")
        return self._concept_x

    @property
    def edit_target(self) -> list[str]:
        """The variable(s) an edit should remove, as a benchmark user names them.

        It names the spurious variable: reading it is recorded (``told``) and the scorer leaves the job's
        detection metrics missing.
        """
        self._need("concept", "the edit target")
        self.used.add("edit_target")
        return list(self._edit_target)

    # -- internals --------------------------------------------------------------------------------

    @property
    def model(self) -> torch.nn.Module:
        """A private copy of the subject model (weights and activations)."""
        self._need("internals", "the subject model's internals")
        return self._model()

    # -- counterfactual ---------------------------------------------------------------------------

    def intervene(self, do: Mapping[str, Any], split: str = "train") -> Intervened:
        """The training (or validation) units under ``do``, same exogenous noise.

        Filtered by the declared access: inputs, labels and the observed variables (no label, no hidden
        ones); environment labels only with ``env``; never group labels.
        """
        self._need("counterfactual", "interventions")
        return self._intervene(do, split)
