"""HTML: one self-contained leaderboard page (inline CSS and JavaScript, no URL of any kind).

On top, the front page (`cowbench.reports.leaderboard`): per track, methods against scenarios on the primary
metric with the rank across scenarios. Then one table per track, one row per (scenario, method setting): rank,
P(best) and every metric of the track with its interval and replicate count (the numbers of
`cowbench.reports.table.tidy_cells`); filters by scenario family and access level; every column sorts on a click
(numbers by value, missing last). The page reads the same choices from its query string
(``?family=cow&access=pooled&sort=world-rank&dir=desc``) so a link (or a test driving a headless browser) can
reproduce a view. Below the tables: the aggregation across scenarios, skipped pairs, failed jobs and the
provenance.
"""

from __future__ import annotations

import json
import math
from html import escape

import pandas as pd

from cowbench.reports.leaderboard import html_section, short_labels
from cowbench.reports.table import TRACK_TITLES, Tables, access_key, scenario_label, tidy_cells
from cowbench.reports.text import fmt

NAME = "html"
FILENAME = "report.html"

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#1d2430;background:#fff}
h1{font-size:22px;margin:0 0 6px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #d8dee8;
padding-bottom:4px}
.meta{color:#4a5568;margin:0 0 14px}.meta code{background:#f1f4f8;padding:0 4px;border-radius:3px}
.filters{position:sticky;top:0;background:#fff;padding:8px 0;z-index:2;display:flex;gap:18px;align-items:center;
border-bottom:1px solid #eef1f5}
.filters label{font-weight:600}select{font:inherit;padding:2px 6px}
table{border-collapse:collapse;margin:6px 0 10px;font-variant-numeric:tabular-nums}
th,td{padding:3px 9px;vertical-align:baseline;border-bottom:1px solid #eef1f5;text-align:right;white-space:nowrap}
th{background:#f6f8fb;cursor:pointer;user-select:none;position:relative}
th.text,td.text{text-align:left}th[aria-sort=ascending]::after{content:" \\25B2";font-size:10px}
th[aria-sort=descending]::after{content:" \\25BC";font-size:10px}
tr:hover td{background:#fafbfd}td.best .mean{font-weight:700}
.ci{color:#6b7685;font-size:12px;margin-left:4px}.n{color:#9aa3af;font-size:11px;margin-left:3px}
td.na{color:#b0b7c3}.acc{font-size:12px;color:#3b4a5e}.note{color:#4a5568;font-size:13px;max-width:70em}
pre{background:#f6f8fb;padding:10px;overflow:auto;font-size:12px;max-height:30em}
#status{color:#4a5568;font-size:13px}
dl.prov{display:grid;grid-template-columns:max-content auto;gap:2px 14px;font-size:13px}dl.prov dt{font-weight:600}
dl.prov dd{margin:0;color:#3b4a5e}.scroll{overflow-x:auto;max-width:100%}
h3{font-size:15px;margin:18px 0 4px}table.front th,table.front td{padding:2px 6px;font-size:12px}
table.front th{cursor:default}td.scn{max-width:16em;overflow:hidden;text-overflow:ellipsis}
"""

_JS = """
(function(){
  const q = new URLSearchParams(window.location.search);
  const fam = document.getElementById('family'), acc = document.getElementById('access');
  if (q.has('family')) fam.value = q.get('family');
  if (q.has('access')) acc.value = q.get('access');
  function apply(){
    let shown = 0;
    document.querySelectorAll('table.board tbody tr').forEach(function(tr){
      const ok = (fam.value === '' || tr.dataset.family === fam.value) &&
                 (acc.value === '' || tr.dataset.access === acc.value);
      tr.hidden = !ok; if (ok) shown += 1;
    });
    document.querySelectorAll('table.across tbody tr').forEach(function(tr){
      tr.hidden = !(acc.value === '' || tr.dataset.access === acc.value);
    });
    document.querySelectorAll('section.track').forEach(function(sec){
      sec.hidden = sec.querySelectorAll('tbody tr:not([hidden])').length === 0;
    });
    document.getElementById('status').textContent = shown + ' rows shown';
  }
  function key(td){
    if (!td) return null;
    const v = td.dataset.value;
    if (v === undefined) return td.textContent.trim().toLowerCase();
    return v === '' ? null : parseFloat(v);
  }
  function sortBy(th, dir){
    const table = th.closest('table'), tbody = table.tBodies[0];
    const col = Array.prototype.indexOf.call(th.parentNode.children, th);
    const rows = Array.prototype.slice.call(tbody.rows);
    rows.sort(function(a, b){
      const x = key(a.cells[col]), y = key(b.cells[col]);
      if (x === null && y === null) return 0;
      if (x === null) return 1;
      if (y === null) return -1;
      const c = x < y ? -1 : x > y ? 1 : 0;
      return dir === 'asc' ? c : -c;
    });
    rows.forEach(function(r){ tbody.appendChild(r); });
    table.querySelectorAll('th').forEach(function(h){ h.removeAttribute('aria-sort'); });
    th.setAttribute('aria-sort', dir === 'asc' ? 'ascending' : 'descending');
  }
  document.querySelectorAll('table.board th').forEach(function(th){
    th.addEventListener('click', function(){
      sortBy(th, th.getAttribute('aria-sort') === 'ascending' ? 'desc' : 'asc');
    });
  });
  fam.addEventListener('change', apply); acc.addEventListener('change', apply);
  if (q.has('sort')) {
    const th = document.getElementById(q.get('sort'));
    if (th) sortBy(th, q.get('dir') === 'desc' ? 'desc' : 'asc');
  }
  apply();
  document.body.setAttribute('data-ready', '1');
})();
"""


def _num(x: float) -> str:
    """A ``data-value`` attribute value: repr precision, empty for a missing number."""
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else repr(float(x))


def _cell(metric: str, row: pd.Series | None) -> str:
    if row is None:
        return '<td class="na" data-value="">—</td>'
    mean, lo, hi = float(row["mean"]), float(row["lo"]), float(row["hi"])
    ci = "" if math.isnan(lo) or math.isnan(hi) else f'<span class="ci">[{fmt(lo)}, {fmt(hi)}]</span>'
    cls = ' class="best"' if bool(row["best"]) else ""
    return (f'<td{cls} data-value="{_num(mean)}" data-metric="{escape(metric)}" data-lo="{_num(lo)}" '
            f'data-hi="{_num(hi)}" data-n="{int(row["n"])}"><span class="mean">{fmt(mean)}</span>{ci}'
            f'<span class="n">({int(row["n"])})</span></td>')


def _board(tables: Tables, track: str, cells: pd.DataFrame, short: dict[str, str] | None = None) -> list[str]:
    """One track's table; ``short``: the scenario names shown (the full label on hover), so that a long
    ``linear_sem(...)`` label does not push the metric columns off a 1400 px screen."""
    short = short or {}
    metrics = [m for m in tables.scores.index if m in set(cells["metric"])]
    arrows = {m: "↑" if tables.scores.loc[m, "higher_is_better"] else "↓" for m in metrics}
    heads = [("scenario", "scenario", "text"), ("access", "access", "text"), ("rank", "rank", ""),
             ("p_best", "P(best)", ""), ("method", "method", "text"),
             *((m, f"{m} {arrows[m]}", "") for m in metrics)]
    out = [f'<section class="track" data-track="{escape(track)}">',
           f"<h2>{escape(TRACK_TITLES.get(track, track))}</h2>",
           f'<div class="scroll"><table class="board" id="board-{escape(track)}"><thead><tr>']
    out += [f'<th id="{escape(track)}-{escape(k)}" data-key="{escape(k)}"'
            + (f' class="{c}"' if c else "") + f">{escape(label)}</th>" for k, label, c in heads]
    out.append("</tr></thead><tbody>")
    for (scenario, entry), block in cells.groupby(["scenario", "entry"], sort=False):
        rows = block.set_index("metric")
        first = block.iloc[0]
        rank, p_best = first["rank"], first["p_best"]
        out.append(f'<tr data-family="{escape(str(first["family"]))}" data-access="{escape(str(first["access"]))}" '
                   f'data-scenario="{escape(str(scenario))}" data-entry="{escape(str(entry))}">'
                   f'<td class="text scn" title="{escape(str(scenario))}">'
                   f'{escape(short.get(str(scenario), str(scenario)))}</td>'
                   f'<td class="text acc">{escape(str(first["access"]))}</td>'
                   f'<td data-value="{_num(rank)}">{"—" if pd.isna(rank) else int(rank)}</td>'
                   f'<td data-value="{_num(p_best)}">{"—" if pd.isna(p_best) else f"{p_best:.2f}"}</td>'
                   f'<td class="text">{escape(str(entry))}</td>'
                   + "".join(_cell(m, rows.loc[m] if m in rows.index else None) for m in metrics) + "</tr>")
    out += ["</tbody></table></div>", "</section>"]
    return out


def _across(tables: Tables) -> list[str]:
    agg = tables.across
    if agg.empty:
        return []
    out = ["<h2>Across scenarios</h2>",
           f'<p class="note">Win rate: {escape(tables.provenance.get("aggregation", ""))}.</p>',
           '<table class="across"><thead><tr><th class="text">track</th><th class="text">access</th><th>rank</th>'
           '<th class="text">method</th><th>win rate</th><th>contests</th><th>scenarios</th></tr></thead><tbody>']
    for r in agg.itertuples():
        out.append(f'<tr data-access="{escape(r.access)}"><td class="text">{escape(r.track)}</td>'
                   f'<td class="text acc">{escape(r.access)}</td>'
                   f'<td>{"—" if pd.isna(r.rank) else int(r.rank)}</td><td class="text">{escape(r.entry)}</td>'
                   f'<td>{"—" if pd.isna(r.win_rate) else f"{r.win_rate:.2f}"}</td><td>{r.contests}</td>'
                   f"<td>{r.scenarios}/{r.tables}</td></tr>")
    return [*out, "</tbody></table>"]


def _provenance_list(prov: dict) -> str:
    def versions(d: dict) -> str:
        return "; ".join(f"{k} {', '.join(v)}" for k, v in sorted(d.items())) or "?"

    package, scorer = prov.get("package") or {}, prov.get("scorer") or {}
    items = [("suite", f"{prov.get('suite')} (hash {prov.get('suite_hash')})"),
             ("root seed · replicates", f"{prov.get('root_seed')} · {prov.get('replicates')}"),
             ("cowbench", f"{', '.join(package.get('versions') or []) or '?'} (installed {package.get('installed')})"),
             ("scorer", f"{', '.join(scorer.get('versions') or []) or '?'} (installed {scorer.get('installed')})"),
             ("generators", versions(prov.get("generators") or {})),
             ("methods", versions(prov.get("methods") or {})),
             ("selection", ", ".join(prov.get("selection") or [])),
             ("machine", str(prov.get("machine") or "no fingerprint in the run records")),
             ("ledger", str(prov.get("ledger") or "none")),
             ("plugins", ", ".join(prov.get("plugins") or []) or "none (built-in methods only)")]
    return '<dl class="prov">' + "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in items) + "</dl>"


def _options(values: list[str], element: str, label: str) -> str:
    opts = "".join(f'<option value="{escape(v)}">{escape(v)}</option>' for v in values)
    return f'<label for="{element}">{label}</label><select id="{element}"><option value="">all</option>{opts}</select>'


def render(tables: Tables) -> str:
    """The leaderboard page as one HTML string."""
    prov, res = tables.provenance, tables.results
    cells = tidy_cells(tables)
    suite = prov.get("suite") or "?"
    families = sorted(set(cells["family"]))
    accesses = sorted(set(cells["access"]), key=access_key)
    rules = ", ".join(prov.get("selection") or ["defaults"])
    versions = ", ".join((prov.get("package") or {}).get("versions") or []) or (prov.get("package") or {}).get(
        "installed", "?")
    body = [f"<h1>cowbench leaderboard: {escape(suite)}</h1>",
            f'<p class="meta">suite hash <code>{escape(str(prov.get("suite_hash") or "unknown"))}</code> · '
            f"cowbench {escape(str(versions))} · root seed {escape(str(prov.get('root_seed')))} · "
            f"{escape(str(prov.get('replicates')))} replicates · selection: {escape(rules)} · cells: mean "
            f"[{tables.level * 100:g}% interval] (n); bold: best ranked setting of its scenario; rows by scenario, "
            "access level, rank; click a column to sort</p>",
            html_section(tables),
            '<h2>Per scenario</h2>',
            '<div class="filters">', _options(families, "family", "scenario family"),
            _options(accesses, "access", "access level"), '<span id="status"></span>', "</div>"]
    if cells.empty:
        body.append("<p>No finished jobs.</p>")
    short = short_labels(list(set(cells["scenario"])))
    for track in TRACK_TITLES:
        part = cells[cells["track"] == track]
        if not part.empty:
            body += _board(tables, track, part, short)
    body += _across(tables)
    skipped = (res.manifest or {}).get("skipped", [])
    if skipped:
        body += [f"<h2>Skipped pairs ({len(skipped)})</h2>", '<ul class="skipped">']
        body += [f"<li>{escape(s['method'])} on {escape(scenario_label(s['scenario']))}: {escape(s['reason'])}</li>"
                 for s in skipped]
        body.append("</ul>")
    if res.failed:
        body += [f"<h2>Failed jobs ({len(res.failed)})</h2>", '<ul class="failed">']
        body += [f"<li><code>{escape(r['job_id'][:12])}</code> {escape(r['spec']['method'])} on "
                 f"{escape(scenario_label(r['spec']['scenario']))} replicate {r['spec']['replicate']}: "
                 f"{escape(str(r.get('error', '?')).splitlines()[-1] if r.get('error') else '?')}</li>"
                 for r in res.failed]
        body.append("</ul>")
    body += ["<h2>Provenance</h2>", _provenance_list(prov),
             "<details><summary>everything (JSON, as in summary.json)</summary>"
             f'<pre id="provenance">{escape(json.dumps(prov, indent=1, sort_keys=True, default=str))}</pre></details>']
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>cowbench leaderboard: {escape(suite)}</title><style>{_CSS}</style></head>\n<body>\n"
            + "\n".join(body) + f"\n<script>{_JS}</script>\n</body></html>\n")
