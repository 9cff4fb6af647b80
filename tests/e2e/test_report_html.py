"""The HTML audit report (issue 8): a self-contained page whose charts are inline SVG.

* rendering a full report: every chart is drawn from the report's data (lift band, exposure bars, guardrail
  bars against their limits, the timeline), user text is escaped, and nothing is fetched from a network;
* over HTTP on the emulators: ``export_audit_report?format=html`` of a real experiment (two approvals, an
  analysis, a guardrail kill) is that page, with the ledger verified.
"""
from __future__ import annotations

import re

from offerlab.service import sweeps
from offerlab.service.report_html import render_html
from offerlab.store.firestore_store import firestore_store
from tests.integration.test_analytics import running_experiment
from tests.integration.test_guardrail_sweep import REFUND_KILL, iso, seed_refunds, unique_tick

STORE = firestore_store()  # the store the functions use, on the emulator

CHARTS = ("lift", "exposures", "guardrails", "timeline")


def full_report(name: str = "Premium <script>alert(1)</script> test") -> dict:
    """A report as audit_report.build_report returns it, with something in every section."""
    analyses = [{"sequence": 10 + i, "recordedAt": f"2026-11-2{i}T10:00:00Z", "metric": "net_ltv",
                 "rawPercentChange": 40.0 - i, "correctedPercentChange": 18.0 - i,
                 "confidenceInterval": [18.0 - i - w, 18.0 - i + w], "pValue": 0.001, "sampleSizes":
                 {"CONTROL": 1000 * (i + 1), "TREATMENT": 1000 * (i + 1)}, "dataQuality": "GOOD",
                 "recommendation": "SHIP", "digest": "ab" * 32} for i, w in enumerate((20.0, 12.0, 8.0, 6.0))]
    stages = [{"sequence": 20 + i, "at": f"2026-11-2{i}T11:00:00Z", "eventType": "ROLLOUT_PROGRESSED",
               "actor": "rollout_sweep", "fromStage": frm, "toStage": to, "reason": None,
               "evidence": {"exposures": {"CONTROL": 3 * (i + 1) ** 2, "TREATMENT": 3 * (i + 1) ** 2 + 1}}}
              for i, (frm, to) in enumerate(((1, 5), (5, 10), (10, 25), (25, 50)))]
    timeline = [{"sequence": s, "at": f"2026-11-20T0{s}:00:00Z", "eventType": f"EXPERIMENT_{to}", "actor": "pm",
                 "fromStatus": frm, "toStatus": to, "reason": None}
                for s, frm, to in ((1, None, "DRAFT"), (2, "DRAFT", "PENDING_APPROVAL"),
                                   (4, "PENDING_APPROVAL", "APPROVED"), (5, "APPROVED", "RUNNING"),
                                   (9, "RUNNING", "KILLED"))]
    return {
        "experimentId": "exp-html-1", "generatedAt": "2026-11-25T12:00:00Z",
        "experiment": {"name": name, "status": "KILLED", "coverage": 50,
                       "kpis": [{"name": "Net LTV", "type": "PRIMARY", "metric": "net_ltv"}],
                       "guardrails": [{"kpiName": "Refund Rate", "metric": "refund_rate", "maxThreshold": 0.02}]},
        "hypothesis": {"statement": "Price up, LTV up"},
        "approvals": [{"approver": "ceo@company.com", "approvedAt": "2026-11-20T03:00:00Z", "comment": "ok", "sequence": 3},
                      {"approver": "cfo@company.com", "approvedAt": "2026-11-20T04:00:00Z", "comment": None, "sequence": 4}],
        "rejections": [], "timeline": timeline,
        "guardrailActions": [{"sequence": 9, "at": "2026-11-20T09:00:00Z", "eventType": "EXPERIMENT_KILLED",
                              "actor": "guardrail-monitor", "actionTaken": "KILL", "reason": "Refund Rate breached",
                              "violations": [{"kpiName": "Refund Rate", "metric": "refund_rate", "observed": 0.2,
                                              "threshold": 0.02, "action": "KILL"}]}],
        "rolloutStages": stages, "analyses": analyses, "spilloverViolations": [], "unauthorisedChanges": [],
        "integrity": {"valid": True, "entriesChecked": 30, "headHash": "cd" * 32, "firstBadSequence": None, "errors": []},
    }


