"""Controls (no edit, random ablations) are scored and shown, marked "(control)" in every format, and never
ranked: no rank, no P(best), no part in the across-scenario win rates.

The synthetic run of the conftest with method ``c`` renamed to a registered control (``no_edit``): ``c`` is
the worst method on cow and ties ``b`` for best on four_groups, so as a competitor it would take a rank
there, share P(best) and win contests. The same frame with ``c`` kept as a competitor is the counter-check:
the rank it gets there is what the control flag takes away.
"""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

from cowbench.reports import get_format
from cowbench.reports.markdown import render_markdown
from cowbench.reports.table import CONTROL_MARK, build_tables, is_control, results_from_frame

from .conftest import MANIFEST, synthetic_frame

CONTROL = "no_edit"
LABEL = CONTROL + CONTROL_MARK


def _tables(control: str):
    frame = synthetic_frame()
    frame["method"] = frame["method"].replace({"c": control})
    return build_tables(results_from_frame(frame, manifest=MANIFEST))


@pytest.fixture(scope="module")
def with_control():
    return _tables(CONTROL)


@pytest.fixture(scope="module")
def as_competitor():
    return _tables("c")


def test_the_registered_controls_are_controls_and_a_competitor_is_not():
    for name in ("no_edit", "random_direction_ablation", "random_neuron_ablation"):
        assert is_control(name), name
    assert not is_control("logistic") and not is_control("not_a_registered_method")


def test_a_control_gets_no_rank_no_p_best_and_no_win_rate(with_control, as_competitor):
    # the counter-check: as a competitor, c ties b for rank 1 on four_groups and has a P(best) there
    rk = as_competitor.ranks.set_index(["scenario", "entry"])
    assert rk.loc[("four_groups", "c"), "rank"] == 1
    stability = as_competitor.stability
    assert ("four_groups", "c") in set(zip(stability.scenario, stability.entry, strict=True))
    assert "c" in set(as_competitor.across.entry)

    ranks = with_control.ranks
    mine = ranks[ranks.entry == LABEL]
    assert len(mine) == 2 and mine["rank"].isna().all() and (mine["unranked"] == "control").all()
    assert LABEL not in set(with_control.stability.entry)
    assert LABEL not in set(with_control.across.entry)
    # the control is the gate: on cow a_method and b beat it and are ranked; on four_groups it ties b and beats
    # a_method, so nobody is ranked there (measured control level, not a declared chance level)
    cow = ranks[ranks.scenario == "cow"].set_index("entry")
    assert cow.loc["a_method", "rank"] == 1 and cow.loc["b", "rank"] == 2 and (cow["gate"] == LABEL).all()
    fg = ranks[ranks.scenario == "four_groups"].set_index("entry")
    assert fg["rank"].isna().all() and fg.loc[["a_method", "b"], "unranked"].eq("below control").all()
    assert set(with_control.stability.scenario) == {"cow"}
    assert with_control.stability.groupby("scenario")["p_best"].sum().round(9).eq(1).all()


def test_every_format_shows_the_control_marked_with_its_numbers(with_control):
    md = render_markdown(with_control)
    rows = [line for line in md.splitlines() if f"| {LABEL} |" in line]
    assert len(rows) == 2 and all(line.startswith("| — | — |") for line in rows)  # no rank, no P(best)
    assert f"not ranked, controls (what the others are read against): {LABEL}" in md
    csv = pd.read_csv(io.StringIO(get_format("csv").render(with_control)), keep_default_na=False, na_values=[""])
    cells = pd.DataFrame(json.loads(get_format("json").render(with_control))["cells"])
    for frame in (csv, cells):
        mine = frame[frame.entry == LABEL]
        assert len(mine) == 4  # 2 scenarios x 2 metrics, each scored
        assert mine["rank"].isna().all() and mine["p_best"].isna().all() and not mine["best"].astype(bool).any()
        assert (mine["unranked"] == "control").all()
    for fmt in ("latex", "html"):
        text = get_format(fmt).render(with_control)
        assert "no_edit (control)" in text.replace("\\_", "_"), fmt
