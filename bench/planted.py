"""Planted subject networks: weights set by construction, so what every hidden unit computes is known.

A planted network is the subject model of a planted scenario (the ``cow_planted`` family): an
``nn.Sequential`` ``Linear(d, width) -> ReLU -> Linear(width, 1) -> Flatten(0)`` on the identity rendering
(one input column per observed variable), whose logit is exactly

    A * moo + B * tail + C * (grass - 1/2)   [+ D * |moo + sky|]   [+ G * (grass - 1/2) * |moo|]

with ``A, B, C`` (and ``D``, ``G``) knobs of the scenario (``planted_moo``, ``planted_tail``,
``planted_grass``, ``coef_hidden``, ``coef_interaction``). ``grass`` enters centred, so mean-ablating it
(setting it to 1/2) removes exactly its linear pathway, and the reliance is ``ace = (A, B, C, 0)`` on moo,
tail, grass, sky (with the interaction ``ace[grass] = C + G E|x_moo|`` and ``ace[moo] = A + G E[(grass - 1/2)
sign(x_moo)]``, positive since grass and moo both follow cow; the hidden feature is even, so it adds
nothing to ``ace`` in expectation, only to ``cr``).

Construction (why the logit stays exactly linear through a ReLU layer): every linear pathway is a *pair*
of units with pre-activations ``z`` and ``-z`` (``z = f . x + b``), read out with weights ``+1`` and ``-1``:
``ReLU(z) - ReLU(-z) = z``. The pathways:

four pairs ``z = R s`` with ``s = (A x_moo, B x_tail, C (x_grass - 1/2))`` and ``R`` the ``4 x 3`` matrix of
`polysemantic_embedding` (orthonormal columns), read out with ``R 1`` so the logit is ``1' s``. Pair 3 is
grass's own (loading ``sqrt(1 - p)``); pairs 1, 2, 4 mix moo and tail and carry the rest of grass. With
``p = polysemantic`` the units that read grass and a cause carry the share ``p`` of grass's pathway (0: grass
has units of its own; 1: every unit that reads grass reads moo or tail too, and pair 3 reads nothing). The
features stay orthogonal, so removing grass's direction at the hidden layer is exact at every ``p``, while
ablating the units that carry grass is exact only at ``p = 0`` (polysemantic neurons, linearly
disentangled features).

With ``superposition = m`` (``2 <= m < 4``) the pairs are instead ``z = E (x - c)`` for an ``m x 4`` embedding
``E`` whose columns, the variables' directions, are non-orthogonal and dense (Elhage et al. 2022): no unit
and no axis is one variable. ``E`` has orthonormal rows spanning a space that contains the logit's
coefficient vector ``a``, so the readout ``r = E a`` gives ``r' E = a`` exactly. The hidden feature is an
*even* pair, ``ReLU(z) + ReLU(-z) = |z|`` with ``z = x_moo + x_sky``, read with ``D``. The interaction is
the gated pair ``ReLU(+-x_moo + M x_grass - M)`` read with ``G, G`` (``M = 50``), which equals
``G x_grass |x_moo|`` exactly while ``|x_moo| < M`` (grass is binary and rendered without noise), and the even
pair ``ReLU(+-x_moo)`` read with ``-G/2`` that centres it. ``|moo|`` rather than ``moo``: the interaction
then shows in ``ace[grass]`` (``G E|x_moo|``), so a linear erasure that leaves it leaves measurable reliance.

Truth (`PlantedTruth`): per hook point, each unit's *loading* on each variable, the coefficients of the
linear pre-activation the unit thresholds (the same matrix at ``hidden.0.pre`` and ``hidden.0``; the
identity at ``input``). A unit *carries* a variable where its loading is nonzero; a variable's subspace at a
point is the span of its loading column over the units of linear (odd) pairs, the direction along which
the variable moves the activations (gated and even units carry it along no fixed direction). The
**edit oracle** is the same construction with ``C = 0`` and ``G = 0`` (the whole interaction is grass's part),
nothing else changed; under superposition ``(A, B, 0, 0)`` is not in the row space of the base embedding,
so the oracle's embedding is rebuilt by the same recipe (no edit at the hidden layer can reach ``C = 0``
exactly there: that is what superposition costs).

References
----------
Elhage, N. et al. (2022). Toy models of superposition. Transformer Circuits Thread.
Olah, C. et al. (2020). Zoom in: an introduction to circuits. Distill. (polysemantic neurons)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from torch import nn

    from cowbench.generators.scm import Scenario

# the construction's version: the cow_planted family's version is this, so changing the construction changes
# every planted scenario's spec and job ids
PLANTED_VERSION = "1"
PLANTED_KNOBS = ("planted_moo", "planted_tail", "planted_grass", "polysemantic", "superposition",
                 "hidden_feature", "coef_hidden", "interaction", "coef_interaction")
VARIABLES = ("moo", "tail", "grass", "sky")
INTERACTION_GATE = 50.0  # M: the gate that switches the interaction pair on only where grass = 1
EMBED_SEED = 0  # the superposition embedding belongs to the scenario: one constant seed
_TOL = 1e-12


@dataclass(frozen=True)
class PlantedSpec:
    """What a planted network computes, read from a planted scenario's knobs."""

    coef: Mapping[str, float]  # A, B, C on moo, tail, grass
    polysemantic: float = 0.0
    superposition: int = 0
    hidden: float = 0.0  # D, the hidden feature's coefficient (0: no hidden feature)
    interaction: float = 0.0  # G (0: no interaction)
    target: tuple[str, ...] = ("grass",)

    @classmethod
    def from_scenario(cls, scn: Scenario) -> PlantedSpec:
        knobs = scn.knobs
        missing = [k for k in PLANTED_KNOBS if k not in knobs]
        if missing:
            raise ValueError(f"arch 'planted' needs a planted scenario (the cow_planted family and its presets); "
                             f"scenario {scn.name!r} has no knob(s) {', '.join(missing)}")
        if scn.rendering != "identity" or tuple(scn.feature_names) != VARIABLES:
            raise ValueError(f"arch 'planted' needs the identity rendering of {', '.join(VARIABLES)}; scenario "
                             f"{scn.name!r} renders {scn.rendering} with inputs {list(scn.feature_names)}")
        return cls(coef={"moo": knobs["planted_moo"], "tail": knobs["planted_tail"],
                         "grass": knobs["planted_grass"]},
                   polysemantic=knobs["polysemantic"], superposition=knobs["superposition"],
                   hidden=knobs["coef_hidden"] if knobs["hidden_feature"] else 0.0,
                   interaction=knobs["coef_interaction"] if knobs["interaction"] else 0.0,
                   target=tuple(scn.truth.edit_targets))

    def oracle(self) -> PlantedSpec:
        """The same network with grass's coefficient and the (grass) interaction set to 0."""
        return PlantedSpec({**self.coef, "grass": 0.0}, self.polysemantic, self.superposition, self.hidden, 0.0,
                           self.target)


