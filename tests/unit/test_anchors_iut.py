"""The invariance_unit_tests anchor on small settings: its test split, its peer-protocol optimiser, its pattern."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import cowbench as cb
from cowbench.anchors import ANCHORS, anchor_module, run_anchor
from cowbench.anchors import invariance_unit_tests as iut


def test_peer_test_split_permutes_the_spurious_block_jointly_within_each_environment():
    scn = cb.make_scenario("iut_example3", n_train=50, n_val=20, n_test=3000)
    split = scn.sample(0).test_id
    test = iut.peer_test_split(scn, split, np.random.default_rng(0))
    spu = scn.truth.of_role("spurious")
    keep = [v for v in scn.truth.observed if v not in spu]
    np.testing.assert_array_equal(test.y, split.y)
    np.testing.assert_array_equal(test.concepts[keep].to_numpy(), split.concepts[keep].to_numpy())
    for e in np.unique(split.env):
        m = split.env == e
        before = {tuple(r) for r in split.concepts[spu][m].to_numpy()}
        after = {tuple(r) for r in test.concepts[spu][m].to_numpy()}
        assert before == after  # whole rows of the block moved together, inside the environment
        for v in spu:  # and the label no longer predicts them (it does before: the check has power)
            tol = 4 / np.sqrt(m.sum())
            assert abs(np.corrcoef(test.concepts[v][m], test.y[m])[0, 1]) < tol
            assert abs(np.corrcoef(split.concepts[v][m], split.y[m])[0, 1]) > tol


def test_moments_give_the_full_batch_squared_loss():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(200, 4)), rng.normal(size=200)
    t = torch.tensor(rng.normal(size=5))
    direct = np.mean((1.7 * (x @ t.numpy()[:4] + t.numpy()[4]) - 0.3 - y) ** 2)
    assert float(iut._Moments(x, y)(t, 1.7, -0.3)) == pytest.approx(direct, rel=1e-12)


def _rows_adam(x, y, env, kind, irm, steps, seed):
    """The peer's training loop as written there: nn.Linear on the rows, dummies multiplied in (float64 here)."""
    torch.manual_seed(seed)
    layer = torch.nn.Linear(x.shape[1], 1).double()
    opt = torch.optim.Adam(layer.parameters(), lr=1e-3)
    loss_fn = torch.nn.MSELoss() if kind == "continuous" else torch.nn.BCEWithLogitsLoss()
    xt, yt = torch.tensor(x), torch.tensor(y)[:, None]
    mul, add = torch.ones(1, dtype=torch.float64, requires_grad=True), torch.zeros(1, dtype=torch.float64,
                                                                                 requires_grad=True)
    for _ in range(steps):
        if irm:
            losses, pen = [], 0
            for e in np.unique(env):
                m = torch.as_tensor(env == e)
                loss = loss_fn(layer(xt[m]) * mul + add, yt[m])
                pen = pen + sum(g.pow(2).sum() for g in torch.autograd.grad(loss, (mul, add), create_graph=True))
                losses.append(loss)
            obj = 0.1 * sum(losses) / len(losses) + 0.9 * pen
        else:
            obj = loss_fn(layer(xt), yt)
        opt.zero_grad()
        obj.backward()
        opt.step()
    return layer.weight.detach().numpy().ravel(), float(layer.bias.detach())


@pytest.mark.parametrize("irm", [False, True])
def test_peer_protocol_on_moments_follows_the_row_by_row_trajectory(irm):
    scn = cb.make_scenario("iut_example1", n_train=300, n_val=20, n_test=20)
    d = scn.sample(1).train
    x, y = d.x.astype(np.float64), d.y.astype(np.float64)
    w, b = iut.peer_protocol_fit(x, y, d.env, "continuous", irm=irm, steps=300, seed=2)
    w0, b0 = _rows_adam(x, y, d.env, "continuous", irm, 300, 2)
    np.testing.assert_allclose(w, w0, atol=1e-8)
    assert b == pytest.approx(b0, abs=1e-8)


