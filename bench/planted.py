"""Planted subject networks: weights set by construction, so what every hidden unit computes is known.

A planted network is the subject model of a planted scenario (the ``cow_planted`` family): an
``nn.Sequential`` ``Linear(d, width) -> ReLU -> Linear(width, 1) -> Flatten(0)`` on the identity rendering
(one input column per observed variable, in whatever order the scenario renders them: every weight is
placed by the variable's name), whose logit is exactly

    A * moo + B * tail + C * (grass - 1/2)   [+ D * max(|moo + sky|, tau)]   [+ G * (grass - 1/2) * |moo|]

with ``A, B, C`` (and ``D``, ``G``) knobs of the scenario (``planted_moo``, ``planted_tail``,
``planted_grass``, ``coef_hidden``, ``coef_interaction``) and ``tau`` a floor drawn per network (below).
``grass`` enters centred, so setting it to 1/2 removes exactly its linear pathway, and the reliance is
``ace = (A, B, C, 0)`` on moo, tail, grass, sky (with the interaction ``ace[grass] = C + G E|x_moo|`` and
``ace[moo] = A + G E[(grass - 1/2) sign(x_moo)]``; the hidden feature is even in ``moo + sky``, so it adds
nothing to ``ace`` where ``moo + sky`` is symmetric about 0, only to ``cr``). Extra nuisance variables
(``sky2, ...``, knob ``n_nuisance``) have coefficient 0.

Nothing in the weights alone points at grass (version 2; issue 15 section 5: in version 1 grass was centred
through the first-layer bias of its own units, so ``|bias|`` localized it, and its coefficient 4 against 1
made its units the largest). Every unit is built in a *raw* form ``r ReLU(w . x + b)`` and then written as
``(r |w| / s) ReLU(s (w . x + b) / |w|)``, exact for any ``s > 0`` (ReLU is positively homogeneous), with:

* **equalized norms**: every unit's weight row has norm ``s``, a scale drawn log-uniform in [1/2, 2] per
  pair of units (the two pairs of a mixed group below share theirs, so the columns stay orthogonal under the
  scales: ``sum_j s_j^2 R_ju R_jv / |R_j|^2 = 0``), whatever it reads;
* **random offsets**: each linear pair reads ``u . x + o`` with ``o`` uniform in (-1, 0) (in units of its
  unit-norm direction ``u``), on every pair alike; the constants the offsets add, and grass's centring
  ``-C/2``, are folded into the *second* layer's bias (one number). The range keeps both units of a pair
  that reads a binary variable alone alive on the data (``u . x`` is 0 or 1 there: one fires at 0, the
  other at 1), so an activation-based localizer sees every carrier;
* **random readouts**: each linear pair's readout has a random part that cancels exactly in the logit
  (below), so no unit's gain ``||w_in|| |w_out|`` follows its role;
* **random order**: the hidden units are permuted at random;
* **gains that do not follow the coefficients**: each unit's gain ``||w_in|| ||w_out||`` is dominated by the
  readouts' random part (scale ``readout_noise``), so grass's units are not the largest although ``C = 4``
  exceeds ``A = B = 1`` by default.

What the weights still show is the *function* they compute: the network's input gradient (a weights-only
computation) is largest on grass's column at the defaults, and the first layer's weights on that column
then name grass's units. A binary shortcut has to have ``C/2`` near the causes' spread to cost measurable
balanced accuracy (at ``C = 1`` or ``2`` the oracle's gain on ``test_bal`` is under 3 standard errors and
``edit_score`` is missing), so the defaults keep ``C = 4``; with ``planted_grass`` in the causes' range that
route closes too, and the edit score goes.

The draws come from ``seed`` (`planted_models`; per replicate where the harness passes one). The same draws
build the edit oracle, so the subject and the oracle differ only where ``C`` and ``G`` enter.

Linear pathways (``superposition = 0``). Features ``F = (moo, tail, grass)`` with coefficients
``c = (A, B, C)``. The pairs are the rows of a matrix ``R`` (pairs x 3) with orthonormal columns, built the
same way for every variable: *own* rows, two per variable, loading ``sqrt((1 - p)/2)`` on it alone; *mixed*
rows, two per unordered pair ``{u, v}`` of features, loading ``(b, b)`` and ``(b, -b)`` on ``(u, v)`` with
``b = sqrt(p)/2`` (which of the two gets the minus is drawn). Each column then has squared norm
``(1 - p) + 4 b^2 = 1`` with the share ``p = polysemantic`` in rows that also read another feature, and two
columns meet only on their mixed rows, where ``b^2 - b^2 = 0``. The pair of row ``j`` reads
``z_j = R_j . x`` (raw direction ``R_j`` over F's input columns) through the two units ``ReLU(z + o|R_j|)``
and ``ReLU(-z - o|R_j|)`` read with ``+rho_j, -rho_j``: ``ReLU(y) - ReLU(-y) = y``, so the pair adds
``rho_j (R_j . x) + rho_j o |R_j|`` to the logit. The readout is ``rho = R c + n`` with ``n`` orthogonal to
the columns of ``R`` within the own rows and within the mixed rows separately (a Gaussian projected there,
scale ``readout_noise``), so ``R' rho = c``: the logit is ``c . x`` plus constants, exactly, and the share of
grass's logit coefficient carried by mixed rows is ``p`` exactly (within a block ``R_b' n_b = 0``). At
``p = 0`` grass has units of its own (4 of them); at ``p = 1`` every unit that reads grass reads a cause
too. Removing grass's direction at the hidden layer is exact at every ``p`` (the columns stay orthonormal);
ablating the units that carry grass is exact only at ``p = 0``.

With ``superposition = m`` the pairs are instead ``z_j = E'_j . x`` for an ``m x n`` embedding ``E' = E
diag(w)`` of all ``n`` observed variables: ``E`` has orthonormal rows whose span contains ``a / w`` (``a``
the logit's coefficients over the variables, ``w`` the variables' importances), drawn at random with dense
columns, so ``r = E (a / w)`` gives ``r' E' = a`` exactly; no unit and no axis is one variable, and with
``n > 2m`` there are more features than hidden units (Elhage et al. 2022). ``feature_importance = q``:
the variables' embedding norms are ``q^0, q^1, ...`` in an order drawn per network (the important features
take more of the hidden space); the causes' and the nuisances' sparsity is the data's (``sparsity``).
The offsets, scales and order are drawn as above; there is no readout noise (the rows span the space).

The hidden feature is an *even* pair ``ReLU(y + t) + ReLU(-y + t) = max(|y|, t) + t`` with ``y`` along
``moo + sky`` and ``t = tau / sqrt 2`` drawn uniform in (0, 1) like the offsets (a zero bias would mark its
units), twice, read with ``D/2 + k`` and ``D/2 - k`` (``k`` normal with sd ``readout_noise / sqrt 8``, so the
units' gains look like the linear ones'); ``-D tau`` goes to the output bias: ``D max(|moo + sky|, tau)``. The
interaction is four gated units, ``ReLU(+-x_moo + M x_grass - M)`` read with ``G/2`` (on where grass = 1) and
``ReLU(+-x_moo - M x_grass)`` read with ``-G/2`` (on where grass = 0), ``M = 20``: together exactly
``G (x_grass - 1/2) |x_moo|`` while ``|x_moo| < M`` (grass is binary and rendered without noise; ``x_moo`` has
sd about 1.4). ``|moo|`` rather than ``moo``: the interaction then shows in ``ace[grass]`` (``G E|x_moo|``),
so a linear erasure that leaves it leaves measurable reliance. The gates' weight ``M`` on grass makes their
gain about ``G M / 2``; where the interaction is on, ``readout_noise`` grows with it so that the linear
pairs' gains cover the gates'.

Truth (`PlantedTruth`): per hook point, each unit's *loading* on each variable, the coefficients of the
linear pre-activation the unit thresholds (the first layer's weight matrix at ``hidden.0.pre`` and
``hidden.0``; the identity at ``input``). A unit *carries* a variable where its loading is nonzero; a
variable's subspace at a point is the span of its loading column over the units of linear (odd) pairs, the
direction along which the variable moves the activations (gated and even units carry it along no fixed
direction). `PlantedTruth.feature_directions` gives every variable's direction at a point (the rows of the
loading matrix's transpose: ``pre-activation = x @ directions + bias`` exactly at ``hidden.0.pre``). The
**edit oracle** is the same construction and draws with ``C = 0`` and ``G = 0`` (the whole interaction is
grass's part; its units stay with readout 0), nothing else changed; under superposition ``a`` with ``C = 0``
is not in the row space of the base embedding, so the oracle's embedding is rebuilt by the same recipe from
the same draws (no edit at the hidden layer can reach ``C = 0`` exactly there: that is what superposition
costs). Zero-ablating grass's own units (``p = 0``) removes its pathway and the constant its offsets add: the
oracle's logit plus a constant; setting them to their values at ``grass = 1/2`` is the oracle exactly.

References
----------
Elhage, N. et al. (2022). Toy models of superposition. Transformer Circuits Thread.
Olah, C. et al. (2020). Zoom in: an introduction to circuits. Distill. (polysemantic neurons)
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from cowbench.seeds import stable_int

if TYPE_CHECKING:
    from torch import nn

    from cowbench.generators.scm import Scenario

# the construction's version: the cow_planted family's version is this, so changing the construction changes
# every planted scenario's spec and job ids
PLANTED_VERSION = "2"
PLANTED_KNOBS = ("planted_moo", "planted_tail", "planted_grass", "polysemantic", "superposition",
                 "hidden_feature", "coef_hidden", "interaction", "coef_interaction", "feature_importance")
VARIABLES = ("moo", "tail", "grass", "sky")  # the named variables every planted network reads
FEATURES = ("moo", "tail", "grass")  # the variables with a coefficient in the logit
INTERACTION_GATE = 20.0  # M: the gate that switches the interaction units on by grass
SCALE_RANGE = (0.5, 2.0)  # a pair's weight-row norm, drawn log-uniform
OFFSET = 1.0  # a linear pair's offset, uniform in (-OFFSET, 0) along its unit direction
NOISE_PER_GAIN = 2.0  # readout noise scale per unit of the largest pathway gain
_TOL = 1e-12
# independent random streams (one per kind of draw), so a draw never depends on the coefficients
_STREAMS = {"scale": 1, "offset": 2, "noise": 3, "sign": 4, "embed": 5, "importance": 6, "floor": 7, "order": 8,
            "hidden": 9}


def _rng(seed: int, stream: str) -> np.random.Generator:
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, _STREAMS[stream]])


@dataclass(frozen=True)
class PlantedSpec:
    """What a planted network computes, read from a planted scenario's knobs (and its seed)."""

    coef: Mapping[str, float]  # A, B, C on moo, tail, grass
    polysemantic: float = 0.0
    superposition: int = 0
    hidden: float = 0.0  # D, the hidden feature's coefficient (0: no hidden feature)
    interaction: float = 0.0  # G (0: no interaction)
    target: tuple[str, ...] = ("grass",)
    variables: tuple[str, ...] = VARIABLES  # the input columns, in the rendering's order
    importance: float = 1.0  # q: the variables' embedding norms under superposition are q^0, q^1, ...
    seed: int = 0
    readout_noise: float = 0.0  # scale of the readouts' cancelling random part (from the subject's knobs)

    @classmethod
    def from_scenario(cls, scn: Scenario, seed: int | None = None) -> PlantedSpec:
        """The spec of a planted scenario; ``seed`` draws the network (default: one derived from the scenario)."""
        knobs = scn.knobs
        missing = [k for k in PLANTED_KNOBS if k not in knobs]
        if missing:
            raise ValueError(f"arch 'planted' needs a planted scenario (the cow_planted family and its presets); "
                             f"scenario {scn.name!r} has no knob(s) {', '.join(missing)}")
        names = tuple(scn.feature_names)
        extra = [v for v in names if v not in VARIABLES and scn.truth.roles.get(v) != "nuisance"]
        if scn.rendering != "identity" or not set(VARIABLES) <= set(names) or extra:
            raise ValueError(f"arch 'planted' needs the identity rendering of {', '.join(VARIABLES)} (and nuisance "
                             f"variables); scenario {scn.name!r} renders {scn.rendering} with inputs {list(names)}")
        if seed is None:
            seed = stable_int(["planted", scn.spec]) & 0xFFFFFFFF
        spec = cls(coef={"moo": knobs["planted_moo"], "tail": knobs["planted_tail"],
                         "grass": knobs["planted_grass"]},
                   polysemantic=knobs["polysemantic"], superposition=knobs["superposition"],
                   hidden=knobs["coef_hidden"] if knobs["hidden_feature"] else 0.0,
                   interaction=knobs["coef_interaction"] if knobs["interaction"] else 0.0,
                   target=tuple(scn.truth.edit_targets), variables=names,
                   importance=knobs["feature_importance"], seed=int(seed))
        return replace(spec, readout_noise=spec.noise_scale())

    def noise_scale(self) -> float:
        """The readouts' random part's scale: ``NOISE_PER_GAIN max |c|``, and where the interaction is on at least
        the scale at which the linear units' median gain equals the gates' gain ``|G| sqrt(1 + M^2) / 2``.

        An own row's gain is ``|R_j| |rho_j|`` with ``|R_j| = sqrt(1/2)`` and ``rho_j``'s random part normal with
        sd ``sigma / sqrt 2`` (two rows per variable): median ``0.6745 sigma / 2``.
        """
        sigma = NOISE_PER_GAIN * max(abs(float(v)) for v in self.coef.values())
        if self.interaction:
            sigma = max(sigma, abs(self.interaction) * np.hypot(1.0, INTERACTION_GATE) / 2 / (0.6745 / 2))
        return float(sigma)

    def oracle(self) -> PlantedSpec:
        """The same network and draws with grass's coefficient and the (grass) interaction set to 0."""
        return _OracleSpec.of(self)