@dataclass(frozen=True)
class PlantedTruth:
    """Unit- and direction-level truth of a planted network (kept by the harness, never handed to methods).

    ``loadings[point]`` is ``(width, n_variables)``: each unit's loading on each of ``variables``.
    """

    variables: tuple[str, ...]
    target: tuple[str, ...]
    loadings: Mapping[str, np.ndarray] = field(repr=False)
    # per point, the units of linear pathways (odd pairs): only they give a variable a fixed direction
    linear: Mapping[str, np.ndarray] = field(default_factory=dict, repr=False)

    def _columns(self, point: str, variables: tuple[str, ...] | list[str]) -> np.ndarray:
        if point not in self.loadings:
            raise ValueError(f"no unit truth at hook point {point!r}; known: {', '.join(self.loadings)}")
        unknown = set(variables) - set(self.variables)
        if unknown:
            raise ValueError(f"unknown variable(s) {sorted(unknown)}; known: {', '.join(self.variables)}")
        return self.loadings[point][:, [self.variables.index(v) for v in variables]]

    def carriers(self, point: str, variables: tuple[str, ...] | list[str] | None = None) -> np.ndarray:
        """Boolean ``(width,)``: the units whose loading on any of ``variables`` (default: the target) is nonzero."""
        cols = self._columns(point, self.target if variables is None else tuple(variables))
        return np.any(np.abs(cols) > _TOL, axis=1)

    def subspace(self, point: str, variables: tuple[str, ...] | list[str] | None = None) -> np.ndarray:
        """Orthonormal basis ``(width, k)`` of the span of the loading columns of ``variables`` (default: target),
        restricted to the units of linear pathways (gated or even units carry a variable along no fixed
        direction: they count as carriers, not in the subspace)."""
        cols = self._columns(point, self.target if variables is None else tuple(variables)).copy()
        if point in self.linear:
            cols[~self.linear[point]] = 0.0
        u, s, _ = np.linalg.svd(cols, full_matrices=False)
        return u[:, s > 1e-10 * max(1.0, float(s.max(initial=0.0)))]


