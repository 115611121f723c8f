"""Server-rendered HTML of the console's pages from ``kcollect.console.data`` dicts (pure).

Every value goes through ``html.escape`` (``esc``); nothing from the cluster is ever inserted as markup.
The only script is ``SCRIPT``: live refresh (fetches the page's ``<main>`` again) and the actions
(JSON POSTs carrying the token typed into the page, kept in the tab's sessionStorage).
"""

from __future__ import annotations

import html
import json
from typing import Any
from urllib.parse import quote, urlencode

from streams.runs.status import RunState

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#243447;color:#fff;padding:8px 16px;display:flex;gap:16px;align-items:center}
header a{color:#fff;text-decoration:none;font-weight:600}header a.on{text-decoration:underline}
header .sp{flex:1}header input[type=password]{width:14em}
main{padding:12px 16px}table{border-collapse:collapse;width:100%;background:#fff}
th,td{border-bottom:1px solid #e4e4e4;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f0f2f5}td.n{text-align:right;font-variant-numeric:tabular-nums}
.bar{display:flex;width:220px;height:14px;background:#ddd;border-radius:3px;overflow:hidden}
.bar span{display:block;height:100%}.ok{background:#2e9e4f}.partial{background:#9ccc65}
.dead_lettered{background:#d9534f}.pending{background:#ccc}
.st{font-weight:700;padding:1px 6px;border-radius:3px;color:#fff}
.OK{background:#2e9e4f}.WARNING{background:#e0a800}.STALLED{background:#f0803c}.STOPPED{background:#c9302c}
.REWIND{background:#8b1a1a}.UNMEASURED{background:#7b4397}
pre{white-space:pre-wrap;word-break:break-all;background:#f4f4f4;padding:6px;margin:2px 0;max-height:12em;overflow:auto}
.msg{padding:6px 10px;margin:8px 0;background:#eef5ff;border:1px solid #b6d4fe}.err{background:#fdecea;border-color:#f5c2c7}
form.inline{display:inline}button{cursor:pointer}small{color:#666}
"""

SCRIPT = """
const token = document.getElementById('token');
token.value = sessionStorage.getItem('kcollect-token') || '';
token.addEventListener('change', () => sessionStorage.setItem('kcollect-token', token.value));
function show(text, bad) {
  const box = document.getElementById('message');
  box.textContent = text; box.className = bad ? 'msg err' : 'msg'; box.hidden = false;
}
async function act(url, body) {
  const answer = await fetch(url, {method: 'POST', headers: {'Content-Type': 'application/json',
    'X-Kcollect-Token': token.value}, body: JSON.stringify(body || {})});
  const data = await answer.json().catch(() => ({error: answer.statusText}));
  if (!answer.ok) { show('refused: ' + (data.error || answer.status), true); return null; }
  return data;
}
async function replay(form, run) {
  const body = {stage: form.stage.value || null, error_class: form.error_class.value || null,
                include_stored: form.include_stored.checked, dry_run: true};
  const count = await act('/api/runs/' + encodeURIComponent(run) + '/replay', body);
  if (!count) return false;
  if (count.matched === 0) { show('no dead letter matches'); return false; }
  if (!confirm('Replay ' + count.matched + ' dead-lettered request(s) of ' + run + '?')) return false;
  body.dry_run = false;
  const done = await act('/api/runs/' + encodeURIComponent(run) + '/replay', body);
  if (done) show('replayed ' + done.replayed + ' request(s), ' + done.failed + ' failed');
  return false;
}
async function verify(run) {
  const report = await act('/api/runs/' + encodeURIComponent(run) + '/verify');
  if (!report) return;
  show((report.ok ? 'OK: ' : 'FAILED: ' + report.problems.join('; ') + ': ') + 'stored ' + report.stored +
       ' of ' + report.expected + ', dead-lettered ' + report.dead_lettered + ', lost ' + report.lost +
       ', duplicated under FINAL ' + report.duplicated_final + ', unexpected ' + report.unexpected +
       ', wrong values ' + report.wrong + (report.values_checked ? '' : ' (values not checked)'), !report.ok);
}
async function pause(name, paused) {
  const done = await act('/api/schedules/' + encodeURIComponent(name) + (paused ? '/pause' : '/resume'));
  if (done) { show('schedule ' + name + (paused ? ' paused' : ' resumed')); refresh(); }
}
async function refresh() {
  // Replaces only the parts marked data-live, so a form being filled in keeps its choices.
  const answer = await fetch(location.href, {headers: {'X-Kcollect-Partial': '1'}});
  if (!answer.ok) return;
  const fresh = new DOMParser().parseFromString(await answer.text(), 'text/html');
  for (const part of document.querySelectorAll('[data-live]')) {
    const next = fresh.getElementById(part.id);
    if (next) part.replaceWith(next);
  }
}
const live = document.getElementById('live');
if (live) setInterval(() => { if (live.checked) refresh(); }, 2000);
"""

PAGES = (("runs", "/runs", "Runs"), ("lag", "/lag", "Lag"), ("schedules", "/schedules", "Schedules"))


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def num(value: int | float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def page(current: str, title: str, main: str, live: bool = False) -> str:
    nav = "".join(
        f'<a href="{href}" class="{"on" if name == current else ""}">{label}</a>'
        for name, href, label in PAGES
    )
    toggle = '<label><input type="checkbox" id="live" checked> live</label>' if live else ""
    return (
        f"<!doctype html><html><head><meta charset=utf-8><title>{esc(title)} - kcollect</title>"
        f"<style>{STYLE}</style></head><body><header><strong>kcollect</strong>{nav}<span class=sp></span>"
        f'{toggle}<label>token <input id="token" type="password" autocomplete="off"></label></header>'
        f'<div id="message" class="msg" hidden></div><main>{main}</main><script>{SCRIPT}</script></body></html>'
    )


def bar(shares: dict[str, float]) -> str:
    spans = "".join(
        f'<span class="{esc(name)}" style="width:{share * 100:.2f}%" title="{esc(name)} {share:.1%}"></span>'
        for name, share in shares.items()
    )
    return f'<div class="bar" data-shares="{esc(json.dumps(shares))}">{spans}</div>'


def rates(values: dict[str, float | None]) -> str:
    shown = [f"{esc(stage.replace('_', '-'))} {num(rate, 1)}/s" for stage, rate in values.items()]
    return "<span id=rates>" + (", ".join(shown) or "-") + "</span> <small>clients per second</small>"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def runs_main(data: dict[str, Any]) -> str:
    chosen = data["filter"]
    options = "".join(
        f'<option value="{esc(s)}"{" selected" if s == chosen["schedule"] else ""}>{esc(s)}</option>'
        for s in data["schedules"]
    )
    states = "".join(
        f'<option value="{s}"{" selected" if s == chosen["state"] else ""}>{s}</option>' for s in RunState
    )
    form = (
        f'<form method=get>schedule <select name=schedule><option value="">all</option>{options}</select> '
        f'state <select name=state><option value="">all</option>{states}</select> <button>filter</button></form>'
    )
    head = (
        "<tr><th>run</th><th>state</th><th>progress</th><th>total</th><th>stored</th><th>partial</th>"
        "<th>dead-lettered</th><th>pending</th><th>started</th><th>finished</th><th>duration</th><th>ETA</th></tr>"
    )
    rows = "".join(
        f'<tr data-run="{esc(r["run_id"])}" data-stored="{r["stored"]}" data-complete="{str(r["complete"]).lower()}">'
        f'<td><a href="/runs/{quote(r["run_id"], safe="")}">{esc(r["run_id"])}</a></td>'
        f"<td>{esc('complete' if r['complete'] else r['state'])}</td><td>{bar(r['shares'])}</td>"
        f'<td class=n>{num(r["total"])}</td><td class="n stored">{num(r["stored"])}</td>'
        f"<td class=n>{num(r['partial'])}</td><td class=n>{num(r['dead_lettered'])}</td>"
        f"<td class=n>{num(r['pending'])}</td><td>{esc(r['started'] or '-')}</td>"
        f"<td>{esc(r['finished'] or '-')}</td><td>{duration(r['duration_s'])}</td><td>{duration(r['eta_s'])}</td></tr>"
        for r in data["runs"]
    )
    legend = "<small>bar: stored ok, partial, dead-lettered, pending of the total</small>"
    return f"<h2>Runs</h2>{form}<table id=runs data-live>{head}{rows}</table>{legend}"


def run_main(data: dict[str, Any]) -> str:
    r = data["run"]
    run_id = r["run_id"]
    facts = "".join(
        f"<tr><th>{esc(label)}</th><td>{value}</td></tr>"
        for label, value in (
            ("state", esc("complete" if r["complete"] else r["state"])),
            ("progress", bar(r["shares"])),
            ("total", num(r["total"])),
            (
                "stored (ok / partial)",
                f"<span id=stored>{num(r['stored'])}</span> ({num(r['ok'])} / {num(r['partial'])})",
            ),
            ("processed", num(r["processed"])),
            (
                "dead-lettered",
                f"<span id=dead>{num(r['dead_lettered'])}</span> (requests {num(r['dead_lettered_requests'])}, results {num(r['dead_lettered_results'])})",
            ),
            (
                "dead letters by reason",
                esc(", ".join(f"{k} {v:,}" for k, v in (r.get("dead_letter_reasons") or {}).items()) or "-"),
            ),
            ("pending", num(r["pending"])),
            ("started / finished", f"{esc(r['started'] or '-')} / {esc(r['finished'] or '-')}"),
            ("duration / ETA", f"{duration(r['duration_s'])} / {duration(r['eta_s'])}"),
            ("rates (last minute)", rates(r.get("rates", {}))),
        )
    )
    groups = "".join(dead_letter_group(run_id, g) for g in data["dead_letters"]) or "<p>no dead letters</p>"
    stages = sorted({g["stage"] for g in data["dead_letters"]})
    classes = sorted({g["error_class"] for g in data["dead_letters"]})
    replay_form = (
        f'<form id=replay onsubmit="replay(this, {esc(json.dumps(run_id))}); return false">'
        f'stage <select name=stage><option value="">any</option>{"".join(f"<option>{esc(s)}</option>" for s in stages)}</select> '
        f'error class <select name=error_class><option value="">any</option>{"".join(f"<option>{esc(c)}</option>" for c in classes)}</select> '
        "<label><input type=checkbox name=include_stored> also clients stored since</label> "
        "<button>replay…</button> <small>(counts first, then asks)</small></form>"
    )
    waiting = "".join(
        f"<tr><td class=n>{p['partition']}</td><td class=n>{num(p['lag'])}</td><td class=n>{num(p['lag_seconds'], 1)}</td><td>{esc(p['owner'])}</td></tr>"
        for p in data["requests_waiting"]
    )
    return (
        f"<h2>Run {esc(run_id)}</h2><table id=facts data-live>{facts}</table>"
        f'<p><button id=verify onclick="verify({esc(json.dumps(run_id))})">verify the run</button></p>'
        f"<h3>Dead letters by stage and error class</h3>{replay_form}<div id=dead-letters data-live>{groups}</div>"
        "<h3>Requests waiting per partition (the processors' lag, every run)</h3>"
        f"<table id=waiting data-live><tr><th>partition</th><th>lag</th><th>age s</th><th>owner</th></tr>{waiting}</table>"
    )


def dead_letter_group(run_id: str, group: dict[str, Any]) -> str:
    samples = "".join(
        f"<tr><td>{esc(s['topic_partition'])}@{esc(s['offset'])}</td><td>{esc(s['client_id'])}</td>"
        f"<td><pre>{esc(json.dumps(s['headers'], indent=1))}</pre></td><td><pre>{esc(s['original'])}</pre></td></tr>"
        for s in group["samples"]
    )
    return (
        f'<div class=dlq data-stage="{esc(group["stage"])}" data-open="{group["open"]}">'
        f"<h4>{esc(group['stage'])} / {esc(group['error_class'])}: {num(group['count'])} "
        f"({num(group['open'])} not stored since)</h4>"
        f"<table><tr><th>where</th><th>client</th><th>headers</th><th>original</th></tr>{samples}</table></div>"
    )


def sparkline(points: list[tuple[int, int]], width: int = 220, height: int = 40) -> str:
    if len(points) < 2:
        return "<small>collecting…</small>"
    t0, t1 = points[0][0], points[-1][0]
    top = max(max(v for _, v in points), 1)
    coords = " ".join(
        f"{(t - t0) / max(t1 - t0, 1) * width:.1f},{height - v / top * (height - 2) - 1:.1f}"
        for t, v in points
    )
    return (
        f'<svg width={width} height={height} viewBox="0 0 {width} {height}"><polyline fill=none stroke="#243447" '
        f'stroke-width=1.5 points="{coords}"/></svg> <small>max {num(top)}</small>'
    )


def lag_main(data: dict[str, Any]) -> str:
    error = f'<div class="msg err">{esc(data["error"])}</div>' if data.get("error") else ""
    charts = "".join(
        f"<tr><td>{esc(name)}</td><td>{sparkline([(p['at_ms'], p['lags'].get(name, 0)) for p in data['history']])}</td></tr>"
        for name in data.get("series", [])
    )
    groups = "".join(
        f'<tr><td><span class="st {esc(g["status"])}">{esc(g["status"])}</span></td><td>{esc(g["group"])}</td>'
        f"<td>{esc(g['state'])}</td><td class=n>{num(g['lag'])}</td><td class=n>{num(g['lag_seconds_max'], 1)}</td></tr>"
        for g in data["groups"]
    )
    rows = "".join(
        f'<tr data-group="{esc(p["group"])}" data-topic="{esc(p["topic"])}" data-partition="{p["partition"]}" data-status="{esc(p["status"])}">'
        f'<td><span class="st {esc(p["status"])}">{esc(p["status"])}</span></td><td>{esc(p["group"])}</td><td>{esc(p["topic"])}</td>'
        f"<td class=n>{p['partition']}</td><td class=n>{num(p['committed'])}</td><td class=n>{num(p['end'])}</td>"
        f'<td class="n lag">{num(p["lag"])}</td><td class=n>{num(p["lag_seconds"], 1)}</td><td>{esc(p["owner"])}</td><td>{esc(p["host"])}</td></tr>'
        for p in data["partitions"]
    )
    return (
        f"<h2>Lag</h2><div id=lag-error data-live>{error}</div><h3>Groups, worst first</h3><table id=groups data-live><tr><th>status</th><th>group</th>"
        f"<th>state</th><th>lag</th><th>max age s</th></tr>{groups}</table>"
        f"<h3>Lag over the last minutes (records, per group and topic)</h3><table id=charts data-live>{charts}</table>"
        "<h3>Partitions, worst first</h3><table id=partitions data-live><tr><th>status</th><th>group</th><th>topic</th><th>p</th>"
        f"<th>committed</th><th>end</th><th>lag</th><th>age s</th><th>owner</th><th>host</th></tr>{rows}</table>"
    )


def schedules_main(data: dict[str, Any]) -> str:
    rows = "".join(
        f'<tr data-schedule="{esc(s["schedule"])}" data-paused="{str(s["paused"]).lower()}"><td>{esc(s["schedule"])}</td>'
        f"<td>{esc(s['describe'] or '-')}</td><td>{esc(s['last_slot'] or '-')}</td><td>{esc(s['next_slot'] or '-')}</td>"
        f"<td>{esc(s['leader'] or '-')}</td><td>{'paused' if s['paused'] else 'active'}</td><td class=n>{s['runs']}</td>"
        f'<td><button onclick="pause({esc(json.dumps(s["schedule"]))}, {str(not s["paused"]).lower()})">'
        f'{"resume" if s["paused"] else "pause"}</button> <a href="/runs?{urlencode({"schedule": s["schedule"]})}">runs</a></td></tr>'
        for s in data["schedules"]
    )
    return (
        "<h2>Schedules</h2><table id=schedules data-live><tr><th>schedule</th><th>period</th><th>last slot</th>"
        f"<th>next slot</th><th>leader</th><th>state</th><th>runs</th><th></th></tr>{rows}</table>"
        "<small>leader: the lock group's member owning its partition (not listed by every broker)</small>"
    )
