"""The audit report as one self-contained HTML page: inline SVG charts, inline CSS, no script, no
network. Built only from what ``service/audit_report.build_report`` returns, so the page shows exactly what the
verified ledger says (and carries the ledger's integrity verdict at the top).

Charts (each an ``<svg class="chart" data-chart=...>``):

* ``lift`` — corrected lift of each recorded analysis of the primary metric, in recording order, with its
  confidence interval as a band (successive analyses as the data accumulates = the cumulative lift);
* ``exposures`` — exposures per arm at each rollout stage, from the evidence the rollout events carry;
* ``guardrails`` — each guardrail's observed value against its threshold (from the guardrail actions);
* ``timeline`` — the lifecycle states and the approvals along the time axis;
* the integrity status is a badge plus a table (valid, entries checked, head hash), and the signed
  checkpoint the report was built from (the note itself, its tree size and root, the verifier key), so a
  reader can check the export offline (``python -m offerlab_client.verify``; docs/ledger.md §12).

Every text from the report is escaped with ``html.escape``: experiment names and reasons are user input.
Pure string building (no numpy), so it is cheap to import from the HTTP export.
"""
from __future__ import annotations

import html
from datetime import datetime
from typing import Any, Iterable

W, H = 720, 260          # chart viewBox size
PAD_L, PAD_R, PAD_T, PAD_B = 60, 20, 20, 40
ARM_COLOURS = {"CONTROL": "#4c78a8", "TREATMENT": "#f58518", "HOLDOUT": "#54a24b"}


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _num(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number and abs(number) != float("inf") else None


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _scale(lo: float, hi: float, out_lo: float, out_hi: float):
    span = (hi - lo) or 1.0
    return lambda v: out_lo + (v - lo) * (out_hi - out_lo) / span


def _svg(name: str, title: str, body: Iterable[str]) -> str:
    return (f'<svg class="chart" data-chart="{name}" viewBox="0 0 {W} {H}" width="{W}" height="{H}" '
            f'role="img" aria-label="{_e(title)}" xmlns="http://www.w3.org/2000/svg">'
            f'<rect x="0" y="0" width="{W}" height="{H}" fill="#fafafa" stroke="#ddd"/>' + "".join(body) + "</svg>")


def _empty(name: str, title: str, why: str) -> str:
    return _svg(name, title, [f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle" fill="#888">{_e(why)}</text>'])


def _y_axis(lo: float, hi: float, y, unit: str = "") -> list[str]:
    parts = [f'<line x1="{PAD_L}" y1="{PAD_T}" x2="{PAD_L}" y2="{H - PAD_B}" stroke="#333"/>']
    for i in range(5):
        v = lo + (hi - lo) * i / 4
        parts.append(f'<line x1="{PAD_L - 4}" y1="{y(v):.1f}" x2="{W - PAD_R}" y2="{y(v):.1f}" stroke="#eee"/>'
                     f'<text x="{PAD_L - 6}" y="{y(v) + 4:.1f}" text-anchor="end" font-size="11">{v:.3g}{unit}</text>')
    return parts


def currency_table(analysis: dict[str, Any] | None) -> str:
    """What each currency contributed to the latest analysis (amounts as sent and converted) and what was
    refused (API.md §13: never summed)."""
    breakdown = (analysis or {}).get("currencyBreakdown") or {}
    reporting = breakdown.get("reportingCurrency") or "?"
    rows = [[code, c.get("events"), c.get("amount"), f"{reporting} {c.get('convertedAmount')}"]
            for code, c in sorted((breakdown.get("currencies") or {}).items())]
    refused = breakdown.get("refusedEvents") or {}
    rows += [[f"refused: {reason}", count, ", ".join(sorted(breakdown.get("refusedCurrencies") or {})), "not summed"]
             for reason, count in sorted(refused.items()) if count]
    return _table(["currency", "events", "amount", "converted"], rows)


def lift_chart(analyses: list[dict[str, Any]], metric: str | None) -> str:
    """Corrected lift (%) with its confidence band, one point per analysis of ``metric``."""
    title = f"Cumulative lift of {metric or 'the primary metric'} with its confidence interval"
    points = []
    for a in analyses:
        ci = a.get("confidenceInterval") or [None, None]
        mid, lo, hi = _num(a.get("correctedPercentChange")), _num(ci[0]) if ci else None, _num(ci[1]) if ci else None
        if a.get("metric") == metric and None not in (mid, lo, hi):
            points.append((mid, lo, hi, a))
    if not points:
        return _empty("lift", title, "No analysis recorded yet")
    low = min(0.0, *(p[1] for p in points))
    high = max(0.0, *(p[2] for p in points))
    y = _scale(low, high, H - PAD_B, PAD_T)
    x = _scale(0, max(len(points) - 1, 1), PAD_L + 20, W - PAD_R - 20)
    body = _y_axis(low, high, y, "%")
    upper = " ".join(f"{x(i):.1f},{y(p[2]):.1f}" for i, p in enumerate(points))
    lower = " ".join(f"{x(i):.1f},{y(p[1]):.1f}" for i, p in reversed(list(enumerate(points))))
    body.append(f'<polygon class="band" points="{upper} {lower}" fill="#f58518" fill-opacity="0.25" stroke="none"/>')
    body.append(f'<line x1="{PAD_L}" y1="{y(0):.1f}" x2="{W - PAD_R}" y2="{y(0):.1f}" stroke="#999" '
                f'stroke-dasharray="4 3"/>')
    line = " ".join(f"{x(i):.1f},{y(p[0]):.1f}" for i, p in enumerate(points))
    body.append(f'<polyline points="{line}" fill="none" stroke="#c0392b" stroke-width="2"/>')
    for i, (mid, lo, hi, a) in enumerate(points):
        sizes = a.get("sampleSizes") or {}
        n = sum(v for v in sizes.values() if isinstance(v, (int, float)))
        body.append(f'<circle cx="{x(i):.1f}" cy="{y(mid):.1f}" r="4" fill="#c0392b">'
                    f'<title>{_e(a.get("recordedAt"))}: {mid:.2f}% [{lo:.2f}, {hi:.2f}], n={n}</title></circle>'
                    f'<text x="{x(i):.1f}" y="{H - PAD_B + 16}" text-anchor="middle" font-size="11">#{i + 1} n={n}</text>')
    body.append(f'<text x="{W / 2}" y="{H - 6}" text-anchor="middle" font-size="11">successive analyses</text>')
    return _svg("lift", title, body)


def exposure_chart(stages: list[dict[str, Any]]) -> str:
    """Grouped bars: exposures per arm at each stage a rollout event recorded evidence for."""
    title = "Exposures per arm per rollout stage"
    groups = []
    for s in stages:
        exposures = (s.get("evidence") or {}).get("exposures") if isinstance(s.get("evidence"), dict) else None
        if isinstance(exposures, dict) and exposures:
            groups.append((s.get("fromStage"), s.get("toStage"), exposures))
    if not groups:
        return _empty("exposures", title, "No rollout stage evidence recorded")
    # Arms that were ever exposed (the evidence also counts HOLDOUT, which is 0 when get_offer is told the arm).
    arms = sorted({arm for _, _, e in groups for arm, v in e.items() if (_num(v) or 0) > 0}) or ["CONTROL", "TREATMENT"]
    top = max(1.0, *(float(v) for _, _, e in groups for v in e.values() if _num(v) is not None))
    y = _scale(0, top, H - PAD_B, PAD_T)
    body = _y_axis(0, top, y)
    slot = (W - PAD_L - PAD_R) / len(groups)
    bar = min(40.0, slot * 0.8 / max(len(arms), 1))
    for g, (frm, to, exposures) in enumerate(groups):
        left = PAD_L + g * slot + (slot - bar * len(arms)) / 2
        for a, arm in enumerate(arms):
            v = _num(exposures.get(arm)) or 0.0
            body.append(f'<rect x="{left + a * bar:.1f}" y="{y(v):.1f}" width="{bar - 2:.1f}" '
                        f'height="{H - PAD_B - y(v):.1f}" fill="{ARM_COLOURS.get(arm, "#888")}">'
                        f'<title>{_e(arm)} at {_e(frm)}%: {v:g}</title></rect>')
        body.append(f'<text x="{PAD_L + (g + 0.5) * slot:.1f}" y="{H - PAD_B + 16}" text-anchor="middle" '
                    f'font-size="11">{_e(frm)}% → {_e(to)}%</text>')
    for a, arm in enumerate(arms):
        body.append(f'<rect x="{W - PAD_R - 110}" y="{PAD_T + a * 16}" width="10" height="10" '
                    f'fill="{ARM_COLOURS.get(arm, "#888")}"/><text x="{W - PAD_R - 95}" y="{PAD_T + a * 16 + 9}" '
                    f'font-size="11">{_e(arm)}</text>')
    return _svg("exposures", title, body)


def guardrail_chart(actions: list[dict[str, Any]], definitions: list[dict[str, Any]]) -> str:
    """Horizontal bars: each violation's observed value, with its threshold as a red mark."""
    title = "Guardrail metrics against their thresholds"
    rows = []
    for action in actions:
        for v in action.get("violations") or []:
            observed, threshold = _num(v.get("observed")), _num(v.get("threshold"))
            if observed is not None and threshold is not None:
                rows.append((f"{v.get('kpiName')} ({action.get('actionTaken') or v.get('action')})", observed, threshold))
    if not rows:
        for d in definitions:  # no breach: show the limits that held
            threshold = _num(d.get("maxThreshold"))
            if threshold is not None:
                rows.append((f"{d.get('kpiName')} (no breach recorded)", None, threshold))
    if not rows:
        return _empty("guardrails", title, "No guardrails defined")
    top = max(max(o or 0.0, t) for _, o, t in rows) * 1.1 or 1.0
    x = _scale(0, top, PAD_L + 140, W - PAD_R)
    step = (H - PAD_T - PAD_B) / len(rows)
    body = [f'<line x1="{x(0):.1f}" y1="{PAD_T}" x2="{x(0):.1f}" y2="{H - PAD_B}" stroke="#333"/>']
    for i, (label, observed, threshold) in enumerate(rows):
        top_y = PAD_T + i * step + step * 0.2
        if observed is None:  # the ledger records breaches only: show the limit that held
            body.append(f'<text x="{PAD_L + 134}" y="{top_y + step * 0.35:.1f}" text-anchor="end" font-size="11">'
                        f'{_e(label)}</text><line x1="{x(threshold):.1f}" y1="{top_y - 4:.1f}" x2="{x(threshold):.1f}" '
                        f'y2="{top_y + step * 0.5 + 4:.1f}" stroke="#000" stroke-width="2" stroke-dasharray="3 2"/>'
                        f'<text x="{x(threshold) - 4:.1f}" y="{top_y - 2:.1f}" text-anchor="end" font-size="10">'
                        f'limit {threshold:.4g}</text>')
            continue
        colour = "#c0392b" if observed > threshold else "#54a24b"
        body.append(f'<text x="{PAD_L + 134}" y="{top_y + step * 0.35:.1f}" text-anchor="end" font-size="11">'
                    f'{_e(label)}</text>'
                    f'<rect x="{x(0):.1f}" y="{top_y:.1f}" width="{x(observed) - x(0):.1f}" height="{step * 0.5:.1f}" '
                    f'fill="{colour}"><title>observed {observed:.4g}</title></rect>'
                    f'<line x1="{x(threshold):.1f}" y1="{top_y - 4:.1f}" x2="{x(threshold):.1f}" '
                    f'y2="{top_y + step * 0.5 + 4:.1f}" stroke="#000" stroke-width="2" stroke-dasharray="3 2"/>'
                    f'<text x="{x(threshold) + 4:.1f}" y="{top_y - 2:.1f}" font-size="10">limit {threshold:.4g}</text>'
                    f'<text x="{x(observed) + 4:.1f}" y="{top_y + step * 0.4:.1f}" font-size="10">{observed:.4g}</text>')
    return _svg("guardrails", title, body)


def timeline_chart(timeline: list[dict[str, Any]], approvals: list[dict[str, Any]]) -> str:
    """Lifecycle states (top lane) and approvals (bottom lane) along the time axis, in the order they happened."""
    title = "Approval and state timeline"
    marks = [(t, "state", _state_label(item), item) for item in timeline if (t := _time(item.get("at")))]
    marks += [(t, "approval", item.get("approver"), item) for item in approvals if (t := _time(item.get("approvedAt")))]
    if not marks:
        return _empty("timeline", title, "No lifecycle event recorded")
    marks.sort(key=lambda m: m[0])
    # Evenly spaced in order (the demo's events are seconds apart, real ones days): order is what matters.
    x = _scale(0, max(len(marks) - 1, 1), PAD_L + 20, W - PAD_R - 40)
    lanes = {"state": PAD_T + 60, "approval": PAD_T + 150}
    body = [f'<text x="8" y="{lanes["state"] + 4}" font-size="11">state</text>',
            f'<text x="8" y="{lanes["approval"] + 4}" font-size="11">approval</text>']
    for lane_y in lanes.values():
        body.append(f'<line x1="{PAD_L}" y1="{lane_y}" x2="{W - PAD_R}" y2="{lane_y}" stroke="#bbb"/>')
    for i, (when, lane, label, _item) in enumerate(marks):
        cx, cy = x(i), lanes[lane]
        colour = {"KILLED": "#c0392b", "RUNNING": "#54a24b", "APPROVED": "#4c78a8"}.get(str(label), "#555")
        colour = "#f58518" if lane == "approval" else colour
        dy = -14 if i % 2 else 22
        body.append(f'<circle cx="{cx:.1f}" cy="{cy}" r="6" fill="{colour}"><title>{_e(when.isoformat())}'
                    f'</title></circle><text x="{cx:.1f}" y="{cy + dy}" text-anchor="middle" font-size="10">'
                    f'{_e(label)}</text>')
    first, last = marks[0][0], marks[-1][0]
    body.append(f'<text x="{PAD_L}" y="{H - 10}" font-size="10">{_e(first.isoformat(timespec="seconds"))}</text>'
                f'<text x="{W - PAD_R}" y="{H - 10}" text-anchor="end" font-size="10">'
                f'{_e(last.isoformat(timespec="seconds"))}</text>')
    return _svg("timeline", title, body)


def _state_label(item: dict[str, Any]) -> str:
    """The new state, or for an event that keeps the state (a rollout step while RUNNING) what happened."""
    if item.get("toStatus") and item.get("toStatus") != item.get("fromStatus"):
        return str(item["toStatus"])
    return str(item.get("eventType") or "").replace("EXPERIMENT_", "").replace("_", " ").lower()


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body or '<tr><td>none</td></tr>'}</tbody></table>"


def primary_metric(report: dict[str, Any]) -> str | None:
    kpis = ((report.get("experiment") or {}).get("kpis")) or []
    for kpi in kpis:
        if isinstance(kpi, dict) and kpi.get("type") == "PRIMARY":
            return kpi.get("metric")
    metrics = [a.get("metric") for a in report.get("analyses") or []]
    return max(set(metrics), key=metrics.count) if metrics else None


CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;max-width:960px}
h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:12px;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 6px;text-align:left}
.badge{display:inline-block;padding:4px 10px;border-radius:4px;color:#fff;font-weight:600}
.ok{background:#2e7d32}.bad{background:#c62828}code{font-size:11px}"""


def render_html(report: dict[str, Any]) -> str:
    """The whole page. ``report`` is ``audit_report.build_report``'s result."""
    experiment = report.get("experiment") or {}
    integrity = report.get("integrity") or {}
    valid = integrity.get("valid") is True
    metric = primary_metric(report)
    hypothesis = report.get("hypothesis") if isinstance(report.get("hypothesis"), dict) else {}
    analyses = report.get("analyses") or []
    latest = next((a for a in reversed(analyses) if a.get("metric") == metric), None)
    headline = ""
    if latest:
        ci = latest.get("confidenceInterval") or [None, None]
        headline = (f"<p>Latest analysis of <b>{_e(metric)}</b>: corrected lift <b>{_e(_fmt(latest.get('correctedPercentChange')))}%</b> "
                    f"(interval {_e(_fmt(ci[0]))}% … {_e(_fmt(ci[1]))}%), raw {_e(_fmt(latest.get('rawPercentChange')))}%, "
                    f"p = {_e(_fmt(latest.get('pValue')))}, data quality {_e(latest.get('dataQuality'))}, "
                    f"recommendation <b>{_e(latest.get('recommendation'))}</b>.</p>")
    parts = [
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<title>Audit report — {_e(experiment.get('name') or report.get('experimentId'))}</title>",
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">",
        f"<style>{CSS}</style></head><body>",
        f"<h1>Audit report: {_e(experiment.get('name') or report.get('experimentId'))}</h1>",
        f"<p>Experiment <code>{_e(report.get('experimentId'))}</code> · status <b>{_e(experiment.get('status'))}</b> · "
        f"coverage {_e(experiment.get('coverage'))}% · generated {_e(report.get('generatedAt'))}</p>",
        f"<p id=\"integrity\"><span class=\"badge {'ok' if valid else 'bad'}\">Ledger "
        f"{'VERIFIED' if valid else 'INVALID'}</span> {_e(integrity.get('entriesChecked'))} entries checked, "
        f"head hash <code>{_e(integrity.get('headHash'))}</code></p>",
        f"<p><b>Hypothesis:</b> {_e(hypothesis.get('statement'))}</p>" if hypothesis else "",
        headline,
        "<h2>Cumulative lift</h2>", lift_chart(analyses, metric),
        "<h2>Exposures per arm per rollout stage</h2>", exposure_chart(report.get("rolloutStages") or []),
        "<h2>Guardrails</h2>", guardrail_chart(report.get("guardrailActions") or [], experiment.get("guardrails") or []),
        "<h2>Approvals and state timeline</h2>", timeline_chart(report.get("timeline") or [], report.get("approvals") or []),
        "<h2>Approvals</h2>",
        _table(["approver", "at", "comment"], [[a.get("approver"), a.get("approvedAt"), a.get("comment")]
                                               for a in report.get("approvals") or []]),
        "<h2>Lifecycle</h2>",
        _table(["#", "leaf", "at", "event", "from", "to", "actor", "reason"],
               [[t.get("sequence"), t.get("leafIndex"), t.get("at"), t.get("eventType"), t.get("fromStatus"),
                 t.get("toStatus"), t.get("actor"), t.get("reason")] for t in report.get("timeline") or []]),
        "<h2>Rollout stages</h2>",
        _table(["#", "at", "event", "from %", "to %", "actor", "reason"],
               [[s.get("sequence"), s.get("at"), s.get("eventType"), s.get("fromStage"), s.get("toStage"),
                 s.get("actor"), s.get("reason")] for s in report.get("rolloutStages") or []]),
        "<h2>Guardrail actions</h2>",
        _table(["#", "at", "action", "reason"], [[g.get("sequence"), g.get("at"), g.get("actionTaken"), g.get("reason")]
                                                 for g in report.get("guardrailActions") or []]),
        "<h2>Analyses</h2>",
        _table(["#", "metric", "raw %", "corrected %", "interval", "p", "quality", "recommendation", "digest"],
               [[a.get("sequence"), a.get("metric"), _fmt(a.get("rawPercentChange")), _fmt(a.get("correctedPercentChange")),
                 a.get("confidenceInterval"), _fmt(a.get("pValue")), a.get("dataQuality"), a.get("recommendation"),
                 a.get("digest")] for a in analyses]),
        "<h2>Currencies (latest analysis)</h2>", currency_table(latest),
        "<h2>Spillover violations</h2>",
        _table(["#", "at", "from", "to", "channel", "reason"],
               [[s.get("sequence"), s.get("at"), s.get("fromUserId"), s.get("toUserId"), s.get("channel"), s.get("reason")]
                for s in report.get("spilloverViolations") or []]),
        "<h2>Ledger integrity</h2>",
        _table(["valid", "entries checked", "head hash", "first bad sequence", "errors"],
               [[integrity.get("valid"), integrity.get("entriesChecked"), integrity.get("headHash"),
                 integrity.get("firstBadSequence"), len(integrity.get("errors") or [])]]),
        _checkpoint_section(report),
        "</body></html>",
    ]
    return "".join(parts)


def _checkpoint_section(report: dict[str, Any]) -> str:
    """The signed checkpoint (verbatim, for offline verification) and the leaf index of every entry."""
    checkpoint = report.get("checkpoint") or {}
    if not checkpoint:
        return "<h2 id=\"checkpoint\">Signed checkpoint</h2><p>No signed checkpoint (no signing key configured).</p>"
    leaves = (report.get("ledger") or {}).get("leaves") or []
    return ("<h2 id=\"checkpoint\">Signed checkpoint</h2>"
            f"<p>Tree size <b>{_e(checkpoint.get('treeSize'))}</b>, root <code>{_e(checkpoint.get('rootHash'))}</code>, "
            f"verifier key <code>{_e(checkpoint.get('verifierKey'))}</code>. Check the JSON export offline with "
            "<code>python -m offerlab_client.verify report.json --key &lt;verifier key&gt;</code>.</p>"
            f"<pre class=\"note\">{_e(checkpoint.get('note'))}</pre>"
            + _table(["#", "leaf index", "entry hash"], [[leaf.get("sequence"), leaf.get("leafIndex"), leaf.get("hash")]
                                                      for leaf in leaves]))


def _fmt(value: Any) -> str:
    number = _num(value)
    return "—" if number is None else f"{number:.4g}"