def svg_of(page: str, name: str) -> str:
    match = re.search(rf'<svg class="chart" data-chart="{name}".*?</svg>', page, re.S)
    assert match, f"chart {name} missing"
    return match.group(0)


def assert_self_contained(page: str) -> None:
    lowered = page.lower()
    assert "<script" not in lowered and "<link" not in lowered and "<iframe" not in lowered
    assert not re.search(r'\b(src|href)\s*=', lowered)  # nothing to fetch
    assert "@import" not in lowered and "url(" not in lowered


def test_every_chart_is_drawn_from_the_report_and_user_text_is_escaped():
    page = render_html(full_report())
    assert page.startswith("<!DOCTYPE html>")
    assert_self_contained(page)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    lift = svg_of(page, "lift")
    assert lift.count("<circle") == 4 and 'class="band"' in lift  # one point per analysis, with its interval
    exposures = svg_of(page, "exposures")
    assert exposures.count("<title>CONTROL at") == 4 and exposures.count("<title>TREATMENT at") == 4
    assert "25% → 50%" in exposures
    guard = svg_of(page, "guardrails")
    assert "limit 0.02" in guard and "observed 0.2" in guard and "#c0392b" in guard  # over the limit: red
    timeline = svg_of(page, "timeline")
    assert timeline.count("<circle") == 7 and "KILLED" in timeline  # 5 states + 2 approvals
    assert "Ledger VERIFIED" in page and "cd" * 32 in page


def test_an_empty_report_still_renders_every_chart_with_a_reason_and_an_invalid_ledger_says_so():
    report = {**full_report("x"), "analyses": [], "rolloutStages": [], "guardrailActions": [], "timeline": [],
              "approvals": [], "integrity": {"valid": False, "entriesChecked": 3, "headHash": None, "errors": [{}]}}
    page = render_html(report)
    for name in CHARTS:
        svg_of(page, name)
    assert "No analysis recorded yet" in page and "No rollout stage evidence recorded" in page
    assert "Refund Rate (no breach recorded)" in page  # the limits that held
    assert "Ledger INVALID" in page


def killed_with_analyses(clients, firestore_db) -> str:
    """A real experiment: two approvals, started, refunds over its limit, two analyses, killed by a guardrail
    check (the same handler the guardrail-checks topic runs)."""
    eid = running_experiment(clients, REFUND_KILL)["experimentId"]
    seed_refunds(firestore_db, eid)
    pm = clients.experimenter()
    pm.analyze_experiment(eid, "net_ltv")
    pm.analyze_experiment(eid, "net_ltv")
    outcome = sweeps.handle_guardrail_check(STORE, {"experimentId": eid, "tick": iso(unique_tick())})
    assert (outcome.status, outcome.action) == ("ACTED", "KILL")
    return eid


def export_html(clients, eid: str) -> str:
    from tests.e2e.test_rollout_sweep import poll

    analyst = clients.analyst()
    # The ledger triggers run asynchronously: wait until the kill and both analyses are in the chain.
    poll(lambda: analyst.get_audit_report(eid),
         lambda r: len(r["analyses"]) == 2 and r["guardrailActions"] and r["integrity"]["valid"], 60)
    resp = analyst.export_audit_report(eid, "html")
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/html")
    assert f'audit-{eid}.html' in resp.headers["Content-Disposition"]
    return resp.text


def test_export_audit_report_format_html_over_http(clients, firestore_db):
    eid = killed_with_analyses(clients, firestore_db)
    page = export_html(clients, eid)
    assert_self_contained(page)
    assert svg_of(page, "lift").count("<circle") == 2
    assert "limit 0.02" in svg_of(page, "guardrails")
    timeline = svg_of(page, "timeline")
    assert "KILLED" in timeline and timeline.count("fill=\"#f58518\"") >= 2  # both approvals
    assert "Ledger VERIFIED" in page and eid in page