@dataclass(frozen=True)
class _OracleSpec(PlantedSpec):
    """An oracle spec: the interaction's units are kept (readout 0) so the draws and the width match."""

    interaction_units: bool = False

    @classmethod
    def of(cls, spec: PlantedSpec) -> _OracleSpec:
        fields = {k: getattr(spec, k) for k in PlantedSpec.__dataclass_fields__}
        fields.update(coef={**spec.coef, "grass": 0.0}, interaction=0.0)
        return cls(**fields, interaction_units=bool(spec.interaction) or getattr(spec, "interaction_units", False))

    def oracle(self) -> PlantedSpec:
        return self


@dataclass(frozen=True)
class PlantedTruth:
    """Unit- and direction-level truth of a planted network (kept by the harness, never handed to methods).

    ``loadings[point]`` is ``(width, n_variables)``: each unit's loading on each of ``variables``.
    ``hidden_floor`` is the hidden feature's ``tau`` (the logit uses ``D max(|moo + sky|, tau)``).
    """

    variables: tuple[str, ...]
    target: tuple[str, ...]
    loadings: Mapping[str, np.ndarray] = field(repr=False)
    # per point, the units of linear pathways (odd pairs): only they give a variable a fixed direction
    linear: Mapping[str, np.ndarray] = field(default_factory=dict, repr=False)
    hidden_floor: float = 0.0

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The names of the rows of `feature_directions`: the observed variables, in input column order."""
        return self.variables

    def feature_directions(self, point: str) -> np.ndarray:
        """``(n_features, width)``: each variable's exact direction at ``point`` (rows named `feature_names`).

        At ``input`` the identity; at ``hidden.0.pre`` the first layer's weight columns, so the pre-activations
        are ``x @ feature_directions + bias`` exactly; at ``hidden.0`` the same rows: the direction along which
        the variable moves the units it drives (the post-ReLU activations are those pre-activations thresholded
        unit by unit). Only the named variables are features here: the hidden feature ``max(|moo + sky|, tau)``
        and the gated interaction are nonlinear in the inputs and have no fixed direction (they are in the
        units' truth as carriers: `linear` False). Scoring found directions by maximum absolute cosine with
        these rows (MMCS) is scale-free: the rows' norms carry each feature's embedding norm (importance).
        """
        if point not in self.loadings:
            raise ValueError(f"no feature directions at hook point {point!r}; known: {', '.join(self.loadings)}")
        return np.array(self.loadings[point].T, dtype=np.float64)

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


@dataclass
class _Unit:
    """One hidden unit in raw form, ``readout * ReLU(w . x + b)``, and the pair it belongs to."""

    w: np.ndarray
    b: float
    readout: float
    pair: int  # the scale group: units that share a drawn norm
    linear: bool


def polysemantic_rows(p: float, signs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows ``R`` (pairs x 3, orthonormal columns moo, tail, grass) of ``polysemantic = p``, and each row's
    block (0: own, 1: mixed). ``signs[k]`` picks which feature of the k-th unordered pair gets the minus."""
    rows, blocks = [], []
    if p < 1:
        for v in range(3):
            for _ in range(2):
                row = np.zeros(3)
                row[v] = np.sqrt((1 - p) / 2)
                rows.append(row)
                blocks.append(0)
    if p > 0:
        b = np.sqrt(p) / 2
        for k, (u, v) in enumerate(itertools.combinations(range(3), 2)):
            minus = v if signs[k] else u
            for sign in (1.0, -1.0):
                row = np.zeros(3)
                row[u] = row[v] = b
                row[minus] *= sign
                rows.append(row)
                blocks.append(1)
    return np.array(rows), np.array(blocks)


def superposition_embedding(coef: np.ndarray, m: int, seed: int = 0) -> np.ndarray:
    """An ``m x n`` embedding with orthonormal rows whose row space contains ``coef``, columns dense.

    Its null space is drawn at random orthogonal to ``coef`` (``seed``), and its rows are a random rotation of
    an orthonormal basis of the complement: the columns (the variables' directions) then have Gram matrix
    ``I - N N'``, non-orthogonal, and no row or column is an axis.
    """
    n = coef.shape[0]
    if not 2 <= m < n:
        raise ValueError(f"superposition needs 2 <= m < {n} hidden directions, got {m}")
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, _STREAMS["embed"]])
    unit = coef / np.linalg.norm(coef) if np.linalg.norm(coef) > 0 else np.zeros(n)
    for _ in range(1000):  # redraw the (rare) null space that leaves a variable orthogonal to the others
        null = rng.standard_normal((n, n - m))
        null -= np.outer(unit, unit @ null)
        null, _ = np.linalg.qr(null)
        complement = np.linalg.svd(np.eye(n) - null @ null.T)[0][:, :m]
        rotation, _ = np.linalg.qr(rng.standard_normal((m, m)))
        emb = rotation @ complement.T
        gram = emb.T @ emb
        if np.all(np.abs(emb) > 0.02) and np.all(np.abs(gram - np.diag(np.diag(gram))) + np.eye(n) > 0.01):
            return emb
    raise RuntimeError("could not draw a dense superposition embedding")  # pragma: no cover


