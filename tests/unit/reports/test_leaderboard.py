"""The front page: per track and selection rule, methods x scenarios on the primary metric, read back against
tables built by hand.

Two runs with known answers. The conftest's synthetic run (2 scenarios x 3 methods x 3 replicates, world_err
lower is better), whose paired-test outcome is checked with scipy's ``ttest_rel``. And a hand-made run
(`HAND`, 4 scenarios x 4 replicates) built to attack the page: a control with the best mean of a scenario
(nobody beats it there), two methods that tie by the paired test on one scenario and tie across scenarios, a
method below the control on one scenario, a method that runs on one scenario only and leads it by far (it
must not win by its absence from the others), a method missing replicates, and two methods told the spurious
variable (their own league). The expected page is written out row by row below, worked out by hand from the
numbers; the page's code is not consulted for it.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ttest_rel

from cowbench.reports import get_format, leaderboard
from cowbench.reports.leaderboard import (
    CONTROLS_GROUP,
    MAX_LABEL,
    boards,
    heatmap,
    html_section,
    render_leaderboard,
    short_labels,
    standing,
)
from cowbench.reports.table import build_tables, results_from_frame

from .conftest import MANIFEST, VALUES, synthetic_frame


def md_rows(text: str) -> dict[str, list[str]]:
    """method -> its cells (rank, method, scenarios..., win rate, ranked in) in the tables of ``text``."""
    out = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) > 3 and cells[1] and not cells[1].startswith("*") \
                and cells[0] != "rank":
            out[cells[1]] = cells
    return out


def section(text: str, heading: str) -> list[str]:
    """The table lines (``|``) under ``heading`` up to the next heading."""
    lines = text.splitlines()
    start = lines.index(heading)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return [line for line in lines[start:end] if line.startswith("|")]


# ---- the conftest's synthetic run ---------------------------------------------------------------------------

def test_cells_are_the_means_bold_only_where_the_paired_test_separates_and_rows_grouped_as_ranked(synthetic_tables):
    # the paired-test outcome, independently: on cow a_method is below b and c in every replicate (separated);
    # on four_groups b and c are equal replicate by replicate and a_method's difference from them is not
    # significant once Holm doubles its p (two comparisons with the leader): all three share rank 1 there
    a, b, c = (VALUES[("four_groups", m, acc)] for m, acc in (("a_method", "pooled"), ("b", "pooled+env"),
                                                              ("c", "pooled")))
    p = ttest_rel(a, c).pvalue
    assert 0.025 < p < 0.05 and 2 * p > 0.05 and b == c
    text = get_format("leaderboard").render(synthetic_tables)
    assert "## World recovery: world_err ↓" in text and "selection:" not in text  # one rule: not named
    rows = md_rows(text)
    for (scenario, method, _), values in VALUES.items():
        column = ["cow", "four_groups"].index(scenario) + 2
        assert rows[method][column].strip("*") == f"{np.mean(values):.3f}"
    # bold: cow's separated leader only; four_groups' three-way tie bolds no one
    assert rows["a_method"][2] == "**0.250**"
    assert [rows[m][3] for m in ("a_method", "b", "c")] == ["0.420", "0.200", "0.200"]
    assert not any("**" in rows[m][2] for m in ("b", "c"))
    # contests within the league (all three untold): cow a > b > c; four_groups all tied (half each):
    # a 2 + 1 = 3 of 4, b 1 + 1 = 2 of 4, c 0 + 1 = 1 of 4. Ranked within league and access level: pooled a 1,
    # c 2; pooled+env b 1 (alone in its group: "1", not "1=")
    assert [rows[m][0] for m in ("a_method", "c", "b")] == ["1", "2", "1"]
    assert [rows[m][-2] for m in ("a_method", "c", "b")] == ["0.75", "0.25", "0.50"]
    assert [rows[m][-1] for m in ("a_method", "c", "b")] == ["2/2"] * 3
    order = [line.split("|")[2].strip() for line in section(text, "## World recovery: world_err ↓")[2:]]
    assert order == ["*not told · pooled*", "a_method", "c", "*not told · pooled+env*", "b"]


# ---- a hand-made run that attacks the page ------------------------------------------------------------------

SCORES = pd.DataFrame([{"metric": "err", "track": "world", "higher_is_better": False, "primary": True,
                        "lower": 0.0, "upper": 1.0, "chance": 1.0, "binary": None}]).set_index("metric")
E = [0.00, 0.03, 0.01, 0.02]  # a replicate's shared difficulty: every method sees the same data in a replicate
Z = [0.05, -0.04, 0.04, -0.03]  # alpha's extra noise on linear_sem: mean 0.005, not significant (below)
SCENARIOS = ["cow", "cow(agreement_test=0.5)", "four_groups", "linear_sem"]
# method -> (access, told, {scenario: base}); a value is base + E[r] (alpha on linear_sem: + Z[r] too)
HAND = {
    "zero": ("pooled", "", dict(zip(SCENARIOS, [0.60, 0.60, 0.10, 0.60], strict=True))),  # the control
    "alpha": ("pooled", "", dict(zip(SCENARIOS, [0.20, 0.35, 0.30, 0.30], strict=True))),
    "beta": ("pooled", "", dict(zip(SCENARIOS, [0.40, 0.30, 0.40, 0.30], strict=True))),
    "gamma": ("pooled", "", dict(zip(SCENARIOS, [0.70, 0.50, 0.40, 0.50], strict=True))),
    "spotty": ("pooled", "", {"cow": 0.05}),
    "told_m": ("pooled+group", "group", dict.fromkeys(SCENARIOS, 0.10)),
    "told_n": ("pooled+group", "group", dict.fromkeys(SCENARIOS, 0.15)),
}
PARTIAL = [0.01, 0.04, 0.02]  # "partial" on cow(agreement_test=0.5): 3 of the 4 replicates


def hand_frame(selection: str | None = None) -> pd.DataFrame:
    rows = []
    for method, (access, told, bases) in HAND.items():
        for scenario, base in bases.items():
            for r, e in enumerate(E):
                extra = Z[r] if (method, scenario) == ("alpha", "linear_sem") else 0.0
                rows.append({"scenario": scenario, "method": method, "access": access, "told": told, "replicate": r,
                             "value": base + e + extra, "control": method == "zero"})
    rows += [{"scenario": "cow(agreement_test=0.5)", "method": "partial", "access": "pooled", "told": "",
              "replicate": r, "value": v, "control": False} for r, v in enumerate(PARTIAL)]
    frame = pd.DataFrame(rows).assign(hparams="", metric="err")
    frame["job_id"] = [f"{s}-{m}-{r}" for s, m, r in zip(frame.scenario, frame.method, frame.replicate, strict=True)]
    return frame if selection is None else frame.assign(selection=selection)


@pytest.fixture(scope="module")
def hand_tables():
    return build_tables(results_from_frame(hand_frame(), manifest=MANIFEST), scores=SCORES)


# The page, worked out by hand. Means: a base + mean(E) = base + 0.015 (alpha on linear_sem + mean(Z) = 0.005).
# Per scenario, league "not told" (the control gates every league of its table):
#   cow: spotty 0.065 < alpha 0.215 < beta 0.415, each apart by the same amount in every replicate (separated):
#        ranks 1 (bold), 2, 3; gamma 0.715 is worse than the control 0.615: not ranked (italic)
#   cow(agreement_test=0.5): beta 0.315 < alpha 0.365 < gamma 0.515: 1 (bold), 2, 3; partial has 3 of 4
#        replicates: incomplete, not ranked (italic) although its mean 0.023 is the lowest
#   four_groups: the control's 0.115 is the best mean; told_m equals it in every replicate; nobody is better:
#        nobody ranked (every competitor italic), the control not bold
#   linear_sem: beta 0.315 leads, alpha 0.320 differs by Z (p 0.84): both "1=", no bold; gamma 0.515: 3
# League "told": told_m 0.115 beats told_n 0.165 in every replicate on cow, cow(ag), linear_sem: bold there.
# Contests (ranked pairs of a league in a table; a tie counts half):
#   alpha: cow 1 of 2 (beats beta), cow(ag) 1 of 2 (gamma), linear_sem 1.5 of 2 -> 3.5/6 = 0.58
#   beta:  cow 0 of 2, cow(ag) 2 of 2, linear_sem 1.5 of 2 -> 3.5/6 = 0.58: tied with alpha, both "1="
#   gamma: 0 of 4 -> 0.00, ranked in 2 of the 3 tables that rank anyone (>= 50%): rank 3
#   spotty: 2 of 2 -> 1.00, the best rate of all, but ranked in 1 of 3 tables (< 50%): no rank, listed after
#   the ranked; partial: ranked nowhere; told_m 3/3 = 1.00 rank 1, told_n 0.00 rank 2 (their own group)
EXPECTED = [
    "| rank | method | cow | cow(agreement_test=0.5) | four_groups | linear_sem | win rate | ranked in |",
    "|---|---|---|---|---|---|---|---|",
    "| | *not told · pooled* | | | | | | |",
    "| 1= | alpha | 0.215 | 0.365 | *0.315* | 0.320 | 0.58 | 3/3 |",
    "| 1= | beta | 0.415 | **0.315** | *0.415* | 0.315 | 0.58 | 3/3 |",
    "| 3 | gamma | *0.715* | 0.515 | *0.415* | 0.515 | 0.00 | 2/3 |",
    "| — | spotty | **0.065** | — | — | — | — | 1/3 |",
    "| — | partial | — | *0.023* | — | — | — | 0/3 |",
    "| | *told · pooled+group* | | | | | | |",
    "| 1 | told_m | **0.115** | **0.115** | *0.115* | **0.115** | 1.00 | 3/3 |",
    "| 2 | told_n | 0.165 | 0.165 | *0.165* | 0.165 | 0.00 | 3/3 |",
    f"| | *{CONTROLS_GROUP}* | | | | | | |",
    "| — | zero (control) | 0.615 | 0.615 | 0.115 | 0.615 | — | — |",
]


def test_the_hand_made_run_gives_the_page_worked_out_by_hand(hand_tables):
    # the one non-trivial test outcome of the design, checked independently: alpha vs beta on linear_sem
    alpha = [0.30 + e + z for e, z in zip(E, Z, strict=True)]
    beta = [0.30 + e for e in E]
    assert ttest_rel(alpha, beta).pvalue == pytest.approx(0.84, abs=0.01)
    text = render_leaderboard(hand_tables)
    assert section(text, "## World recovery: err ↓") == EXPECTED
    assert ("No setting ranked (none beats its gate by the paired test) on: four_groups (against the best "
            "control zero (control)).") in text


def test_a_control_is_never_ranked_even_with_the_best_mean(hand_tables):
    (board,) = boards(hand_tables)
    control = next(r for r in board.rows if r["control"])
    assert control["name"] == "zero (control)" and control["rank"] == "—" and np.isnan(control["win_rate"])
    assert board.rows[-1] is control and control["group"] == CONTROLS_GROUP  # below every league
    # the best mean on four_groups is the control's, and no cell there is bold
    four = {r["name"]: board.value(r["entry"], "four_groups") for r in board.rows}
    assert min(four, key=lambda k: (four[k], k != "zero (control)")) == "zero (control)"
    assert not any(board.bold(r["entry"], "four_groups") for r in board.rows)
    # the same frame with "zero" as a competitor: it takes four_groups (the counter-check that the flag matters)
    frame = hand_frame().assign(control=False)
    (as_method,) = boards(build_tables(results_from_frame(frame, manifest=MANIFEST), scores=SCORES))
    zero = next(r for r in as_method.rows if r["entry"] == "zero")
    assert not zero["control"] and as_method.scenario_rank("zero", "four_groups") in ("1", "1=")


def test_a_method_ranked_on_one_scenario_does_not_win_by_its_absence(hand_tables):
    (board,) = boards(hand_tables)
    spotty = next(r for r in board.rows if r["entry"] == "spotty")
    # it beat everyone where it ran (win rate 1.0 in report.md's across table), but 1 of 3 tables is no ranking
    assert hand_tables.across.set_index("entry").loc["spotty", "win_rate"] == 1.0
    assert spotty["rank"] == "—" and spotty["unranked"] == "coverage" and spotty["ranked_in"] == 1
    untold = [r["entry"] for r in board.rows if r["group"] == "not told · pooled"]
    assert untold.index("spotty") > max(untold.index(m) for m in ("alpha", "beta", "gamma"))
    # a mean over the scenarios a method chose to run would crown it (and told_m); the page does not sort by it
    means = {r["entry"]: np.nanmean([board.value(r["entry"], s) for s in board.columns]) for r in board.rows}
    assert min(means, key=means.get) == "partial" and sorted(means, key=means.get)[1] == "spotty"


def test_one_replicate_crowns_no_one():
    # a paired test needs two pairs: with one replicate nothing is ranked, so the page shows no rank, no bold
    frame = hand_frame()
    tables = build_tables(results_from_frame(frame[frame.replicate == 0], manifest=MANIFEST), scores=SCORES)
    rows = md_rows(render_leaderboard(tables))
    assert {r[0] for r in rows.values()} == {"—"} and {r[-1] for r in rows.values()} == {"—"}
    assert not any("**" in cell for r in rows.values() for cell in r)
    assert rows["spotty"][2] == "*0.050*" and rows["zero (control)"][4] == "0.100"
    assert ("No setting ranked on any scenario (none beats the best control zero (control) by the paired test)."
            in render_leaderboard(tables))


def test_on_the_edit_track_the_groups_are_the_access_levels():
    # every edit method is told the target, so the leagues are the access levels: the same run on an edit
    # metric groups by access alone (told_m, told_n with pooled+group access; the rest pooled), controls apart
    scores = pd.DataFrame([{**SCORES.loc["err"].to_dict(), "metric": "edit_err", "track": "edit",
                            "chance": np.nan}]).set_index("metric")
    frame = hand_frame().assign(metric="edit_err", told="edit_target")
    text = render_leaderboard(build_tables(results_from_frame(frame, manifest=MANIFEST), scores=scores))
    lines = section(text, "## Edit: edit_err ↓")
    groups = [line.split("|")[2].strip() for line in lines if line.startswith("| | *")]
    assert groups == ["*pooled*", "*pooled+group*", f"*{CONTROLS_GROUP}*"]
    assert lines[-1].startswith("| — | zero (control) |")


def test_ties_show_as_ties(hand_tables):
    (board,) = boards(hand_tables)
    rank = {r["entry"]: r["rank"] for r in board.rows}
    assert rank["alpha"] == rank["beta"] == "1="  # equal win rates across scenarios
    assert board.scenario_rank("alpha", "linear_sem") == board.scenario_rank("beta", "linear_sem") == "1="
    assert not board.bold("alpha", "linear_sem") and not board.bold("beta", "linear_sem")
    # one rank in a group is not a tie: told_m is "1" although alpha and beta share "1" in another group
    assert rank["told_m"] == "1"


def test_the_heatmap_and_the_html_mark_the_same_cells_as_the_markdown(hand_tables):
    (board,) = boards(hand_tables)
    fig = heatmap(board)
    row_of = {r["entry"]: i for i, r in enumerate(board.rows)}
    texts = {(round(t.get_position()[1]), round(t.get_position()[0])): t for t in fig.axes[0].texts}
    cow, four = board.columns.index("cow"), board.columns.index("four_groups")
    assert texts[(row_of["spotty"], cow)].get_fontweight() == "bold"  # the separated leader
    assert texts[(row_of["gamma"], cow)].get_fontstyle() == "italic"  # below the control there
    control = texts[(row_of["zero (control)"], four)]  # the best mean of four_groups, not bold, not italic
    assert control.get_text() == "0.12" and control.get_fontweight() == "normal" and control.get_fontstyle() == "normal"
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels[0].split() == ["1=", "alpha"] and labels[-1].split() == ["—", "zero", "(control)"]
    html = html_section(hand_tables)
    gamma = next(line for line in html.splitlines() if '<td class="text">gamma</td>' in line)
    assert gamma.count('class="unranked"') == 2 and "<td>3</td>" in gamma and "<td>2/3</td>" in gamma
    control_row = next(line for line in html.splitlines() if "zero (control)" in line)
    assert f'data-group="{CONTROLS_GROUP}"' in control_row and 'class="best"' not in control_row
    assert "unranked" not in control_row and "four_groups (against the best control zero (control))" in html


def test_one_table_per_selection_rule_ranked_within_its_rule():
    """A setting chosen on test data (oracle) never outranks, nor is ranked among, one chosen on validation."""
    train = hand_frame("train_val")
    oracle = hand_frame("oracle").assign(job_id=lambda f: f.job_id + "-o")
    # under the oracle the untold order flips on cow: beta 0.015 < alpha 0.215
    oracle.loc[(oracle.method == "beta") & (oracle.scenario == "cow"), "value"] -= 0.40
    tables = build_tables(results_from_frame(pd.concat([train, oracle], ignore_index=True), manifest=MANIFEST),
                          scores=SCORES)
    found = boards(tables)
    assert [(b.selection, b.slug) for b in found] == [("train_val", "world-train_val"), ("oracle", "world-oracle")]
    text = render_leaderboard(tables, image_dir="plots")
    head_tv = "## World recovery: err ↓ — selection: training-domain validation (val accuracy)"
    head_or = "## World recovery: err ↓ — selection: test-domain oracle on test_bal (upper bound)"
    # the train_val table is the hand-made page, names without the rule (the heading says it)
    assert section(text, head_tv) == EXPECTED
    rows = {line.split("|")[2].strip(): line for line in section(text, head_or)}
    # oracle, cow: beta 0.015 leads (bold), spotty 0.065, alpha 0.215. Contests: alpha 0 + 1 + 1.5 = 2.5/6,
    # beta 2 + 2 + 1.5 = 5.5/6 -> beta 1, alpha 2 (not 4, as a ranking pooled over both rules gives: beta and
    # alpha of train_val would share 2 between them)
    assert rows["beta (upper bound)"].startswith("| 1 | beta (upper bound) | **0.015** |")
    assert rows["alpha (upper bound)"].startswith("| 2 | alpha (upper bound) | 0.215 |")
    assert rows["zero (upper bound) (control)"].startswith("| — |")
    assert "![world-oracle heatmap](plots/leaderboard-world-oracle.png)" in text
    # the LaTeX tables (built from the same boards): one per rule, distinct labels, the rule in the caption
    tex = get_format("latex").render(tables)
    labels = re.findall(r"\\label\{([^}]*)\}", tex)
    assert len(labels) >= 2 and len(set(labels)) == len(labels)
    assert "Selection: training-domain validation" in tex and "Selection: test-domain oracle" in tex


def test_the_page_follows_the_tables_columns_but_never_ranks_or_bolds_a_control(synthetic_tables, monkeypatch):
    """Leagues, bold and ranks are read from the tables, so the page follows the ranking rules as they change;
    a table that (wrongly) gives a control a rank or a bold cell does not get it onto the page."""
    from cowbench.reports import table

    real = table.tidy_cells
    leagues = {"a_method": "blind", "b": "open", "c": "blind"}

    def richer(tables):
        cells = real(tables)
        cells["league"] = cells["entry"].map(leagues)
        cells["bold"] = (cells["entry"] == "b") | (cells["entry"] == "c")  # unlike the paired test's bold
        cells["control"] = cells["entry"] == "c"
        return cells

    monkeypatch.setattr(leaderboard, "tidy_cells", richer)
    across = synthetic_tables.across.assign(league=lambda f: f["entry"].map(leagues), rank=1.0)
    monkeypatch.setattr(synthetic_tables, "across", across)
    text = leaderboard.render(synthetic_tables)
    rows = md_rows(text)
    order = [line.split("|")[2].strip() for line in section(text, "## World recovery: world_err ↓")[2:]]
    assert order == ["*blind · pooled*", "a_method", "*open · pooled+env*", "b", f"*{CONTROLS_GROUP}*",
                     "c (control)"]
    assert rows["b"][2] == "**0.550**" and rows["a_method"][2] == "0.250"  # the tables' bold, as given
    assert rows["c (control)"][:4] == ["—", "c (control)", "0.720", "0.200"]  # no rank, no bold
    assert rows["c (control)"][-2:] == ["—", "—"]
    html = html_section(synthetic_tables)
    control_row = next(line for line in html.splitlines() if "c (control)" in line)
    assert 'class="best"' not in control_row and "<td>1</td>" not in control_row


def test_short_names_for_long_labels_and_a_legend_with_the_full_spec():
    long_a = "linear_sem(beta=2.0, hidden_to_x1=1.0, hidden_to_y=3.0, instrument=1.0)"
    long_b = "linear_sem(y_noise_train=(0.5, 1.0, 2.0))"
    names = short_labels(["cow", long_b, long_a, "linear_sem"])
    assert names == {"cow": "cow", "linear_sem": "linear_sem", long_a: "linear_sem·1", long_b: "linear_sem·2"}
    assert all(len(n) <= MAX_LABEL for n in names.values())
    frame = synthetic_frame().replace({"scenario": {"four_groups": long_a}})
    tables = build_tables(results_from_frame(frame, manifest=MANIFEST))
    text = render_leaderboard(tables, image_dir="plots")
    assert "| linear_sem·1 |" in text.splitlines()[6] or "linear_sem·1" in text
    assert f"- `linear_sem·1`: `{long_a}`" in text
    assert "![world heatmap](plots/leaderboard-world.png)" in text
    html = get_format("html").render(tables)
    assert f'<th title="{long_a}">linear_sem·1</th>' in html
    assert f'title="{long_a}">linear_sem·1</td>' in html  # the detail table: short name, full label on hover




def test_heatmap_colours_are_the_standing_within_each_scenario(synthetic_tables):
    (board,) = boards(synthetic_tables)
    scaled = standing(board)
    # world_err is lower-better: the lowest mean of a column is 1, the highest 0
    cow = scaled["cow"]
    assert cow["a_method"] == 1.0 and cow["c"] == 0.0 and 0 < cow["b"] < 1
    fig = heatmap(board)
    image = fig.axes[0].images[0].get_array()
    assert np.allclose(np.ma.filled(image, np.nan), scaled.to_numpy(), equal_nan=True)
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == ["cow", "four_groups"]


def _chromium() -> str | None:
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


@pytest.mark.skipif(_chromium() is None, reason="no chromium binary (apt-get install chromium)")
def test_html_shows_metric_columns_at_1400_px_with_a_135_character_label(tmp_path):
    """The published page's first column held a 135-character linear_sem(...) label and pushed every metric
    column off a 1400 px screen; the page must show a metric column's header within the window."""
    long = ("linear_sem(beta=2.0, hidden_to_x1=1.0, hidden_to_y=3.0, instrument=1.0, x1_sd_train=(1.0,), "
            "x2_coef_train=(1.0,), y_noise_train=(1.0,))")
    assert len(long) == 135
    frame = synthetic_frame().replace({"scenario": {"four_groups": long}})
    html = get_format("html").render(build_tables(results_from_frame(frame, manifest=MANIFEST)))
    probe = ("<script>window.addEventListener('load',function(){var th=document.getElementById('world-world_err');"
             "document.body.setAttribute('data-right',String(th.getBoundingClientRect().right));"
             "document.body.setAttribute('data-width',String(window.innerWidth));});</script></body>")
    page = tmp_path / "report.html"
    page.write_text(html.replace("</body>", probe))
    run = subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1400,900",
                          "--virtual-time-budget=5000", "--dump-dom", f"file://{page}"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    right = float(re.search(r'data-right="([\d.]+)"', run.stdout).group(1))
    width = float(re.search(r'data-width="([\d.]+)"', run.stdout).group(1))
    assert width == pytest.approx(1400, abs=20)
    assert right <= width, f"world_err header ends at {right} px, the window is {width} px"
    # the measure can fail: without the short name and the capped column (the old page) the header is off screen
    old = html.replace('linear_sem·1</td>', long + "</td>").replace("td.scn{max-width:16em;", "td.scn{")
    page.write_text(old.replace("</body>", probe))
    run = subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1400,900",
                          "--virtual-time-budget=5000", "--dump-dom", f"file://{page}"],
                         capture_output=True, text=True, timeout=120)
    assert float(re.search(r'data-right="([\d.]+)"', run.stdout).group(1)) > width


def test_a_scenario_where_every_method_ties_shades_no_one_as_best():
    frame = synthetic_frame()
    frame.loc[(frame.scenario == "four_groups") & (frame.metric == "world_err"), "value"] = 0.3
    (board,) = boards(build_tables(results_from_frame(frame, manifest=MANIFEST)))
    scaled = standing(board)
    assert (scaled["four_groups"] == 0.5).all() and scaled["cow"].max() == 1.0