def _units(spec: PlantedSpec) -> list[tuple[np.ndarray, float, float, bool]]:
    """The hidden units as ``(f, b, readout, linear)``: unit ``ReLU(f . x + b)`` read with weight ``readout``.

    They come in pairs: an odd pair ``(f, b, r), (-f, -b, -r)`` computes ``r (f . x + b)`` (``linear``: its
    activations move along a fixed direction as a variable moves); the even pairs (hidden feature, interaction)
    compute ``r |f . x + b|`` or gate moo by grass, which reads grass but along no fixed direction.
    """
    a, b, c = spec.coef["moo"], spec.coef["tail"], spec.coef["grass"]
    g = spec.interaction
    e = {v: np.eye(len(VARIABLES))[i] for i, v in enumerate(VARIABLES)}
    odd: list[tuple[np.ndarray, float, float]] = []  # (f, b, r) of s_v = coef_v x_v, s_grass = C (x_grass - 1/2)
    if spec.superposition:
        coef = np.array([a, b, c, 0.0])
        emb = superposition_embedding(coef, spec.superposition)
        centre = 0.5 * e["grass"]
        odd += [(emb[j], -float(emb[j] @ centre), float(emb[j] @ coef)) for j in range(emb.shape[0])]
    else:
        mix = polysemantic_embedding(spec.polysemantic)  # (4 units, 3 features), orthonormal columns
        for row in mix:
            f = row[0] * a * e["moo"] + row[1] * b * e["tail"] + row[2] * c * e["grass"]
            odd.append((f, -row[2] * c / 2, float(row.sum())))  # readout R 1: the logit is s_moo + s_tail + s_grass
    units = []
    for f, bias, r in odd:
        units += [(f, bias, r, True), (-f, -bias, -r, True)]
    if spec.hidden:
        units += [(e["moo"] + e["sky"], 0.0, spec.hidden, False), (-e["moo"] - e["sky"], 0.0, spec.hidden, False)]
    if g:
        # ReLU(x_moo + M x_grass - M) + ReLU(-x_moo + M x_grass - M) = x_grass |x_moo| while |x_moo| < M, and
        # the pair ReLU(x_moo) + ReLU(-x_moo) read with -G/2 centres it: G (x_grass - 1/2) |x_moo|
        gate = INTERACTION_GATE * e["grass"]
        units += [(e["moo"] + gate, -INTERACTION_GATE, g, False), (-e["moo"] + gate, -INTERACTION_GATE, g, False),
                  (e["moo"], 0.0, -g / 2, False), (-e["moo"], 0.0, -g / 2, False)]
    return units


def polysemantic_embedding(p: float) -> np.ndarray:
    """The ``4 x 3`` unit-by-feature matrix ``R`` (orthonormal columns moo, tail, grass) of ``polysemantic = p``.

    Unit 3 (index 2) is grass's own, loading ``sqrt(1 - p)``; units 1, 2 and 4 mix moo and tail (columns
    ``(1, -1, 0) / sqrt 2`` and ``(1, 1, -2) / sqrt 6`` there) and carry grass's other share along
    ``sqrt(p / 3) (1, 1, 1)``: so the units that read grass and a cause hold the share ``p`` of grass's squared
    loading and of its logit contribution, and the columns stay orthonormal (a linear edit that removes
    grass's direction exactly exists at every p; a unit ablation exists only at p = 0).
    """
    mixed = np.array([0, 1, 3])
    r = np.zeros((4, 3))
    r[mixed, 0] = np.array([1.0, -1.0, 0.0]) / np.sqrt(2)
    r[mixed, 1] = np.array([1.0, 1.0, -2.0]) / np.sqrt(6)
    r[mixed, 2] = np.sqrt(p / 3)
    r[2, 2] = np.sqrt(1 - p)
    return r