def importances(spec: PlantedSpec) -> np.ndarray:
    """The variables' embedding norms under superposition: ``q^0, q^1, ...`` in an order drawn per network."""
    order = _rng(spec.seed, "importance").permutation(len(spec.variables))
    return float(spec.importance) ** order.astype(np.float64)


def hidden_floor(spec: PlantedSpec) -> float:
    """``tau``: the hidden feature is ``max(|moo + sky|, tau)``, ``tau / sqrt 2`` drawn uniform in (0, 1)."""
    return float(np.sqrt(2.0) * _rng(spec.seed, "floor").uniform(0.0, OFFSET))


def _units(spec: PlantedSpec) -> tuple[list[_Unit], float]:
    """The hidden units in raw form, and the output bias that makes the logit the closed form."""
    variables = spec.variables
    e = {v: np.eye(len(variables))[i] for i, v in enumerate(variables)}
    c = np.array([spec.coef[v] for v in FEATURES], dtype=np.float64)
    units: list[_Unit] = []
    bias_out = -spec.coef["grass"] / 2  # grass's centring, in the second layer
    # (raw direction over the inputs, readout) of each linear pair
    pairs: list[tuple[np.ndarray, float]] = []
    if spec.superposition:
        a = np.array([spec.coef.get(v, 0.0) if v in FEATURES else 0.0 for v in variables])
        w = importances(spec)
        emb = superposition_embedding(a / w, spec.superposition, spec.seed)
        readout = emb @ (a / w)
        pairs = [(emb[j] * w, float(readout[j])) for j in range(emb.shape[0])]
        groups = list(range(len(pairs)))
    else:
        signs = _rng(spec.seed, "sign").random(3) < 0.5
        r, blocks = polysemantic_rows(spec.polysemantic, signs)
        gauss = _rng(spec.seed, "noise").standard_normal(r.shape[0])
        noise = np.zeros(r.shape[0])
        for blk in (0, 1):  # the random part of the readout: orthogonal to R's columns within each block
            rows = blocks == blk
            if rows.any():
                q = np.linalg.qr(r[rows])[0]
                noise[rows] = gauss[rows] - q @ (q.T @ gauss[rows])
        rho = r @ c + spec.readout_noise * noise
        basis = np.array([e[v] for v in FEATURES])  # (3, n_variables)
        pairs = [(r[j] @ basis, float(rho[j])) for j in range(r.shape[0])]
        # the two rows of a mixed group share their norm: the columns stay orthogonal under the unit scales
        # (sum_j s_j^2 R_ju R_jv / |R_j|^2 = 0), so removing grass's loading direction removes grass alone
        groups = [j if blocks[j] == 0 else int(np.flatnonzero(blocks == 1)[0]) + (j - int(np.flatnonzero(
            blocks == 1)[0])) // 2 * 2 for j in range(r.shape[0])]
    offsets = _rng(spec.seed, "offset").uniform(-OFFSET, 0.0, len(pairs))
    for j, ((w, rho), o) in enumerate(zip(pairs, offsets, strict=True)):
        norm = float(np.linalg.norm(w))
        group = groups[j]
        units += [_Unit(w, o * norm, rho, group, True), _Unit(-w, -o * norm, -rho, group, True)]
        bias_out -= rho * o * norm  # the pair adds rho (w . x + o |w|)
    pair = max(groups, default=-1) + 1
    if spec.hidden:
        # ReLU(y + t) + ReLU(-y + t) = max(|y|, t) + t with y = (moo + sky)/sqrt 2 -> D max(|moo + sky|, tau); two
        # such pairs read with D/2 + k and D/2 - k (k random, like the linear readouts' cancelling part: a fixed
        # small gain would mark these units)
        d = e["moo"] + e["sky"]
        t = hidden_floor(spec)  # on the raw scale of moo + sky (|d| = sqrt 2): t_raw = tau
        k = float(_rng(spec.seed, "hidden").standard_normal()) * spec.readout_noise / (2 * np.sqrt(2.0))
        for part in (spec.hidden / 2 + k, spec.hidden / 2 - k):
            units += [_Unit(d, t, part, pair, False), _Unit(-d, t, part, pair, False)]
            pair += 1
        bias_out -= spec.hidden * t
    if spec.interaction or getattr(spec, "interaction_units", False):
        g, gate = spec.interaction, INTERACTION_GATE * e["grass"]
        # ReLU(+-x_moo + M x_grass - M) = x_grass ReLU(+-x_moo) and ReLU(+-x_moo - M x_grass) = (1 - x_grass) ...,
        # while |x_moo| < M: read with +G/2 and -G/2 they sum to G (x_grass - 1/2) |x_moo|
        units += [_Unit(e["moo"] + gate, -INTERACTION_GATE, g / 2, pair, False),
                  _Unit(-e["moo"] + gate, -INTERACTION_GATE, g / 2, pair, False),
                  _Unit(e["moo"] - gate, 0.0, -g / 2, pair + 1, False),
                  _Unit(-e["moo"] - gate, 0.0, -g / 2, pair + 1, False)]
    return units, bias_out


def build_planted(spec: PlantedSpec) -> tuple[nn.Sequential, PlantedTruth]:
    """The planted network of ``spec`` and its truth (see the module docstring)."""
    import torch  # here, not at the top: scenario families import this module, and importing cowbench stays torch-free
    from torch import nn

    units, bias_out = _units(spec)
    d, width = len(spec.variables), len(units)
    n_pairs = max(u.pair for u in units) + 1
    lo, hi = np.log(SCALE_RANGE[0]), np.log(SCALE_RANGE[1])
    scales = np.exp(_rng(spec.seed, "scale").uniform(lo, hi, n_pairs))
    if spec.superposition:  # every unit carries every variable: one drawn norm for all keeps the geometry isometric
        scales[:] = scales[0]
    order = _rng(spec.seed, "order").permutation(width)
    w1, b1, w2 = np.zeros((width, d)), np.zeros(width), np.zeros((1, width))
    linear = np.zeros(width, dtype=bool)
    for k, unit in zip(order, units, strict=True):
        norm, s = float(np.linalg.norm(unit.w)), float(scales[unit.pair])
        # r ReLU(w . x + b) = (r |w| / s) ReLU(s (w . x + b) / |w|): every row has norm s
        w1[k], b1[k], w2[0, k] = s * unit.w / norm, s * unit.b / norm, unit.readout * norm / s
        linear[k] = unit.linear
    first, second = nn.Linear(d, width), nn.Linear(width, 1)
    with torch.no_grad():
        first.weight.copy_(torch.as_tensor(w1))
        first.bias.copy_(torch.as_tensor(b1))
        second.weight.copy_(torch.as_tensor(w2))
        second.bias.fill_(float(bias_out))
    model = nn.Sequential(first, nn.ReLU(), second, nn.Flatten(0)).eval()
    loadings = np.where(np.abs(w1) > _TOL, w1, 0.0)
    truth = PlantedTruth(tuple(spec.variables), tuple(spec.target),
                         {"input": np.eye(d), "hidden.0.pre": loadings, "hidden.0": loadings},
                         {"input": np.ones(d, dtype=bool), "hidden.0.pre": linear, "hidden.0": linear},
                         hidden_floor=hidden_floor(spec) if spec.hidden else 0.0)
    return model, truth


def planted_logit(spec: PlantedSpec, x: np.ndarray) -> np.ndarray:
    """The closed form the planted network computes, on inputs ``x`` (columns ``spec.variables``)."""
    x = np.asarray(x, dtype=np.float64)
    col = {v: x[:, i] for i, v in enumerate(spec.variables)}
    moo, tail, grass, sky = (col[v] for v in VARIABLES)
    out = spec.coef["moo"] * moo + spec.coef["tail"] * tail + spec.coef["grass"] * (grass - 0.5)
    if spec.hidden:
        out = out + spec.hidden * np.maximum(np.abs(moo + sky), hidden_floor(spec))
    return out + spec.interaction * (grass - 0.5) * np.abs(moo)


def planted_models(scn: Scenario, seed: int | None = None) -> tuple[nn.Sequential, nn.Sequential, PlantedTruth]:
    """Subject, edit oracle and the subject's truth of a planted scenario.

    ``seed`` draws the network's offsets, scales, readout noise, embedding and unit order (pass the replicate's
    subject seed, so every replicate has its own); ``None``: one seed derived from the scenario.
    """
    spec = PlantedSpec.from_scenario(scn, seed)
    subject, truth = build_planted(spec)
    oracle, _ = build_planted(spec.oracle())
    return subject, oracle, truth


def describe(spec: PlantedSpec) -> dict[str, Any]:
    """A plain summary of the construction (for reports and ``cowbench show``)."""
    return {"coef": dict(spec.coef), "polysemantic": spec.polysemantic, "superposition": spec.superposition,
            "hidden": spec.hidden, "interaction": spec.interaction, "target": list(spec.target),
            "variables": list(spec.variables), "importance": spec.importance, "seed": spec.seed}
