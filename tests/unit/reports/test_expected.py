"""`cowbench show NAME` prints each scenario's expected successes and failures with citations (read off the
generator's docstrings), and `cowbench list methods` groups methods by family."""

from __future__ import annotations

import contextlib
import io
import json
import re

import pytest

import cowbench as cb
from cowbench.cli import main
from cowbench.reports.expected import citations

# what a citation looks like: an author and a year, or an arXiv identifier
CITATION = re.compile(r"([A-Z][A-Za-z'\-]+.* (19|20)\d{2})|arXiv:\d{4}\.\d{4,5}")


def cli(*args: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(list(args)) == 0
    return out.getvalue()


def test_citations_are_found_once_each_even_across_a_line_break():
    text = ("IRMv1 needs more environments (Rosenfeld, Ravikumar &\n    Risteski 2021, arXiv:2010.05761); "
            "simplicity bias (Shah et al. 2020); lasso (Zhao & Yu 2006); again Shah et al. 2020. In 2020 nothing.")
    assert citations(text) == ["Rosenfeld, Ravikumar & Risteski 2021", "arXiv:2010.05761", "Shah et al. 2020",
                               "Zhao & Yu 2006"]
    assert citations("no reference here, 12 units and version 2.0") == []


@pytest.mark.parametrize("name", cb.list_scenarios())
def test_show_prints_expected_outcomes_with_a_citation(name):
    text = cli("show", name)
    assert "expected outcomes:" in text, name
    section = text[text.index("expected outcomes:"):]
    body, refs = section.split("\nreferences: ", 1)
    assert "Expected" in body and "none stated" not in body, name  # a stated expectation, not a placeholder
    assert refs.strip() != "none" and CITATION.search(refs), f"{name}: no citation in {refs!r}"
    info = json.loads(cli("show", name, "--json"))
    assert info["expected"]["outcomes"] and info["expected"]["references"]


def test_a_preset_shows_its_own_expectation_before_its_familys():
    text = cli("show", "cow_xor")
    body = text[text.index("expected outcomes:"):]
    assert body.index("simplicity bias") < body.index("Expected behaviour: ERM (linear or MLP)")


def test_list_methods_groups_every_method_under_its_family_and_marks_controls():
    from cowbench.registries import METHODS

    text = cli("list", "methods")
    family, seen = None, {}
    for line in text.splitlines()[1:]:
        if re.fullmatch(r"  \S+:", line):
            family = line.strip()[:-1]
        elif line.startswith("    "):
            seen[line.split()[0]] = (family, line.rstrip().endswith("(control)"))
    assert seen == {name: (cls.family, bool(getattr(cls, "control", False))) for name, cls in METHODS.items()}
