"""Numbers stated in prose are checked against code: the invariance anchor's agreement words are generated from its
numbers, and JTT's docstring figures are re-measured (slow)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from cowbench.anchors.invariance_unit_tests import AGREE_SE, EXPLANATION, agreement


def test_the_published_irm_figures_are_not_called_agreement_within_seed_noise():
    # results/anchors/invariance_unit_tests.md: irm_linear 10.70 ± 0.12 against the peer's 11.15
    text = agreement(10.70, 0.12, 11.15)
    assert "within seed noise" not in text and "3.8 standard errors" in text
    assert agreement(10.70, 0.30, 11.15).startswith("agree within seed noise (1.5 standard errors")
    assert agreement(11.15 + AGREE_SE * 0.1, 0.1, 11.15).startswith("agree")  # the boundary is inclusive
    assert "single repetition" in agreement(10.7, float("nan"), 11.15)
    assert "agree within seed noise" not in EXPLANATION  # the words come from agreement(), never fixed


JTT_SUITE = """
[suite]
name = "jtt_prose"
root_seed = 0
replicates = 2

[[scenarios]]
name = "four_groups"

[methods]
include = ["no_edit", {{ name = "jtt", params = {{ id_epochs = 20, lambda_up = 20.0 }} }}]
"""


@pytest.mark.slow
def test_jtt_docstring_figures_on_four_groups_are_measured(tmp_path):
    """The docstring's "worst-group accuracy A -> B over 2 replicates" on four_groups: A is the subject's (no_edit),
    B JTT's with id_epochs 20 and lambda_up 20; each stated figure lies inside the measured mean's 95% interval,
    widened by half a unit of its two printed decimals."""
    import cowbench.methods.jtt as jtt_module
    from cowbench.reports.table import build_tables, load_results

    stated = re.search(r"worst-group accuracy\s+(\d\.\d\d) -> (\d\.\d\d) over 2 replicates, root seed 0",
                       " ".join(jtt_module.JTT.__doc__.split()))
    assert stated, "the JTT docstring no longer states its four_groups figures"
    (tmp_path / "suite.toml").write_text(JTT_SUITE.format())
    done = subprocess.run([sys.executable, "-m", "cowbench", "run", str(tmp_path / "suite.toml"), "--out",
                           str(tmp_path / "out"), "--quiet"], capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = build_tables(load_results(tmp_path / "out")).summary
    wga = summary[summary.metric == "wga"].set_index("method")
    for method, figure in (("no_edit", float(stated.group(1))), ("jtt", float(stated.group(2)))):
        lo, hi = float(wga.loc[method, "lo"]), float(wga.loc[method, "hi"])
        assert lo - 0.005 <= figure <= hi + 0.005, (method, figure, float(wga.loc[method, "mean"]), lo, hi)
