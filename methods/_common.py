"""Helpers shared by several methods (not a method: the registry skips modules starting with '_')."""

from __future__ import annotations

import numpy as np


def per_variable(task, values: np.ndarray) -> dict[str, float]:
    """Map one value per input column to one value per observed variable.

    Only possible where the rendering has one input per variable (``task.input_map``); methods that
    need per-variable answers on other renderings must map through concepts themselves.
    """
    input_map = task.input_map
    if input_map is None:
        raise ValueError("this method reads per-variable answers off input columns, so it needs a rendering "
                         "with one input per variable (identity)")
    return {v: float(values[input_map[v]]) for v in task.variables}


def logistic_fit(x: np.ndarray, y: np.ndarray, *, C: float, max_iter: int) -> tuple[np.ndarray, np.ndarray]:
    """Logistic regression with an intercept: (coefficients (d,), their standard errors (d,)).

    Standard errors come from the inverse observed Fisher information ``(X1' W X1)^-1`` of the
    unpenalised likelihood at the fitted point (X1 = [1, x], W = diag(p(1 - p))).
    """
    from sklearn.linear_model import LogisticRegression

    fit = LogisticRegression(C=C, max_iter=max_iter, tol=1e-8).fit(x, y)
    coef = fit.coef_.ravel().astype(np.float64)
    x1 = np.column_stack([np.ones(len(x)), np.asarray(x, dtype=np.float64)])
    p = fit.predict_proba(x)[:, 1]
    info = x1.T @ (x1 * (p * (1 - p))[:, None])
    cov = np.linalg.pinv(info)
    return coef, np.sqrt(np.clip(np.diag(cov)[1:], 0, None))


# -- helpers of linear_probe, probe_readout and activation_patching (internals methods) ----------------


def linear_layers(model) -> list:
    """The model's ``nn.Linear`` modules in forward order (for the subject ``nn.Sequential``: module order)."""
    from torch import nn

    layers = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not layers:
        raise ValueError("the model has no nn.Linear layer")
    return layers


def layer_names(model) -> list[str]:
    """Names of the activations entering each ``nn.Linear``: ``input`` (x itself), then ``hidden1``, ...

    For the subject MLP ``Linear, ReLU, Linear, Flatten`` the activation ``hidden1`` entering the readout
    is the output of the ReLU; for the linear subject there is only ``input``.
    """
    return ["input"] + [f"hidden{k}" for k in range(1, len(linear_layers(model)))]


def layer_activations(model, x: np.ndarray) -> list[np.ndarray]:
    """The activations entering each ``nn.Linear`` of ``model`` on inputs ``x``, float64, in forward order."""
    import torch

    captured: list[np.ndarray] = []
    hooks = [m.register_forward_pre_hook(lambda _m, args: captured.append(args[0].detach().double().numpy()))
             for m in linear_layers(model)]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.tensor(np.asarray(x, dtype=np.float32)))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return captured


def patched_logits(model, x: np.ndarray, layer: int, replace) -> np.ndarray:
    """Logits of ``model`` on ``x`` with the activation entering ``nn.Linear`` number ``layer`` replaced.

    ``replace`` maps the activation (a float64 array (n, width)) to its patched value (same shape).
    """
    import torch

    module = linear_layers(model)[layer]

    def hook(_m, args):
        h = args[0]
        return (torch.from_numpy(np.asarray(replace(h.detach().double().numpy()))).to(h.dtype),)

    handle = module.register_forward_pre_hook(hook)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.tensor(np.asarray(x, dtype=np.float32)))
    finally:
        handle.remove()
        model.train(was_training)
    return out.reshape(-1).double().numpy()


def concept_directions(c: np.ndarray, h: np.ndarray, *, ridge: float = 1e-8) -> np.ndarray:
    """Joint least-squares decoder directions: ``B`` (k, width) from ``h - mean(h) ~ (c - mean(c)) B``.

    Row ``v`` is how the activations move per unit change of concept ``v`` with the other concepts held
    (the "probe direction" of ``v``). ``ridge`` is added to the normal equations relative to their trace.
    """
    c = np.asarray(c, dtype=np.float64)
    h = np.asarray(h, dtype=np.float64)
    cc, hc = c - c.mean(0), h - h.mean(0)
    gram = cc.T @ cc
    gram += ridge * max(np.trace(gram), 1e-300) / len(gram) * np.eye(len(gram))
    return np.linalg.solve(gram, cc.T @ hc)


# -- helpers of grad_x_input, integrated_gradients, occlusion, resample_ablation and shapley (attribution) ----


def origin_slope(attribution: np.ndarray, displacement: np.ndarray) -> np.ndarray:
    """Per-column least-squares slope through the origin of ``attribution`` on ``displacement``.

    ``sum_i a_ij d_ij / sum_i d_ij^2`` for each column ``j`` of the (n, k) arrays: the slope-like summary of
    a per-unit attribution ``a_ij`` that is ``w_j d_ij`` for a linear model (``d`` = input minus baseline),
    so it returns ``w_j`` exactly there, i.e. the model's reliance ``ace`` on identity rendering (catalog
    O16). A column that never moves (``sum d^2 = 0``) gets 0.
    """
    a = np.asarray(attribution, dtype=np.float64)
    d = np.asarray(displacement, dtype=np.float64)
    num, den = (a * d).sum(0), (d * d).sum(0)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)