def superposition_embedding(coef: np.ndarray, m: int, seed: int = EMBED_SEED) -> np.ndarray:
    """An ``m x n`` embedding with orthonormal rows whose row space contains ``coef``, columns dense.

    Its null space is drawn at random orthogonal to ``coef`` (fixed ``seed``), and its rows are a random
    rotation of an orthonormal basis of the complement: the columns (the variables' directions) then have
    Gram matrix ``I - N N'``, non-orthogonal, and no row or column is an axis.
    """
    n = coef.shape[0]
    if not 2 <= m < n:
        raise ValueError(f"superposition needs 2 <= m < {n} hidden directions, got {m}")
    rng = np.random.default_rng(seed)
    unit = coef / np.linalg.norm(coef) if np.linalg.norm(coef) > 0 else np.zeros(n)
    for _ in range(100):  # redraw the (rare) null space that leaves a variable orthogonal to the others
        null = rng.standard_normal((n, n - m))
        null -= np.outer(unit, unit @ null)
        null, _ = np.linalg.qr(null)
        complement = np.linalg.svd(np.eye(n) - null @ null.T)[0][:, :m]
        rotation, _ = np.linalg.qr(rng.standard_normal((m, m)))
        emb = rotation @ complement.T
        gram = emb.T @ emb
        if np.all(np.abs(emb) > 0.05) and np.all(np.abs(gram - np.diag(np.diag(gram))) + np.eye(n) > 0.02):
            return emb
    raise RuntimeError("could not draw a dense superposition embedding")  # pragma: no cover


def build_planted(spec: PlantedSpec) -> tuple[nn.Sequential, PlantedTruth]:
    """The planted network of ``spec`` and its truth (see the module docstring)."""
    import torch  # here, not at the top: scenario families import this module, and importing cowbench stays torch-free
    from torch import nn

    units = _units(spec)
    d, width = len(VARIABLES), len(units)
    w1, b1, w2 = np.zeros((width, d)), np.zeros(width), np.zeros((1, width))
    for k, (f, b, r, _) in enumerate(units):
        w1[k], b1[k], w2[0, k] = f, b, r
    linear = np.array([u[3] for u in units])
    first, second = nn.Linear(d, width), nn.Linear(width, 1)
    with torch.no_grad():
        first.weight.copy_(torch.as_tensor(w1))
        first.bias.copy_(torch.as_tensor(b1))
        second.weight.copy_(torch.as_tensor(w2))
        second.bias.zero_()
    model = nn.Sequential(first, nn.ReLU(), second, nn.Flatten(0)).eval()
    loadings = np.where(np.abs(w1) > _TOL, w1, 0.0)
    truth = PlantedTruth(VARIABLES, tuple(spec.target),
                         {"input": np.eye(d), "hidden.0.pre": loadings, "hidden.0": loadings},
                         {"input": np.ones(d, dtype=bool), "hidden.0.pre": linear, "hidden.0": linear})
    return model, truth


def planted_logit(spec: PlantedSpec, x: np.ndarray) -> np.ndarray:
    """The closed form the planted network computes, on inputs ``x`` (columns moo, tail, grass, sky)."""
    x = np.asarray(x, dtype=np.float64)
    moo, tail, grass, sky = x.T
    out = spec.coef["moo"] * moo + spec.coef["tail"] * tail + spec.coef["grass"] * (grass - 0.5)
    return out + spec.hidden * np.abs(moo + sky) + spec.interaction * (grass - 0.5) * np.abs(moo)


def planted_models(scn: Scenario) -> tuple[nn.Sequential, nn.Sequential, PlantedTruth]:
    """Subject, edit oracle and the subject's truth of a planted scenario."""
    spec = PlantedSpec.from_scenario(scn)
    subject, truth = build_planted(spec)
    oracle, _ = build_planted(spec.oracle())
    return subject, oracle, truth


def describe(spec: PlantedSpec) -> dict[str, Any]:
    """A plain summary of the construction (for reports and ``cowbench show``)."""
    return {"coef": dict(spec.coef), "polysemantic": spec.polysemantic, "superposition": spec.superposition,
            "hidden": spec.hidden, "interaction": spec.interaction, "target": list(spec.target)}
