"""DirectLiNGAM, written against numpy: the causal order from non-Gaussianity, then the label's parents."""

from __future__ import annotations

import numpy as np
from threadpoolctl import threadpool_limits

from cowbench.access import Task
from cowbench.method import Choice, Method, MethodOutput, Real, register_method
from cowbench.methods._discovery import dag_marks, degenerate, label_data, verdict_output


def _entropy(u: np.ndarray) -> float:
    """Hyvärinen's (1998) maximum-entropy approximation of the differential entropy of a standardised ``u``."""
    k1, k2, gamma = 79.047, 7.4129, 0.37457
    return float((1 + np.log(2 * np.pi)) / 2 - k1 * (np.mean(np.log(np.cosh(u))) - gamma) ** 2
                 - k2 * np.mean(u * np.exp(-(u**2) / 2)) ** 2)


def _residual(xi: np.ndarray, xj: np.ndarray) -> np.ndarray:
    """``xi`` minus its least-squares regression on ``xj`` (lingam's ddof convention, for the cross-check)."""
    return xi - (np.cov(xi, xj)[0, 1] / np.var(xj)) * xj


def _pairwise_measure(xi: np.ndarray, xj: np.ndarray) -> float:
    """Hyvärinen & Smith's (2013) likelihood-ratio measure: positive when ``xi -> xj`` is the likelier direction."""
    ri_j, rj_i = _residual(xi, xj), _residual(xj, xi)
    return (_entropy(xj) + _entropy(ri_j / np.std(ri_j))) - (_entropy(xi) + _entropy(rj_i / np.std(rj_i)))


def causal_order(x: np.ndarray) -> list[int]:
    """DirectLiNGAM's causal order of the columns of ``x`` (Shimizu et al. 2011, with the pairwise measure).

    Repeatedly: the remaining column most independent of its residuals on every other remaining column
    (``argmax_i -sum_j min(0, measure(x_i, x_j))^2`` on standardised columns) is exogenous among them; it
    is appended to the order and regressed out of the others.
    """
    x = np.array(x, dtype=np.float64)
    remaining = list(range(x.shape[1]))
    order: list[int] = []
    while remaining:
        if len(remaining) == 1:
            order.append(remaining[0])
            break
        std = {i: (x[:, i] - x[:, i].mean()) / x[:, i].std() for i in remaining}
        scores = [-sum(min(0.0, _pairwise_measure(std[i], std[j])) ** 2 for j in remaining if j != i)
                  for i in remaining]
        m = remaining[int(np.argmax(scores))]
        for i in remaining:
            if i != m:
                x[:, i] = _residual(x[:, i], x[:, m])
        order.append(m)
        remaining.remove(m)
    return order


def adaptive_lasso_weights(x: np.ndarray, order: list[int]) -> np.ndarray:
    """``W[i, j]`` (edge ``i -> j``): each column's parents among its predecessors in ``order``, and their weights.

    As the reference implementation (lingam 1.12): on standardised columns, OLS coefficients ``b`` of the
    target on its predecessors, then a lasso on ``x * |b|`` with the penalty chosen by BIC (``LassoLarsIC``;
    the adaptive lasso, Zou 2006, gamma = 1) selects the parents; their weights are the OLS coefficients of
    the target on the selected parents in the original units.
    """
    from sklearn.linear_model import LassoLarsIC, LinearRegression

    x = np.asarray(x, dtype=np.float64)
    z = (x - x.mean(0)) / x.std(0)
    w = np.zeros((x.shape[1], x.shape[1]))
    for k in range(1, len(order)):
        target, preds = order[k], np.array(order[:k])
        scale = np.abs(LinearRegression().fit(z[:, preds], z[:, target]).coef_)
        lasso = LassoLarsIC(criterion="bic").fit(z[:, preds] * scale, z[:, target])
        kept = preds[np.abs(lasso.coef_ * scale) > 0]
        if len(kept):
            w[kept, target] = LinearRegression().fit(x[:, kept], x[:, target]).coef_
    return w


@register_method
class DirectLiNGAM(Method):
    """DirectLiNGAM (Shimizu et al. 2011) with the label as a node, written against numpy and scikit-learn.

    Algorithm: in a linear structural equation model with independent non-Gaussian noises (LiNGAM), an
    exogenous variable is independent of its residual on every other variable, and no other variable is.
    DirectLiNGAM finds the causal order one exogenous variable at a time with Hyvärinen & Smith's (2013)
    pairwise likelihood-ratio measure (entropies from Hyvärinen's maximum-entropy approximation), regresses
    it out of the remaining ones, and then estimates each node's parents among its predecessors by the
    adaptive lasso with a BIC penalty and refits the selected parents by OLS, as the reference
    implementation (lingam 1.12) does. Unlike PC, the
    whole DAG is identified (no undirected edges), so no variable scores 0.5.

    Mixed nodes: the model assumes every node is a linear function of its parents plus continuous
    non-Gaussian noise. A binary label (a threshold of its causes) breaks that; the method is run on it
    anyway (its 0/1 values as a continuous node), as the paper allows nothing better, and its scores on a
    binary label are an empirical question, not a guarantee.

    Outputs (rule in `cowbench.methods._discovery.label_verdict`): ``spurious_score`` 1 for a child of the
    label and a non-neighbour marginally associated with it (Fisher-z at level ``alpha``), 0 for a parent
    and an unrelated non-neighbour; ``world_coef`` the label regressed on its parents. **Abstains** when no
    variable scores 1 (e.g. the label is found last in the order, with every associated variable as a
    parent).
    It also abstains on degenerate data (a singular correlation matrix of the nodes).

    Known failures: Gaussian noise (e.g. ``proxy_sem``): the direction is not identifiable, the measure is
    noise, and the order, hence every verdict, is arbitrary; the test suite asserts this failure. Also
    non-linear mechanisms, hidden confounders, and discrete nodes.

    Parameters
    ----------
    alpha : float
        Level of the marginal association test of a non-neighbour of the label.
    random_state : int, optional
        Unused (deterministic).

    References
    ----------
    Shimizu, S., Inazumi, T., Sogawa, Y., Hyvärinen, A., Kawahara, Y., Washio, T., Hoyer, P. O. & Bollen, K.
    (2011). DirectLiNGAM: a direct method for learning a linear non-Gaussian structural equation model.
    JMLR 12, 1225-1248.
    Hyvärinen, A. & Smith, S. M. (2013). Pairwise likelihood ratios for estimation of non-Gaussian structural
    equation models. JMLR 14, 111-152.
    Zou, H. (2006). The adaptive lasso and its oracle properties. JASA 101(476), 1418-1429.
    """

    name = "direct_lingam"
    version = "1"
    family = "causal"
    access = frozenset({"pooled"})
    outputs = frozenset({"world", "detect"})
    needs_input_map = True
    search_space = {"alpha": Choice((0.001, 0.01, 0.05))}
    param_constraints = {"alpha": Real(0.0, 1.0, open_low=True)}

    def __init__(self, *, alpha: float = 0.01, random_state: int | None = None):
        self.alpha = alpha
        self.random_state = random_state

    def run(self, task: Task) -> MethodOutput:
        data = label_data(task.train.x, task.train.y)
        if degenerate(data):
            return verdict_output(task, None, data, alpha=float(self.alpha))
        with threadpool_limits(1):  # BLAS threads on these small products cost more than they save
            order = causal_order(data)
            weights = adaptive_lasso_weights(data, order)
        return verdict_output(task, dag_marks(weights), data, alpha=float(self.alpha),
                              details={"label_position": order.index(data.shape[1] - 1)})
