"""The anchors that train models (four_groups_wga, colored_mnist_irm, domainbed_gap) on small settings.

Qualitative patterns only, with margins from the sample sizes; the full-size numbers are in results/anchors/.
The colored_digits checks are marked slow (``python -m pytest -m slow`` runs them).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cowbench.anchors import colored_mnist as cm
from cowbench.anchors import domainbed_gap as dg
from cowbench.anchors import four_groups_wga as fg
from cowbench.anchors import run_anchor

N_TEST = 1000


@pytest.fixture(scope="module")
def groups():
    return fg.reproduce(n_reps=2, trials=1, knobs={"n_train": 1000, "n_val": 300, "n_test": N_TEST},
                        methods={"ERM (erm_retrain)": "erm_retrain", "GroupDRO (group_dro)": "group_dro",
                                 "DFR (dfr)": "dfr"})


def test_group_robust_methods_beat_erms_worst_group(groups):
    summ = fg.summary(groups).set_index(["method", "selection"])
    erm = summ.loc[("ERM (erm_retrain)", "defaults"), "wga"]
    # the smallest test group has ~N_TEST/4 units: a worst-group accuracy's se is at most 50/sqrt(N_TEST/4) %
    margin = 4 * 50 / np.sqrt(N_TEST / 4)
    for label in ("GroupDRO (group_dro)", "DFR (dfr)"):
        assert summ.loc[(label, "defaults"), "wga"] > erm + margin, label
    # ... and pay for it in distribution (ERM uses grass, which agrees with the label 92% of the time)
    assert summ.loc[("GroupDRO (group_dro)", "defaults"), "acc_id"] < summ.loc[("ERM (erm_retrain)", "defaults"),
                                                                                "acc_id"]


def test_four_groups_file_states_command_rule_and_papers(groups, tmp_path, monkeypatch):
    monkeypatch.setenv("COWBENCH_CACHE", str(tmp_path / "cache"))  # never a real cache of full-size rows
    monkeypatch.setattr(fg, "reproduce", lambda n_reps, seed: groups)
    text = run_anchor("four_groups_wga", reps=2, out=tmp_path / "fg.md").read_text()
    assert "cowbench anchor four_groups_wga" in text and "worst-group validation" in text
    assert "72.6" in text and "91.4" in text and "92.9" in text and "86.7" in text
    assert "JTT (jtt)" in text  # not run here: the table says so rather than dropping the row


@pytest.fixture(scope="module")
def digits():
    return cm.reproduce(n_reps=2, trials=2, knobs={"n_train": 400, "n_val": 200, "n_test": 400},
                        methods={"ERM": "erm_retrain", "IRM": "irm_mlp"})


@pytest.mark.slow  # trains MLPs on 128-pixel inputs: about a minute on a busy machine
def test_colored_digits_erm_falls_below_chance_and_the_oracle_does_not(digits):
    n = 400
    tol = 4 * 0.5 / np.sqrt(n)
    erm = digits[digits.method == "ERM"]
    assert erm.acc_ood.mean() < 0.5 - tol  # the colour flips at test: below chance
    assert erm.train_acc.mean() > 0.75  # colour agrees with the label 85% of the time in training
    per_rep = digits.drop_duplicates("replicate")
    assert per_rep.oracle_test_acc.mean() > 0.5 + tol  # no colour: the digit's shape carries over
    assert abs(per_rep.oracle_test_acc.mean() - per_rep.oracle_train_acc.mean()) < 0.1 + 2 * tol


@pytest.mark.slow  # trains MLPs on 128-pixel inputs: about a minute on a busy machine
def test_oracle_rules_are_upper_bounds_of_train_val(digits):
    chosen = cm.chosen_rows(digits)
    for method, g in chosen.groupby("method"):
        by_rule = g.pivot_table(index="replicate", columns="selection", values="acc_ood")
        assert (by_rule[cm.OOD_ORACLE] >= by_rule["train_val"] - 1e-12).all(), method
    table = dg.gaps(digits).set_index("method")
    assert (table.gap.dropna() >= 0).all()


@pytest.mark.slow  # trains MLPs on 128-pixel inputs: about a minute on a busy machine
def test_colored_and_domainbed_files_share_the_cached_rows(digits, tmp_path, monkeypatch):
    calls = []

    def fake(n_reps, seed, trials):
        calls.append((n_reps, seed, trials))
        return digits

    monkeypatch.setenv("COWBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(cm, "reproduce", fake)
    a = run_anchor("colored_mnist_irm", reps=2, out=tmp_path / "cm.md").read_text()
    b = run_anchor("domainbed_gap", reps=2, out=tmp_path / "dg.md").read_text()
    assert len(calls) == 1  # the second anchor read the first one's rows
    assert "87.4 / 17.1" in a and "73.5 / 73.0" in a and "test-domain oracle" in a and "training-domain" in a
    assert "10.2 / 23.1 / 58.5" in b and "no row (2 training environments)" in b
    cached = list((tmp_path / "cache" / "anchors").glob("*.csv"))
    assert len(cached) == 1 and len(pd.read_csv(cached[0])) == len(digits)
