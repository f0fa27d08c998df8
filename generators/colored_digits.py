"""Colored digits: IRM's Colored MNIST protocol on scikit-learn's bundled 8x8 digits.

The protocol of Arjovsky, Bottou, Gulrajani & Lopez-Paz (2019), "Invariant Risk Minimization",
arXiv:1907.02893, code ``facebookresearch/InvariantRiskMinimization/code/colored_mnist`` (see
``anchor-results.md``), with the 1797 greyscale 8x8 digits of ``sklearn.datasets.load_digits`` (bundled,
no download) in place of MNIST:

- ``shape = 1[digit < 5]`` (causal, binary): whether the image shows a digit 0-4;
- ``digit_id`` (hidden): the index of the image among the 1797 digits, uniform over those with the chosen
  shape; jointly, ``(shape, digit_id)`` is an image drawn uniformly from all 1797 and its ``digit < 5``;
- ``label = shape`` flipped with probability ``label_flip`` (default 0.25);
- ``color = label`` flipped with probability ``e``, the environment's colour-flip probability: ``e`` in
  ``color_flip_train`` (default ``(0.1, 0.2)``, one training environment each) and ``color_flip_test``
  (default 0.9) at deployment. These are IRM's flip probabilities ``e``; in DESIGN's vocabulary the
  colour-label *agreement* is ``1 - e`` (0.9 and 0.8 in training, 0.1 at deployment).

Structure: exogenous noise first (uniform for shape, digit_id, label and color), then ``shape -> digit_id``
(the image is drawn among the digits of that shape from digit_id's own uniform noise, so ``do(shape)``
redraws the image from the other class with the same noise), ``shape -> label -> color`` (mechanism M2 of
the methods catalog, §6.1: an anti-causal spurious child whose strength changes by environment, while
``P(label | shape)`` is invariant). Drawing ``shape`` first and then an image of that shape gives the same
joint law as drawing one of the 1797 images uniformly (``P(shape = 1) = 901 / 1797``), and it keeps the
rendering a pure function of the variables under every intervention.

Rendering (`ColoredDigitRendering`): the image of ``digit_id`` (pixel values 0-16 scaled to [0, 1]) in
channel 0 (red) if ``color == 1`` and in channel 1 (green) otherwise, the other channel zero, flattened
channel-major to 2 * 64 = 128 float32 inputs (``x[:, :64]`` red, ``x[:, 64:]`` green); no per-variable
input columns (``input_map`` is None). ``do(color)`` re-renders the same digit in the other channel. The
greyscale view of IRM's oracle is ``x[:, :64] + x[:, 64:]``. All splits draw from the same 1797 images,
so (unlike MNIST's disjoint test set) test images repeat training ones: the shift measured at deployment
is the colour's, not a new set of digits.

World truth: ``label = shape XOR Bernoulli(label_flip)``, i.e. ``P(label = 1 | shape) = label_flip +
(1 - 2 label_flip) * shape`` (identity link). The index of the label's equation is ``shape`` itself, so
``world_coef = {"shape": 1.0, "color": 0.0}`` (scores are scale-free; the probability-scale slope would be
``1 - 2 label_flip``). ``identifiable_with = "env"`` when the training colour-flip probabilities differ
(colour's association with the label changes across environments while the label's mechanism does not),
``"counterfactual"`` with a single training strength (the chain is then Markov equivalent to its reverse).

Published pattern (IRM repository's ``reproduce_paper_results_output.txt``, 10 restarts, MNIST, 14x14,
25000 images per environment): ERM 87.4% train / 17.1% test (e = 0.9); IRM 70.8% / 66.9%; ERM on
greyscale images (the oracle) 73.5% / 73.0%; optimal invariant predictor 75% / 75% (it predicts
``shape`` and is wrong exactly on the 25% flipped labels); chance 50%. DomainBed (Gulrajani & Lopez-Paz
2020, arXiv:2007.01434) reports ERM near 10% on its -90% environment under training-domain validation.

Expected behaviour (catalog §4.1, §4.2-4.7, §6.1 M2): ERM (linear or MLP) uses colour, which agrees with
the label 85% of the time in training against 75% for shape, and falls well below chance at deployment.
Methods with environment labels (IRMv1, V-REx: Krueger et al. 2021, arXiv:2003.00688) can flag and drop
colour, since its association with the label differs between e = 0.1 and e = 0.2; the gap between the two
environments is small, so they are sensitive to hyperparameters and model selection (IRM's own numbers
used test-domain selection). Group reweighting / GroupDRO (Sagawa et al. 2020, arXiv:1911.08731) with
(label, colour) groups remove the association. Input attributions and concept erasure can locate colour
(it is the choice of channel, not any single pixel), while a linear probe of ``shape`` needs a
nonlinear feature of the digit image.
"""

from __future__ import annotations

import functools

import numpy as np

from cowbench.data import Truth
from cowbench.generators.knobs import integer, real, real_tuple, scenario_family
from cowbench.generators.scm import SCM, Environment, Rendering, Variable

CHANNELS = ("red", "green")  # channel 0 shows the digit when color == 1, channel 1 when color == 0
SIDE = 8
PIXELS = SIDE * SIDE
SHAPE_BELOW = 5  # shape = 1[digit < SHAPE_BELOW]

