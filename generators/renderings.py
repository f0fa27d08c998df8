"""Renderings beyond identity: fixed random mixes, superposition, a random MLP and small pictures.

Every rendering here starts from the same *measured* variables as `IdentityRendering`
(``z_j = v_j + sd_j * eta_j``, with ``sd_j`` read from the per-row parameters named in ``noise_sd``)
and then applies a fixed map that depends only on the constructor's ``seed``. The map is part of the
scenario, not of the replicate, so every replicate of a scenario sees the same map and the truth (defined
on variables) does not depend on it.

All randomness of a unit lives in ``draw_noise``; ``render`` is a deterministic function of values, that
noise and the parameters. That is what lets ``Scenario.intervene`` re-render the very same pixels when
``do`` equals the observed values. None of these renderings has one input per variable, so
``input_map`` is None: methods must map through concepts, not read answers off input columns.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence

import numpy as np

from cowbench.generators.scm import Arrays, Rendering


def _map_rng(seed: int, kind: str) -> np.random.Generator:
    # a separate stream per kind of map, so two renderings with the same seed do not share matrices
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(zlib.crc32(kind.encode()),)))


class _MeasuredRendering(Rendering):
    """Shared part: the measured variables ``z`` (n, k), float64, exactly as identity rendering makes them."""

    def __init__(self, variables: Sequence[str], noise_sd: Mapping[str, str] | None):
        self.variables = tuple(variables)
        if not self.variables or len(set(self.variables)) != len(self.variables):
            raise ValueError(f"{self.name} rendering needs distinct variables, got {self.variables}")
        self.noise_sd = dict(noise_sd or {})
        unknown = set(self.noise_sd) - set(self.variables)
        if unknown:
            raise ValueError(f"{self.name} rendering: measurement noise for unrendered variables {sorted(unknown)}")

    def draw_noise(self, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
        # same keys and draw order as IdentityRendering, so the measured variables match it unit for unit
        return {f"render.{v}": rng.standard_normal(n) for v in self.variables if v in self.noise_sd}

    def measured(self, values: Arrays, noise: Arrays, params: Arrays) -> np.ndarray:
        z = np.column_stack([np.asarray(values[v], dtype=np.float64) for v in self.variables])
        for j, v in enumerate(self.variables):
            if v in self.noise_sd:
                z[:, j] += params[self.noise_sd[v]] * noise[f"render.{v}"]
        return z


class RotationRendering(_MeasuredRendering):
    """``x = z @ Q`` with ``Q`` (k, d_out) having orthonormal rows (Haar-random, seeded).

    Why: every input coordinate mixes several variables, yet nothing is lost (``Q Q^T = I``, norms are
    preserved), so a method that reads weights coordinate by coordinate fails while one that maps through
    the variables is unaffected. For a linear model ``x -> w.x + b`` the reliance on variable ``j`` is
    exactly ``(Q @ w)_j``. With ``d_out > k`` the rows are the first ``k`` rows of a ``d_out x d_out``
    orthogonal matrix.
    """

    name = "rotation"

    def __init__(self, variables: Sequence[str], noise_sd: Mapping[str, str] | None, seed: int,
                 d_out: int | None = None):
        super().__init__(variables, noise_sd)
        k = len(self.variables)
        self.d_out = k if d_out is None else int(d_out)
        if self.d_out < k:
            raise ValueError(f"rotation rendering needs d_out >= {k} (the number of variables), got {self.d_out}")
        a = _map_rng(seed, self.name).standard_normal((self.d_out, self.d_out))
        q, r = np.linalg.qr(a)
        q = q * np.sign(np.diag(r))  # sign fix: makes Q Haar-distributed rather than biased by QR
        self.matrix = q[:k]  # (k, d_out), orthonormal rows

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f"rot{i}" for i in range(self.d_out))

    def render(self, values: Arrays, noise: Arrays, params: Arrays) -> np.ndarray:
        return (self.measured(values, noise, params) @ self.matrix).astype(np.float32)


class SuperpositionRendering(_MeasuredRendering):
    """``x = z @ W`` with ``W`` (k, d_out), ``d_out < k``, each variable's direction (row) of unit norm.

    Why: more variables than input dimensions (Elhage et al., 2022, "Toy models of superposition"), so
    the directions cannot be orthogonal and no linear read-out separates every variable: interference is
    built in. Rows are seeded Gaussian directions normalised to unit length.
    """

    name = "superposition"

    def __init__(self, variables: Sequence[str], noise_sd: Mapping[str, str] | None, seed: int, d_out: int):
        super().__init__(variables, noise_sd)
        k = len(self.variables)
        self.d_out = int(d_out)
        if not 1 <= self.d_out < k:
            raise ValueError(f"superposition rendering needs 1 <= d_out < {k} (the number of variables), "
                             f"got {self.d_out}")
        w = _map_rng(seed, self.name).standard_normal((k, self.d_out))
        self.matrix = w / np.linalg.norm(w, axis=1, keepdims=True)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f"sup{i}" for i in range(self.d_out))

    def render(self, values: Arrays, noise: Arrays, params: Arrays) -> np.ndarray:
        return (self.measured(values, noise, params) @ self.matrix).astype(np.float32)


class MLPRendering(_MeasuredRendering):
    """``x = tanh(z @ W1 + b1) @ W2``: a fixed, seeded, random two-layer tanh network.

    Why: the variables reach the inputs through a smooth nonlinear map, so linear probes of the inputs
    and input-gradient attributions no longer line up with variables, while ``intervene`` still gives the
    exact model truth. ``W1 ~ N(0, 1/k)`` keeps pre-activations O(1) (no saturation for standard-scale
    variables); ``W2 ~ N(0, 1/hidden)`` keeps outputs O(1).
    """

    name = "mlp"

    def __init__(self, variables: Sequence[str], noise_sd: Mapping[str, str] | None, seed: int, d_out: int,
                 hidden: int = 32):
        super().__init__(variables, noise_sd)
        k = len(self.variables)
        self.d_out, self.hidden = int(d_out), int(hidden)
        if self.d_out < 1 or self.hidden < 1:
            raise ValueError(f"mlp rendering needs d_out >= 1 and hidden >= 1, got {self.d_out}, {self.hidden}")
        rng = _map_rng(seed, self.name)
        self.w1 = rng.standard_normal((k, self.hidden)) / np.sqrt(k)
        self.b1 = 0.5 * rng.standard_normal(self.hidden)
        self.w2 = rng.standard_normal((self.hidden, self.d_out)) / np.sqrt(self.hidden)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f"mlp{i}" for i in range(self.d_out))

    def render(self, values: Arrays, noise: Arrays, params: Arrays) -> np.ndarray:
        h = np.tanh(self.measured(values, noise, params) @ self.w1 + self.b1)
        return (h @ self.w2).astype(np.float32)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # overflow-free logistic


class ImageRendering(_MeasuredRendering):
    """Small greyscale pictures (``size x size``, flattened row-major) in which each variable draws one thing.

    Why: a picture is the running example of the benchmark (a cow on grass under a sky), and a CNN or an
    MLP on pixels has to find the variables itself. Each variable owns a fixed, disjoint pixel region, so
    an intervention on one variable changes only its region (``regions`` maps variable -> flat pixel
    indices); everything else is pixel noise, fixed per unit.

    ``assignments`` is an ordered list of ``(variable, attribute)`` pairs, each attribute used at most once:

    * ``blob``: a disc in the middle-left area (the cow) whose radius is ``r_max * sigmoid(z)``, with an
      anti-aliased edge so intensity is piecewise linear in the radius;
    * ``stroke``: a horizontal stroke right of the blob (the tail) of length ``L * sigmoid(z)``, the last
      pixel partly filled;
    * ``bottom_band`` / ``top_band``: a band of rows (grass / sky) whose intensity is ``z`` times a fixed
      seeded texture in [0.5, 1] (linear, so a binary variable switches a textured band on and off).

    ``z`` is the measured variable (measurement noise as in identity rendering); ``pixel_noise`` is the sd
    of i.i.d. Gaussian pixel noise. Rendering is one broadcast operation per attribute over a precomputed bounding box.
    """

    name = "image"
    ATTRIBUTES = ("blob", "stroke", "top_band", "bottom_band")

    def __init__(self, assignments: Sequence[tuple[str, str]], noise_sd: Mapping[str, str] | None, seed: int,
                 size: int = 16, pixel_noise: float = 0.1):
        assignments = tuple((str(v), str(a)) for v, a in assignments)
        super().__init__([v for v, _ in assignments], noise_sd)
        attrs = [a for _, a in assignments]
        bad = [a for a in attrs if a not in self.ATTRIBUTES]
        if bad or len(set(attrs)) != len(attrs):
            raise ValueError(f"image rendering: attributes must be distinct and among {self.ATTRIBUTES}, got {attrs}")
        self.size, self.pixel_noise = int(size), float(pixel_noise)
        if self.size < 8:
            raise ValueError(f"image rendering needs size >= 8, got {self.size}")
        if not (np.isfinite(self.pixel_noise) and self.pixel_noise >= 0):
            raise ValueError(f"image rendering needs pixel_noise >= 0, got {pixel_noise}")
        self.assignments = assignments
        s = self.size
        band = max(1, s // 5)  # band height
        stroke_len = s // 4  # the stroke's columns: the last s // 4
        rows, cols = np.divmod(np.arange(s * s), s)
        texture = 0.5 + 0.5 * _map_rng(seed, self.name).random(s * s)
        mid_top, mid_bottom, blob_right = band, s - band, s - stroke_len  # middle area: rows [band, s - band)
        cy, cx = (mid_top + mid_bottom - 1) / 2, (blob_right - 1) / 2
        self.r_max = min(mid_bottom - mid_top, blob_right) / 2 - 0.5
        dist = np.hypot(rows - cy, cols - cx)
        stroke_row = int(np.floor(cy))
        # attribute -> (row slice, column slice) of its bounding box, and the pixels it may draw in
        boxes = {
            "blob": (slice(mid_top, mid_bottom), slice(0, blob_right)),
            "stroke": (slice(stroke_row, stroke_row + 1), slice(blob_right, s)),
            "top_band": (slice(0, band), slice(0, s)),
            "bottom_band": (slice(s - band, s), slice(0, s)),
        }
        geometry = {"blob": dist, "stroke": cols - blob_right, "top_band": texture, "bottom_band": texture}
        # blob pixels farther than r_max + 0.5 from the centre always get exactly zero ink
        masks = {"blob": dist < self.r_max + 0.5}
        self.stroke_len = stroke_len
        self._boxes = {}  # attribute -> (row slice, column slice, per-pixel geometry over the box, box mask)
        for a, (rs, cs) in boxes.items():
            mask = masks.get(a, np.ones(s * s, dtype=bool)).reshape(s, s)[rs, cs]
            self._boxes[a] = (rs, cs, geometry[a].reshape(s, s)[rs, cs].astype(np.float32), mask)

    @property
    def regions(self) -> dict[str, np.ndarray]:
        """Variable -> the flat indices of the pixels it draws (disjoint across variables)."""
        grid = np.arange(self.size * self.size).reshape(self.size, self.size)
        return {v: grid[rs, cs][mask] for v, a in self.assignments for rs, cs, _, mask in [self._boxes[a]]}

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f"px{r}_{c}" for r in range(self.size) for c in range(self.size))

    def draw_noise(self, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
        noise = super().draw_noise(rng, n)
        # float32: the pixels are float32 anyway, and it halves the memory and time of the largest draw
        noise["render.pixels"] = rng.standard_normal((n, self.size * self.size), dtype=np.float32)
        return noise

    def render(self, values: Arrays, noise: Arrays, params: Arrays) -> np.ndarray:
        z = self.measured(values, noise, params).astype(np.float32)
        n = z.shape[0]
        x = noise["render.pixels"] * np.float32(self.pixel_noise)
        pixels = x.reshape(n, self.size, self.size)  # a view: drawing in boxes writes into x
        for j, (_, attr) in enumerate(self.assignments):
            rs, cs, geom, _ = self._boxes[attr]
            zj = z[:, j, None, None]
            if attr == "blob":  # ink = clip(radius - dist + 0.5, 0, 1)
                ink = np.float32(self.r_max) * _sigmoid(zj) + np.float32(0.5) - geom
                np.clip(ink, 0, 1, out=ink)
            elif attr == "stroke":  # ink = clip(length - k, 0, 1) for the k-th pixel of the stroke
                ink = np.float32(self.stroke_len) * _sigmoid(zj) - geom
                np.clip(ink, 0, 1, out=ink)
            else:
                ink = zj * geom
            pixels[:, rs, cs] += ink
        return x


class AffineRendering(Rendering):
    """Another rendering followed by a fixed per-coordinate affine map: ``x = (inner(x) - shift) / scale + offset``.

    Why: standardised inputs (``shift`` and ``scale`` the inputs' mean and sd, measured once per scenario
    on a pilot sample with a fixed seed) and a constant input offset (``offset``: attribution methods that
    are not invariant to it, such as gradient x input, change their answers while the model's behaviour
    does not; Kindermans et al. 2019, arXiv:1711.00867). The map is part of the scenario, so the truth is
    that of ``inner``; ``input_map`` too unless the inputs are rescaled.
    """

    def __init__(self, inner: Rendering, shift: np.ndarray, scale: np.ndarray, offset: float = 0.0):
        d = len(inner.feature_names)
        self.inner = inner
        self.name = inner.name
        self.shift = np.broadcast_to(np.asarray(shift, dtype=np.float64), (d,)).copy()
        self.scale = np.broadcast_to(np.asarray(scale, dtype=np.float64), (d,)).copy()
        if not (np.isfinite(self.shift).all() and np.isfinite(self.scale).all() and (self.scale > 0).all()):
            raise ValueError("affine rendering needs finite shifts and positive finite scales")
        self.offset = float(offset)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.inner.feature_names

    @property
    def input_map(self) -> dict[str, int] | None:
        # a column still *is* its variable after a shift, not after a rescaling: per-variable answers read off
        # a rescaled column would be off by its scale, so then there is no input map
        return self.inner.input_map if np.all(self.scale == 1.0) else None

    def draw_noise(self, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
        return self.inner.draw_noise(rng, n)

    def render(self, values: Arrays, noise: Arrays, params: Arrays) -> np.ndarray:
        x = (self.inner.render(values, noise, params) - self.shift) / self.scale + self.offset
        return x.astype(np.float32)
