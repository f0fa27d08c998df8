"""Linear probes on the subject model's hidden activations: decodability, reported as if it were reliance."""

from __future__ import annotations

import numpy as np

from cowbench.access import Task
from cowbench.method import LogUniform, Method, MethodOutput, register_method
from cowbench.methods._common import layer_activations, layer_names


def _halves(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic fit/test split of the concept subset: even units fit, odd units test."""
    idx = np.arange(n)
    return idx[0::2], idx[1::2]


def _standardise(h_fit: np.ndarray, h_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu, sd = h_fit.mean(0), h_fit.std(0)
    sd = np.where(sd > 1e-12, sd, 1.0)
    return (h_fit - mu) / sd, (h_test - mu) / sd


def _decodability(h_fit: np.ndarray, t_fit: np.ndarray, h_test: np.ndarray, t_test: np.ndarray, *,
                  binary: bool, alpha: float, C: float) -> float:
    """Held-out R^2 (continuous) or accuracy above chance, ``(acc - chance) / (1 - chance)`` (binary)."""
    from sklearn.linear_model import LogisticRegression, Ridge

    if binary:
        labels = t_fit.astype(np.int64)
        classes = np.unique(labels)
        majority = int(np.argmax(np.bincount(labels))) if len(labels) else 0
        chance = float(np.mean(t_test.astype(np.int64) == majority))
        if len(classes) < 2 or chance >= 1.0:
            return 0.0  # nothing to decode: one class only
        pred = LogisticRegression(C=C, max_iter=2000).fit(h_fit, labels).predict(h_test)
        acc = float(np.mean(pred == t_test.astype(np.int64)))
        return (acc - chance) / (1.0 - chance)
    var = float(np.var(t_test))
    if var <= 1e-12:
        return 0.0
    pred = Ridge(alpha=alpha).fit(h_fit, t_fit).predict(h_test)
    return 1.0 - float(np.mean((t_test - pred) ** 2)) / var


@register_method
class LinearProbe(Method):
    """Decodability of each variable from the subject's hidden layers, as a deliberately naive reliance score.

    For each layer (the activations entering each ``nn.Linear`` after the first, i.e. the ReLU outputs of
    the subject MLP; the inputs themselves for the linear subject, which has no hidden layer) and each
    observed variable ``v``, a linear probe is fit on the even units of the concept subset and evaluated
    on the odd ones: ridge regression for a continuous ``v`` (held-out ``R^2``), logistic regression for
    a binary one (held-out accuracy above chance, ``(acc - chance) / (1 - chance)`` with chance the
    fit-half majority class). A control task (Hewitt & Liang 2019) fits the same probe to the targets
    permuted across units (``n_controls`` permutations, averaged; a single binary control is noisy when a
    feature decodes ``v`` well, since the random probe's thresholded predictions still track ``v``);
    ``selectivity = decodability - control``. Everything is in ``details``.

    ``model_coef[v]`` is the decodability in the last hidden layer, clipped at 0: the "decodable, hence
    used" reading that the probing literature warns against. Decodability is not reliance: a direction
    that carries ``v`` but that the readout ignores gives a perfect probe and zero reliance (catalog
    §5.1 (f); Belinkov 2022), and a variable correlated with a used one is decodable through it (Kumar,
    Tan & Sharma 2022). The score is unsigned. The benchmark keeps it as the baseline that fails; see
    ``probe_readout`` for the probe direction combined with the readout. Per-variable answers come
    through concept labels, so it runs on every rendering.

    Parameters
    ----------
    alpha : float
        Ridge penalty of the continuous probes (on standardised activations).
    C : float
        Inverse L2 penalty of the logistic probes (on standardised activations).
    n_controls : int
        Number of permutations of the control task.
    random_state : int, optional
        Seeds the permutation of the control task.

    References
    ----------
    Alain, G. & Bengio, Y. (2016). Understanding intermediate layers using linear classifier probes.
    arXiv:1610.01644.
    Hewitt, J. & Liang, P. (2019). Designing and interpreting probes with control tasks. EMNLP,
    arXiv:1909.03368.
    Belinkov, Y. (2022). Probing classifiers: promises, shortcomings, and advances. Computational
    Linguistics 48(1), arXiv:2102.12452.
    """

    name = "linear_probe"
    version = "1"
    family = "attribution"
    access = frozenset({"pooled", "concept", "internals"})
    outputs = frozenset({"model"})
    search_space = {"alpha": LogUniform(1e-3, 1e2), "C": LogUniform(1e-2, 1e2)}

    def __init__(self, *, alpha: float = 1.0, C: float = 1.0, n_controls: int = 5, random_state: int | None = None):
        self.alpha = alpha
        self.C = C
        self.n_controls = n_controls
        self.random_state = random_state

    def run(self, task: Task) -> MethodOutput:
        concepts = task.concepts  # (n_c, k)
        kinds = task.variable_kinds
        model = task.model
        names = layer_names(model)
        acts = layer_activations(model, task.concept_x)  # one (n_c, width) array per nn.Linear
        probed = list(range(1, len(acts))) or [0]  # hidden layers; the input layer when there are none
        fit, test = _halves(len(concepts))
        rng = np.random.default_rng(self.random_state)
        per_layer: dict[str, dict[str, dict[str, float]]] = {}
        for li in probed:
            h_fit, h_test = _standardise(acts[li][fit], acts[li][test])
            rows = {}
            for v in task.variables:
                t = concepts[v].to_numpy(dtype=np.float64)
                binary = kinds[v] == "binary"
                dec = _decodability(h_fit, t[fit], h_test, t[test], binary=binary, alpha=self.alpha, C=self.C)
                ctrl = float(np.mean([_decodability(h_fit, rng.permutation(t[fit]), h_test, t[test], binary=binary,
                                                    alpha=self.alpha, C=self.C)
                                      for _ in range(max(1, int(self.n_controls)))]))
                rows[v] = {"decodability": dec, "control": ctrl, "selectivity": dec - ctrl,
                           "measure": "accuracy_above_chance" if binary else "r2"}
            per_layer[names[li]] = rows
        last = per_layer[names[probed[-1]]]
        model_coef = {v: max(0.0, float(last[v]["decodability"])) for v in task.variables}
        return MethodOutput(model_coef=model_coef,
                            details={"layers": per_layer, "scored_layer": names[probed[-1]],
                                     "arch": task.subject_config.get("arch"),
                                     "n_fit": len(fit), "n_test": len(test)})