KNOBS = (
    real_tuple("color_flip_train", (0.1, 0.2), 0.0, 1.0,
               "P(color != label) in each training environment (IRM's e; agreement is 1 - e); its length is "
               "the number of environments", max_len=16),
    real("color_flip_test", 0.9, 0.0, 1.0, "P(color != label) at deployment (test_ood)"),
    real("label_flip", 0.25, 0.0, 0.5, "P(label != shape): the label noise, the same in every environment"),
    integer("n_train", 5000, 10, 10_000_000, "training units per training environment"),
    integer("n_val", 500, 10, 10_000_000, "validation units per training environment"),
    integer("n_test", 2000, 10, 10_000_000, "units in test_id and in test_ood"),
)


@functools.lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    """The 1797 bundled digits, loaded once per process: images (1797, 64) float32 in [0, 1], targets."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images.reshape(-1, PIXELS) / 16.0).astype(np.float32)
    images.setflags(write=False)
    targets = bunch.target.astype(np.int64)
    targets.setflags(write=False)
    return images, targets


@functools.lru_cache(maxsize=1)
def _pools() -> tuple[np.ndarray, np.ndarray]:
    """Indices of the digits with shape 0 (digit >= 5) and with shape 1 (digit < 5), ascending."""
    _, targets = _digits()
    pools = (np.flatnonzero(targets >= SHAPE_BELOW), np.flatnonzero(targets < SHAPE_BELOW))
    for p in pools:
        p.setflags(write=False)
    return pools


def _p_shape() -> float:
    """P(shape = 1) when one of the digits is drawn uniformly."""
    zero, one = _pools()
    return len(one) / (len(zero) + len(one))


def _pick(pool: np.ndarray, u: np.ndarray) -> np.ndarray:
    return pool[np.minimum((u * len(pool)).astype(np.int64), len(pool) - 1)]


def _shape(parents, u, params):
    return (u < _p_shape()).astype(np.float64)


def _digit_id(parents, u, params):
    zero, one = _pools()
    return np.where(parents["shape"] > 0.5, _pick(one, u), _pick(zero, u)).astype(np.float64)


def _label(parents, u, params):
    shape = (parents["shape"] > 0.5).astype(np.float64)
    return np.where(u < params["label_flip"], 1.0 - shape, shape)


def _color(parents, u, params):
    label = (parents["label"] > 0.5).astype(np.float64)
    return np.where(u < params["color_flip"], 1.0 - label, label)


class ColoredDigitRendering(Rendering):
    """The image of ``digit_id`` in the red channel if ``color == 1``, else in the green one; 128 inputs.

    A pure function of ``digit_id`` and ``color`` (no rendering noise). Inputs are channel-major: columns
    ``0..63`` are the red channel, ``64..127`` the green one, each a row-major 8x8 image in [0, 1].
    """

    name = "colored_digits"

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f"{c}_{r}_{k}" for c in CHANNELS for r in range(SIDE) for k in range(SIDE))

    @property
    def input_map(self) -> None:
        return None

    def render(self, values, noise, params) -> np.ndarray:
        images, _ = _digits()
        ids = np.asarray(values["digit_id"], dtype=np.float64)
        if not (np.all(ids == np.round(ids)) and np.all((ids >= 0) & (ids < len(images)))):
            raise ValueError(f"digit_id must be an integer in [0, {len(images) - 1}]")
        img = images[ids.astype(np.int64)]  # (n, 64)
        red = (np.asarray(values["color"]) > 0.5)[:, None]  # (n, 1)
        x = np.empty((len(ids), 2 * PIXELS), dtype=np.float32)
        x[:, :PIXELS] = np.where(red, img, 0.0)
        x[:, PIXELS:] = np.where(red, 0.0, img)
        return x


@scenario_family("colored_digits", version="2", knobs=KNOBS)
def colored_digits(*, color_flip_train, color_flip_test, label_flip, n_train, n_val, n_test) -> SCM:
    """IRM's Colored MNIST on the 8x8 sklearn digits (see the module docstring)."""
    variables = (
        Variable("shape", "causal", _shape, noise="uniform", kind="binary",
                 text="shape = 1[digit < 5] ~ Bernoulli(901/1797): the chosen digit is one of 0-4"),
        Variable("digit_id", "hidden", _digit_id, parents=("shape",), noise="uniform",
                 text="digit_id = an image index drawn uniformly among the digits of that shape"),
        Variable("label", "label", _label, parents=("shape",), noise="uniform", kind="binary",
                 text="label = shape, flipped w.p. label_flip"),
        Variable("color", "spurious", _color, parents=("label",), noise="uniform", kind="binary",
                 text="color = label, flipped w.p. color_flip (per environment); 1 = red, 0 = green"),
    )
    params = {"label_flip": label_flip, "color_flip": color_flip_train[0]}
    environments = tuple(Environment(f"train{i}", {"color_flip": e}) for i, e in enumerate(color_flip_train))
    environments += (Environment("deploy", {"color_flip": color_flip_test}, deployment=True),)
    if len(set(color_flip_train)) > 1:
        ident, why = "env", "P(color != label) differs across training environments while label's mechanism does not"
    else:
        ident, why = "counterfactual", ("one colour strength in training: shape -> label -> color is Markov "
                                        "equivalent to its reverse (the label has one cause); do(color) leaves the "
                                        "label unchanged, do(shape) does not")
    truth = Truth(
        roles={v.name: v.role for v in variables},
        world_coef={"shape": 1.0, "color": 0.0},
        link="identity",
        identifiable_with=ident,
        identifiable_reason=why,
    )
    return SCM(variables, params, environments, ColoredDigitRendering(), truth,
               {"n_train": n_train, "n_val": n_val, "n_test": n_test})
