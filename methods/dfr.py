"""Deep Feature Reweighting: retrain only the subject's last layer on a group-balanced held-out set."""

from __future__ import annotations

import copy

import numpy as np
import sklearn
from sklearn.linear_model import LogisticRegression

from cowbench.access import Task
from cowbench.method import Integer, LogUniform, MethodOutput, Options, register_method
from cowbench.methods._robust import RetrainMethod, penultimate, with_last_layer


def _logistic(C: float, penalty: str, seed: int) -> LogisticRegression:
    # scikit-learn 1.8 deprecated ``penalty`` in favour of ``l1_ratio``; older versions ignore l1_ratio
    # unless penalty='elasticnet', so each version gets the spelling it understands
    if tuple(int(p) for p in sklearn.__version__.split(".")[:2]) >= (1, 8):
        return LogisticRegression(C=C, l1_ratio=1.0 if penalty == "l1" else 0.0, solver="liblinear",
                                  random_state=seed)
    return LogisticRegression(C=C, penalty=penalty, solver="liblinear", random_state=seed)


@register_method
class DFR(RetrainMethod):
    """DFR (Kirichenko et al. 2023): last-layer retraining on group-balanced validation data.

    The subject's feature map (everything before its last linear layer) is kept; on ``val`` its features
    are standardised, ``n_subsamples`` group-balanced subsamples of ``val`` are drawn (every group cut to
    the smallest group's size), an l1- (or l2-) penalised logistic regression is fitted on each, and the
    last layer becomes the average of their coefficients (the standardisation folded in). The paper's
    claim: ERM features already carry the core feature, and a balanced reweighting of the last layer
    removes the reliance on the spurious one. Group labels of ``val`` only (access ``group_val``), never
    those of ``train``. It fails where the features lost the core feature, and it is noisy when the
    smallest validation group is tiny. On the ``linear`` architecture the features are the inputs, so it
    refits the whole model on the balanced held-out data.

    Parameters
    ----------
    C : float
        Inverse regularisation strength of the logistic regressions.
    penalty : {"l1", "l2"}
        Their penalty (the paper uses l1).
    n_subsamples : int
        Number of balanced subsamples whose fits are averaged.
    random_state : int, optional
        Seed of the subsamples.

    References
    ----------
    Kirichenko, P., Izmailov, P. & Wilson, A. G. (2023). Last layer re-training is sufficient for robustness
    to spurious correlations. ICLR, arXiv:2204.02937.
    """

    name = "dfr"
    version = "1"
    access = frozenset({"pooled", "internals", "group_val"})
    label_kinds = frozenset({"binary"})
    search_space = {"C": LogUniform(0.01, 10.0)}
    param_constraints = {"penalty": Options(("l1", "l2")), "n_subsamples": Integer(1, 1000)}

    def __init__(self, *, C: float = 1.0, penalty: str = "l1", n_subsamples: int = 10,
                 random_state: int | None = None):
        self.C = C
        self.penalty = penalty
        self.n_subsamples = n_subsamples
        self.random_state = random_state

    def run(self, task: Task) -> MethodOutput:
        model = copy.deepcopy(task.model)  # the Task's copy stays as it was
        features = penultimate(model, task.val.x)
        y = np.asarray(task.val.y).astype(np.int64)
        group = np.asarray(task.val.group)
        labels, counts = np.unique(group, return_counts=True)
        if len(np.unique(y)) < 2 or len(labels) < 2:
            raise ValueError("dfr needs both labels and at least two groups in the validation split")
        mean, sd = features.mean(axis=0), features.std(axis=0)
        sd = np.where(sd > 1e-12, sd, 1.0)  # dead units: left at 0 weight by any penalty, avoid 0/0
        z = (features - mean) / sd
        size = int(counts.min())
        rng = np.random.default_rng(self._seed())
        coefs, intercepts = [], []
        for _ in range(self.n_subsamples):
            rows = np.concatenate([rng.choice(np.flatnonzero(group == g), size, replace=False) for g in labels])
            if len(np.unique(y[rows])) < 2:
                continue
            fit = _logistic(self.C, self.penalty, self._seed()).fit(z[rows], y[rows])
            coefs.append(fit.coef_[0])
            intercepts.append(fit.intercept_[0])
        if not coefs:
            raise ValueError("dfr: no balanced validation subsample holds both labels")
        w = np.mean(coefs, axis=0) / sd
        b = float(np.mean(intercepts) - w @ mean)
        return MethodOutput(edited=with_last_layer(model, w, b),
                            details={"per_group": size, "fits": len(coefs),
                                     "nonzero": int(np.count_nonzero(np.mean(coefs, axis=0)))})
