"""The structural-causal-model machinery behind every scenario.

A scenario family builds an `SCM`: variables with roles and structural equations, default parameters,
environments (each a set of parameter overrides), a rendering and the truth. Sampling draws all
exogenous noise first (one vectorised draw per variable and per rendering coordinate), then evaluates
the equations in topological order, then renders. Interventions re-evaluate the same units with the same
noise: every variable that is not intervened on is recomputed from its parents, so descendants follow.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cowbench.data import ROLES, SPLITS, Dataset, Split, Truth
from cowbench.seeds import stable_hash

Arrays = Mapping[str, np.ndarray]
# equation(parent values, exogenous noise of this variable, per-row parameters) -> values, all shape (n,)
Equation = Callable[[Arrays, np.ndarray, Arrays], np.ndarray]

NOISE: dict[str, Callable[[np.random.Generator, int], np.ndarray]] = {
    "normal": lambda rng, n: rng.standard_normal(n),
    "uniform": lambda rng, n: rng.random(n),
    "laplace": lambda rng, n: rng.laplace(size=n),
}


@dataclass(frozen=True)
class Variable:
    """A node of the SCM.

    ``equation`` maps the parents' values, this variable's exogenous noise (drawn from ``noise``) and the
    per-row parameters to the variable's values; ``text`` is the equation in words for ``cowbench show``.
    """

    name: str
    role: str
    equation: Equation
    parents: tuple[str, ...] = ()
    noise: str = "normal"
    kind: str = "continuous"  # or "binary"
    text: str = ""


@dataclass(frozen=True)
class Environment:
    """Parameter overrides for the units of one environment; ``deployment`` marks the test_ood one."""

    name: str
    params: Mapping[str, float] = field(default_factory=dict)
    deployment: bool = False


class Rendering:
    """How observed variables become the model's inputs ``x`` (float32, shape (n, d))."""

    name = "rendering"

    @property
    def feature_names(self) -> tuple[str, ...]:
        raise NotImplementedError

    @property
    def input_map(self) -> dict[str, int] | None:
        """Variable -> its input column, where each variable has exactly one; else None."""
        return None

    def draw_noise(self, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
        return {}

    def render(self, values: Arrays, noise: Arrays, params: Arrays) -> np.ndarray:
        raise NotImplementedError


class IdentityRendering(Rendering):
    """``x_j = v_j + sd_j * eta_j``: one input per observed variable, with optional measurement noise.

    ``noise_sd`` maps a variable to the name of the parameter holding its measurement-noise sd.
    """

    name = "identity"

    def __init__(self, variables: tuple[str, ...], noise_sd: Mapping[str, str] | None = None):
        self.variables = tuple(variables)
        self.noise_sd = dict(noise_sd or {})

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.variables

    @property
    def input_map(self) -> dict[str, int]:
        return {v: j for j, v in enumerate(self.variables)}

    def draw_noise(self, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
        return {f"render.{v}": rng.standard_normal(n) for v in self.variables if v in self.noise_sd}

    def render(self, values: Arrays, noise: Arrays, params: Arrays) -> np.ndarray:
        x = np.empty((len(next(iter(values.values()))), len(self.variables)), dtype=np.float32)
        for j, v in enumerate(self.variables):
            col = values[v]
            if v in self.noise_sd:
                col = col + params[self.noise_sd[v]] * noise[f"render.{v}"]
            x[:, j] = col
        return x


class SCM:
    """Variables, parameters, environments, rendering, truth and split sizes of one scenario.

    Parameters
    ----------
    variables : sequence of Variable
        In any order; they are sorted topologically.
    params : mapping
        Default parameter values (floats), overridable per environment.
    environments : sequence of Environment
        The training environments (``deployment=False``) and the deployment environment.
    rendering : Rendering
    truth : Truth
    sizes : mapping
        ``n_train`` and ``n_val`` (units per training environment) and ``n_test`` (units in each test split).
    selection : callable, optional
        ``selection(values, params) -> P(unit is kept)``, shape (n,). Units are drawn from the full
        population and kept with that probability (their own exogenous uniform ``select``), until each
        environment has its size: the sample is the selected population ("photos of cows are taken on
        grass"). Interventions act on the selected units and do not re-select them.
    """

    def __init__(self, variables: tuple[Variable, ...], params: Mapping[str, float],
                 environments: tuple[Environment, ...], rendering: Rendering, truth: Truth,
                 sizes: Mapping[str, int], selection: Callable[[Arrays, Arrays], np.ndarray] | None = None):
        self.selection = selection
        self.params = dict(params)
        self.environments = tuple(environments)
        self.rendering = rendering
        self.truth = truth
        self.sizes = dict(sizes)
        self.variables = self._toposort(tuple(variables))
        self._validate()
        self._param_table = {p: np.array([env.params.get(p, default) for env in self.environments],
                                         dtype=np.float64) for p, default in self.params.items()}

    @staticmethod
    def _toposort(variables: tuple[Variable, ...]) -> tuple[Variable, ...]:
        by_name = {}
        for v in variables:
            if v.name in by_name:
                raise ValueError(f"variable {v.name!r} is declared twice")
            by_name[v.name] = v
        for v in variables:
            for p in v.parents:
                if p not in by_name:
                    raise ValueError(f"variable {v.name!r}: unknown parent {p!r}")
        order: list[Variable] = []
        state: dict[str, int] = {}  # 1 = on the stack, 2 = done

        def visit(name: str, path: tuple[str, ...]) -> None:
            if state.get(name) == 2:
                return
            if state.get(name) == 1:
                raise ValueError(f"the graph has a cycle: {' -> '.join((*path, name))}")
            state[name] = 1
            for p in by_name[name].parents:
                visit(p, (*path, name))
            state[name] = 2
            order.append(by_name[name])

        for v in variables:
            visit(v.name, ())
        return tuple(order)

    def _validate(self) -> None:
        names = [v.name for v in self.variables]
        for v in self.variables:
            if v.role not in ROLES:
                raise ValueError(f"variable {v.name!r}: role {v.role!r} is not one of {ROLES}")
            if v.noise not in NOISE:
                raise ValueError(f"variable {v.name!r}: noise {v.noise!r} is not one of {tuple(NOISE)}")
            if v.kind not in ("continuous", "binary"):
                raise ValueError(f"variable {v.name!r}: kind {v.kind!r} is not continuous or binary")
        labels = [v.name for v in self.variables if v.role == "label"]
        if len(labels) != 1:
            raise ValueError(f"an SCM needs exactly one label variable, got {labels}")
        if set(self.truth.roles) != set(names) or any(
            self.truth.roles[v.name] != v.role for v in self.variables
        ):
            raise ValueError("the truth's roles do not match the variables' roles")
        for env in self.environments:
            for p, value in env.params.items():
                if p not in self.params:
                    raise ValueError(f"environment {env.name!r}: unknown parameter {p!r}")
                if not np.isfinite(value):
                    raise ValueError(f"environment {env.name!r}: parameter {p!r} is not finite")
        if not any(e.deployment for e in self.environments) or all(e.deployment for e in self.environments):
            raise ValueError("an SCM needs at least one training and one deployment environment")
        for v in self.rendering.feature_names if self.rendering.input_map else ():
            if v not in names or self.truth.roles[v] in ("label", "hidden"):
                raise ValueError(f"the rendering shows {v!r}, which is not an observed variable")
        for key in ("n_train", "n_val", "n_test"):
            if int(self.sizes.get(key, 0)) < 1:
                raise ValueError(f"split size {key} must be a positive integer")

    # -- sampling ----------------------------------------------------------------------------------

    @property
    def label_kind(self) -> str:
        """``binary`` (classification) or ``continuous`` (regression)."""
        return next(v.kind for v in self.variables if v.role == "label")

    @property
    def train_envs(self) -> list[int]:
        return [i for i, e in enumerate(self.environments) if not e.deployment]

    @property
    def deploy_envs(self) -> list[int]:
        return [i for i, e in enumerate(self.environments) if e.deployment]

    def _env_plan(self, split: str) -> np.ndarray:
        train, deploy = self.train_envs, self.deploy_envs
        if split == "train":
            counts = {e: self.sizes["n_train"] for e in train}
        elif split == "val":
            counts = {e: self.sizes["n_val"] for e in train}
        else:
            envs = train if split in ("test_id", "test_bal") else deploy
            base, extra = divmod(self.sizes["n_test"], len(envs))
            counts = {e: base + (i < extra) for i, e in enumerate(envs)}
        return np.concatenate([np.full(n, e, dtype=np.int64) for e, n in counts.items()])

    def row_params(self, env: np.ndarray) -> dict[str, np.ndarray]:
        """Every parameter's value for each unit, shape (n,), from the units' environments."""
        return {p: table[env] for p, table in self._param_table.items()}

    def draw_exogenous(self, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
        """All exogenous noise of ``n`` units: one draw per variable, then the rendering's."""
        noise = {v.name: NOISE[v.noise](rng, n) for v in self.variables}
        noise.update(self.rendering.draw_noise(rng, n))
        return noise

    def evaluate(self, exogenous: Arrays, env: np.ndarray, do: Mapping[str, Any] | None = None
                 ) -> dict[str, np.ndarray]:
        """The structural equations in topological order; ``do`` replaces a variable's equation."""
        do = do or {}
        n = env.shape[0]
        params = self.row_params(env)
        values: dict[str, np.ndarray] = {}
        for v in self.variables:
            if v.name in do:
                values[v.name] = np.broadcast_to(np.asarray(do[v.name], dtype=np.float64), (n,)).copy()
            else:
                parents = {p: values[p] for p in v.parents}
                values[v.name] = np.asarray(v.equation(parents, exogenous[v.name], params), dtype=np.float64)
        return values

    def make_split(self, name: str, exogenous: Arrays, env: np.ndarray,
                   do: Mapping[str, Any] | None = None) -> Split:
        x, y, values = self.rendered(exogenous, env, do)
        return Split(name=name, x=x, y=y, env=env, group=self.groups(values),
                     concepts=pd.DataFrame(self.concept_columns(values, self.truth.roles)), exogenous=exogenous,
                     do=dict(do or {}))

    def rendered(self, exogenous: Arrays, env: np.ndarray, do: Mapping[str, Any] | None = None
                 ) -> tuple[np.ndarray, np.ndarray, Arrays]:
        """``(x, y, values)`` of the units under ``do``: what `make_split` computes before it builds the split's
        DataFrame (a do-query's hot path, which reads the concepts only when asked: `concept_columns`)."""
        values = self.evaluate(exogenous, env, do)
        x = self.rendering.render(values, exogenous, self.row_params(env))
        label = values[self.truth.label]
        y = label.astype(np.int64) if self.label_kind == "binary" else label.astype(np.float32)
        return x, y, values

    def concept_columns(self, values: Arrays, names: Sequence[str]) -> dict[str, np.ndarray]:
        """The concepts' columns ``names`` from evaluated ``values``: binary variables as int64, others as they are."""
        kinds = {v.name: v.kind for v in self.variables}
        return {v: (values[v].astype(np.int64) if kinds[v] == "binary" else values[v]) for v in names}

    def groups(self, values: Arrays) -> np.ndarray:
        """Group labels ``2 y + s`` (label x first spurious variable, both binarised; ``y`` alone without one)."""
        label = values[self.truth.label]
        y_bin = label.astype(np.int64) if self.label_kind == "binary" else (label > 0).astype(np.int64)
        spurious = self.truth.of_role("spurious")
        if not spurious:
            return y_bin.copy()
        s = values[spurious[0]]
        binary = next(v.kind for v in self.variables if v.name == spurious[0]) == "binary"
        return 2 * y_bin + (s > 0.5 if binary else s > 0).astype(np.int64)

    def missing_train_groups(self, seed: int = 0) -> tuple[int, ...]:
        """The group labels that no training unit has in a draw of the training split (its environments and size,
        seed ``seed``): a group whose probability is 0 by construction (``agreement_train = 1.0``) is missing from
        every draw. Made by `make_split`, so a family that defines its groups otherwise (four_groups, the unit
        tests' background attribute) is read as it labels them."""
        rng = np.random.default_rng(seed)
        env = self._env_plan("train")
        exogenous = self.draw_exogenous(rng, env.shape[0]) if self.selection is None else self._draw_selected(rng, env)
        present = set(np.unique(self.make_split("train", exogenous, env).group).tolist())
        every = range(4) if self.truth.of_role("spurious") else range(2)
        return tuple(g for g in every if g not in present)

    def _draw_selected(self, rng: np.random.Generator, env: np.ndarray) -> dict[str, np.ndarray]:
        """Exogenous noise of the selected units, ``len(env)`` of them with the given environments."""
        pieces: list[dict[str, np.ndarray]] = []
        for e in np.unique(env):
            need, kept, batch = int(np.sum(env == e)), [], None
            size = max(need, 64)
            for _ in range(1000):  # a keep rate below ~1e-4 is a bad spec, not a long wait
                batch = self.draw_exogenous(rng, size)
                batch["select"] = rng.random(size)
                env_batch = np.full(size, e, dtype=np.int64)
                prob = self.selection(self.evaluate(batch, env_batch), self.row_params(env_batch))
                keep = batch["select"] < prob
                kept.append({k: v[keep] for k, v in batch.items()})
                need -= int(keep.sum())
                if need <= 0:
                    break
                rate = max(keep.mean(), 1e-3)
                size = int(min(max(64, 1.2 * need / rate), 10_000_000))
            else:
                raise ValueError("selection keeps almost no units: check the selection parameters")
            merged = {k: np.concatenate([p[k] for p in kept]) for k in kept[0]}
            pieces.append({k: v[: int(np.sum(env == e))] for k, v in merged.items()})
        return {k: np.concatenate([p[k] for p in pieces]) for k in pieces[0]}

    def balancing_do(self, rng: np.random.Generator, exogenous: Arrays, env: np.ndarray) -> dict[str, np.ndarray]:
        """Every spurious variable set to a random permutation of its own values on these units.

        Same marginal, no association with the label or anything else: the distribution
        ``cowbench.subject.decorrelated_train`` trains the oracle on, applied to test_id-like units. The
        causal mechanism is untouched; for a continuous label this cuts the spurious mechanism.
        """
        values = self.evaluate(exogenous, env)
        return {v: rng.permutation(values[v]) for v in self.truth.of_role("spurious")}

    def sample(self, seed: int) -> Dataset:
        # SeedSequence.spawn children depend only on their index, so adding a split at the end leaves
        # the existing splits' arrays unchanged
        children = np.random.SeedSequence(int(seed)).spawn(len(SPLITS))
        splits = {}
        for name, child in zip(SPLITS, children, strict=True):
            env = self._env_plan(name)
            rng = np.random.default_rng(child)
            if self.selection is None:
                exogenous = self.draw_exogenous(rng, env.shape[0])
            else:
                exogenous = self._draw_selected(rng, env)
            do = self.balancing_do(rng, exogenous, env) if name == "test_bal" else None
            splits[name] = self.make_split(name, exogenous, env, do)
        return Dataset(seed=int(seed), **splits)


class Scenario:
    """A validated, immutable scenario: a spec (family, version, knobs) and its SCM.

    Build one with ``cowbench.make_scenario(name, **knobs)``. Two scenarios are equal when their specs
    are; ``id`` is the sha256 of the canonical JSON spec.
    """

    __slots__ = ("_id", "_scm", "_spec")

    def __init__(self, spec: Mapping[str, Any], scm: SCM):
        self._spec = copy.deepcopy(dict(spec))
        self._scm = scm
        self._id = stable_hash(self._spec)

    def __setattr__(self, name: str, value: Any) -> None:
        if hasattr(self, "_id"):
            raise AttributeError("a Scenario is immutable; make a new one with make_scenario")
        object.__setattr__(self, name, value)

    @property
    def spec(self) -> dict[str, Any]:
        return copy.deepcopy(self._spec)

    @property
    def id(self) -> str:
        return self._id

    @property
    def name(self) -> str:
        return self._spec["generator"]

    @property
    def knobs(self) -> dict[str, Any]:
        return copy.deepcopy(self._spec["knobs"])

    @property
    def truth(self) -> Truth:
        return self._scm.truth

    @property
    def variables(self) -> list[str]:
        """Observed variables (what a model sees), in declaration order."""
        return self._scm.truth.observed

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self._scm.rendering.feature_names

    @property
    def input_map(self) -> dict[str, int] | None:
        return self._scm.rendering.input_map

    @property
    def rendering(self) -> str:
        return self._scm.rendering.name

    @property
    def environments(self) -> tuple[Environment, ...]:
        return self._scm.environments

    @property
    def scm(self) -> SCM:
        return self._scm

    def kind(self, variable: str) -> str:
        """``continuous`` or ``binary``."""
        for v in self._scm.variables:
            if v.name == variable:
                return v.kind
        raise ValueError(f"unknown variable {variable!r}; known: {', '.join(self.truth.roles)}")

    def sample(self, seed: int) -> Dataset:
        """Draw the five splits; the same seed gives bit-identical arrays."""
        return self._scm.sample(seed)

    @property
    def missing_train_groups(self) -> tuple[int, ...]:
        """Group labels ``2 y + s`` that the training split lacks by construction (e.g. ``cow_separable``, whose
        ``agreement_train = (1.0, 1.0)`` leaves only 2 of 4 groups): methods that need every group cannot run.
        Read from one draw of the structural equations (`SCM.missing_train_groups`), computed once."""
        return _missing_train_groups(self)

    def intervene(self, split: Split, do: Mapping[str, Any]) -> Split:
        """The same units (same exogenous noise) under ``do``; descendants are recomputed, then re-rendered.

        ``do`` maps variable names (observed, hidden or the label) to a scalar or an array of shape (n,).
        It is merged into the intervention the split was made under (``split.do``; ``do`` wins on a shared
        name), so intervening on ``test_bal`` keeps its spurious variables permuted.
        """
        self._check_do(split, do)
        return self._scm.make_split(split.name, split.exogenous, split.env, {**split.do, **do})

    def intervened_x(self, split: Split, do: Mapping[str, Any]) -> np.ndarray:
        """``intervene(split, do).x`` without building the rest of the split (its concepts DataFrame, groups):
        the same array, for the scores' hot path, which feeds models and reads nothing else."""
        self._check_do(split, do)
        return self._scm.rendered(split.exogenous, split.env, {**split.do, **do})[0]

    def _check_do(self, split: Split, do: Mapping[str, Any]) -> None:
        n = len(split)
        for name, value in do.items():
            if name not in self.truth.roles:
                raise ValueError(f"cannot intervene on unknown variable {name!r}; "
                                 f"known: {', '.join(self.truth.roles)}")
            shape = np.shape(value)
            if shape not in ((), (n,)):
                raise ValueError(f"do[{name!r}] must be a scalar or have shape ({n},), got {shape}")
            if not np.all(np.isfinite(value)):
                raise ValueError(f"do[{name!r}] has non-finite values")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Scenario) and other._id == self._id

    def __hash__(self) -> int:
        return int(self._id[:16], 16)

    def __repr__(self) -> str:
        knobs = ", ".join(f"{k}={v!r}" for k, v in self._spec["knobs"].items())
        return f"Scenario({self.name!r}, {knobs})"


@functools.lru_cache(maxsize=256)
def _missing_train_groups(scenario: Scenario) -> tuple[int, ...]:
    return scenario.scm.missing_train_groups()