@pytest.fixture(scope="module")
def small():
    return iut.reproduce(n_reps=2, examples=(1, 2, 3), scrambled=(0, 1), n=2000, peer_reps=1, peer_steps=30,
                         grid=(1e2, 1e4))


def _mean(df, ex, method, col="test_error"):
    return float(df[(df.example == ex) & (df.method == method)][col].mean())


def test_oracles_reach_the_noise_floors(small):
    n = 2000  # per environment
    # Example1: residual variance dim_inv * sd_e^2, mean 10.43; relative sd of a variance sqrt(2/n) per env
    assert _mean(small, 1, iut.ROWS[7][0]) == pytest.approx(31.3 / 3, rel=4 * np.sqrt(2 / n))
    # Example3: Phi(-sqrt(5)) = 0.0127 with five invariant inputs
    assert abs(_mean(small, 3, iut.ROWS[7][0]) - 0.0127) < 4 * np.sqrt(0.0127 / (3 * n))


def test_erm_fails_where_the_peer_says_and_not_on_separable_example2(small):
    erm = iut.ROWS[0][0]
    assert _mean(small, 1, erm) > 10.43 + 1.0  # uses the effects z
    assert _mean(small, 3, erm) > 0.3  # uses the spurious directions (random would be 0.5)
    assert _mean(small, 3, erm, "id_error") < 0.01  # ... which are perfect in distribution
    assert _mean(small, 2, erm) < 0.01  # separable: a converged fit uses the animal


def test_every_row_and_both_renderings_are_present(small):
    assert set(small.scrambled) == {0, 1}
    assert {label for label, _ in iut.ROWS} - set(iut.MLP_METHODS) == set(small.method)
    peer = small[small.method.str.contains("peer's optimisation")]
    assert set(peer.rep) == {0} and set(peer.scrambled) == {0}  # the slow rows: first repetitions, plain only
    chosen = small[small.method.str.contains("validation")].selected
    assert set(chosen) <= {1e2, 1e4}


def test_main_writes_the_command_the_rule_and_the_published_numbers(small, tmp_path, monkeypatch):
    monkeypatch.setenv("COWBENCH_CACHE", str(tmp_path / "cache"))  # never a real cache of full-size rows
    monkeypatch.setattr(iut, "reproduce", lambda n_reps, seed: small)
    fake_mlp = pd.DataFrame([{"example": ex, "scrambled": 0, "rep": r, "method": label, "test_error": 0.1 * ex + r,
                              "id_error": 0.0} for ex in (1, 2, 3) for r in (0, 1) for label in iut.MLP_METHODS])
    monkeypatch.setattr(iut, "reproduce_mlp", lambda n_reps, seed: fake_mlp)
    path = run_anchor("invariance_unit_tests", reps=2, out=tmp_path / "iut.md")
    text = path.read_text()
    assert "cowbench anchor invariance_unit_tests" in text and "train-domain validation" in text
    assert "13.36" in text and "0.013" in text and "Example2" in text and " nan" not in text


def test_registry_names_every_anchor_and_rejects_others():
    assert set(ANCHORS) == {"irm_synthetic", "invariance_unit_tests", "colored_mnist_irm", "domainbed_gap",
                            "four_groups_wga", "sae_toy_recovery"}
    with pytest.raises(ValueError, match="allowed"):
        anchor_module("nope")
    with pytest.raises(ValueError, match="reps"):
        run_anchor("irm_synthetic", reps=1)


@pytest.mark.slow  # trains the subject MLP and three methods on it
def test_mlp_rows_come_from_the_harness_and_separate_example2():
    rows = iut.reproduce_mlp(n_reps=1, examples=(2,), n=1000)
    assert set(rows.method) == set(iut.MLP_METHODS)
    erm = rows[rows.method == iut.ROWS[8][0]].iloc[0]
    assert erm.id_error < 0.02 and erm.test_error < 0.1  # the harness's training loop finds the animal
