"""`make demo`: a subscription price test played end to end on the emulator suite (issue 8).

Run by `make demo` (scripts/with-emulators starts functions, Firestore, Pub/Sub and Auth and exports their
addresses). Everything a client or Cloud Scheduler would do goes through the real endpoints with the project's
Python client (offerlab_client): callables over HTTP, messages on the Pub/Sub topics, scheduled functions
POSTed as Cloud Scheduler does (``<name>-0`` with ``X-CloudScheduler-ScheduleTime``; notes/emulators.md).

The emulator is slow (Pub/Sub ingestion a few events a second), so the ~20,000 simulated users take three
paths, each labelled in the output and in out/summary.json:

* all 20,000: assignment computed with the published hash (API.md §2), pure and instant → the holdout share;
* a sample of ``SAMPLE`` users asks ``get_offer`` over HTTP (their exposures drive the rollout gates), and a
  few dozen of them send their purchases/renewals/refunds through ``offer-metric-events``; the fraudsters are
  flagged through ``fraud-signals``;
* the rest of the history (per-user totals and exposures of the users enrolled at 50 %) is "bulk-loaded
  simulated history": batched writes into the emulator's Firestore, as tests/integration/test_analytics.py
  and benchmarks/bench_analytics.py do.

Artifacts: out/summary.json, out/audit-<experiment>.{html,csv,json}, out/audit-guardrail-<experiment>.html.
"""
from __future__ import annotations

import json
import os
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "functions"), str(ROOT / "scripts")]

import requests  # noqa: E402

import demo_sim as sim  # noqa: E402
from offerlab.domain.assignment import assign_arm  # noqa: E402
from offerlab_client import OfferlabClient, PermissionDenied, emulator_token  # noqa: E402

OUT = ROOT / "out"
PROJECT = "demo-offerlab"
POPULATION = 20_000
SAMPLE = 1_200            # users who ask get_offer over HTTP
PUBSUB_USERS = 30         # sample subscribers whose whole history goes through offer-metric-events
WAVE = 10                 # Pub/Sub messages per wave (the functions emulator chokes on bursts)
STAGES = [1, 5, 10, 25, 50]
ANALYSES = 4              # successive analyses as the history accumulates (the cumulative lift chart)
DAY_AND_A_BIT = timedelta(hours=25)


def step(text: str) -> None:
    print(f"\n▶ {text}", flush=True)


def iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def poll(fn: Callable[[], Any], until: Callable[[Any], bool], timeout: float = 60.0, every: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if until(value) or time.monotonic() > deadline:
            return value
        time.sleep(every)


class Demo:
    def __init__(self, url: str) -> None:
        def as_(uid: str, email: str | None, *roles: str) -> OfferlabClient:
            return OfferlabClient(url, emulator_token(uid, email=email, roles=list(roles), project=PROJECT))

        self.url = url
        self.pm = as_("pm-uid", "pm@company.com", "experimenter")
        self.ceo = as_("ceo-uid", "ceo@company.com", "approver")
        self.cfo = as_("cfo-uid", "cfo@company.com", "approver")
        self.analyst = as_("analyst-uid", "analyst@company.com", "analyst")
        self.service = as_("backend", None, "service")
        self.admin = as_("admin-uid", "admin@company.com", "admin")
        self.tag = uuid.uuid4().hex[:6]
        self.summary: dict[str, Any] = {"paths": {}}
        from google.cloud import pubsub_v1  # noqa: PLC0415 - the emulator hosts are set by now

        from offerlab.store.client import db  # noqa: PLC0415 - the same Firestore client the functions use

        self.db = db()
        self.publisher = pubsub_v1.PublisherClient()

    # --- helpers ------------------------------------------------------------------------------------------

    def publish(self, topic: str, data: dict[str, Any]) -> None:
        from google.api_core.exceptions import AlreadyExists  # noqa: PLC0415

        path = self.publisher.topic_path(PROJECT, topic)
        try:
            self.publisher.create_topic(name=path)
        except AlreadyExists:
            pass
        self.publisher.publish(path, json.dumps(data).encode()).result(timeout=30)

    def scheduler(self, name: str, tick: datetime) -> None:
        """Fire a scheduled function as Cloud Scheduler does (the emulator never fires them itself)."""
        resp = requests.post(f"{self.url}/{name}-0", json={}, headers={"X-CloudScheduler-ScheduleTime": iso(tick)},
                             timeout=180)
        if resp.status_code >= 300:
            raise RuntimeError(f"{name} answered {resp.status_code}")

    def arm(self, user: str, exp: dict[str, Any], cohort: dict[str, Any], coverage: float) -> str:
        return assign_arm(user_id=user, experiment_salt=exp["salt"], treatment_percentage=exp["treatmentPercentage"],
                          coverage=coverage, holdout_salt=cohort["salt"],
                          holdout_percentage=cohort["percentage"]).value

    def ask(self, eid: str, users: list[str], label: str) -> dict[str, str]:
        bar = sim.Progress(label, len(users))

        def one(user: str) -> tuple[str, str]:
            answer = self.service.get_offer(user_id=user, experiment_id=eid)
            bar.advance()
            return user, answer["arm"]

        with ThreadPoolExecutor(max_workers=8) as pool:
            return dict(pool.map(one, users))

    def experiment_body(self, cohort_id: str, name: str, **over: Any) -> dict[str, Any]:
        now = datetime.now(timezone.utc)
        body = {
            "name": name, "description": "Premium monthly: $9.99 vs $12.99",
            "hypothesis": {"statement": "Raising the monthly price to $12.99 increases net LTV by 15%",
                           "expectedImpact": "+15% net LTV", "risksIdentified": ["Lower conversion", "More refunds"],
                           "successCriteria": ["Net LTV lift > 10% with the interval above 0"]},
            "kpis": [{"name": "Net LTV", "type": "PRIMARY", "metric": "net_ltv", "baselineValue": 12,
                      "targetValue": 13.8, "direction": "INCREASE"},
                     {"name": "Refund Rate", "type": "GUARDRAIL", "metric": "refund_rate", "threshold": 0.05,
                      "direction": "DECREASE"}],
            "guardrails": [{"kpiName": "Refund Rate", "metric": "refund_rate", "maxThreshold": 0.05,
                            "violationAction": "ALERT"}],
            "holdoutCohortId": cohort_id, "treatmentPercentage": 50, "offerType": "PRICE_CHANGE",
            "offerConfig": {"newPrice": 12.99}, "controlConfig": {"newPrice": 9.99},
            "plannedStartDate": iso(now), "plannedEndDate": iso(now + timedelta(days=30)),
            "approvers": ["ceo@company.com", "cfo@company.com"],
        }
        body.update(over)
        return body

    def approve_and_start(self, eid: str) -> dict[str, Any]:
        self.pm.submit_for_approval(eid)
        self.ceo.approve_experiment(eid, comment="Pricing team sign-off")
        self.cfo.approve_experiment(eid, comment="Finance sign-off: revenue at risk is bounded by the rollout")
        return self.pm.start_experiment(eid)

    # --- the scenario -------------------------------------------------------------------------------------

    def holdout(self) -> dict[str, Any]:
        step("a 10% holdout cohort, frozen (experimenter)")
        cohort = self.pm.create_holdout_cohort(name=f"Premium-Holdout-{self.tag}", percentage=10,
                                               description="Long-term holdout for premium pricing")
        cohort = self.pm.freeze_holdout_cohort(cohort["cohortId"])
        print(f"   cohort {cohort['cohortId']} {cohort['status']} salt={cohort['salt']}")
        try:
            self.analyst.create_holdout_cohort(name="nope", percentage=5)
            refused = False
        except PermissionDenied as err:
            print(f"   an analyst may not create cohorts: {err}")
            refused = True
        self.summary["cohort"] = {"id": cohort["cohortId"], "status": cohort["status"], "analystRefused": refused}
        return cohort

    def price_test(self, cohort: dict[str, Any]) -> dict[str, Any]:
        step("price test $9.99 → $12.99: create, rollout plan 1→5→10→25→50 %, two approvals, start")
        exp = self.pm.call("create_experiment", self.experiment_body(cohort["cohortId"], f"Premium price test {self.tag}"))
        eid = exp["experimentId"]
        # minExposuresPerArm lowered to the demo's sample (a real plan would ask for hundreds per arm).
        self.pm.create_rollout_plan(eid, stages=[{"percentage": p, "minHoursAtStage": 24, "minExposuresPerArm": 2}
                                                 for p in STAGES], auto_progress=True)
        started = self.approve_and_start(eid)
        print(f"   {eid}: approved by ceo@ and cfo@, status {started['status']}, coverage {started['coverage']}%")
        return started

    def rollout(self, exp: dict[str, Any], cohort: dict[str, Any], population: list[str]) -> dict[str, str]:
        step(f"progressive rollout driven by rollout_sweep with a simulated clock; {SAMPLE} users ask get_offer")
        eid, sample = exp["experimentId"], population[:SAMPLE]
        answers: dict[str, str] = {}
        tick = datetime.now(timezone.utc)
        stage_log = []
        for index, stage in enumerate(STAGES):
            enrolled = [u for u in sample if self.arm(u, exp, cohort, stage) in ("CONTROL", "TREATMENT")]
            fresh = [u for u in enrolled if u not in answers]
            if index > 0 and fresh:  # wait until get_offer's instance caches see the new stage
                sentinel = fresh[0]
                want = self.arm(sentinel, exp, cohort, stage)
                poll(lambda: self.service.get_offer(user_id=sentinel, experiment_id=eid)["arm"], lambda a: a == want, 30)
                time.sleep(float(os.environ.get("OFFERLAB_OFFER_CACHE_TTL", "5")) + 1)
            asked = fresh if stage != STAGES[-1] else [u for u in sample if u not in answers]
            answers.update(self.ask(eid, asked, f"get_offer at {stage}%"))
            mismatches = sum(answers[u] != self.arm(u, exp, cohort, stage) for u in asked)
            stage_log.append({"stage": stage, "asked": len(asked), "hashMismatches": mismatches})
            if stage == STAGES[-1]:
                break
            tick += DAY_AND_A_BIT
            self.scheduler("rollout_sweep", tick)
            coverage = poll(lambda: self.pm.check_stage_progress(eid)["stage"], lambda c: c == STAGES[index + 1], 90, 1.0)
            print(f"   tick {iso(tick)}: rollout_sweep moved {stage}% → {coverage}%")
            if coverage != STAGES[index + 1]:
                raise RuntimeError(f"the rollout did not progress past {stage}%: "
                                   f"{self.pm.check_stage_progress(eid)['blocking']}")
        counts: dict[str, int] = {}
        for arm in answers.values():
            counts[arm] = counts.get(arm, 0) + 1
        self.summary["rollout"] = {"stages": stage_log, "finalCoverage": STAGES[-1], "getOfferAnswers": counts}
        self.summary["paths"]["getOffer"] = f"{len(answers)} users asked get_offer over HTTP (8 threads)"
        return answers

    def spillover(self, exp: dict[str, Any], cohort: dict[str, Any], population: list[str]) -> None:
        step("a treatment user gifts the premium offer to a holdout user (check_spillover, service role)")
        giver = next(u for u in population if self.arm(u, exp, cohort, 50) == "TREATMENT")
        receiver = next(u for u in population if self.arm(u, exp, cohort, 50) == "HOLDOUT")
        verdict = self.service.check_spillover(giver, receiver, "gift", experiment_id=exp["experimentId"])
        print(f"   {giver} → {receiver}: {json.dumps(verdict)[:200]}")
        self.summary["spillover"] = {"from": giver, "to": receiver, "result": verdict}

    def metric_events(self, exp: dict[str, Any], answers: dict[str, str], outcomes: sim.Outcomes,
                      start: datetime) -> tuple[set[str], dict[str, dict]]:
        """Some sample subscribers' purchases, renewals and refunds through offer-metric-events, in waves."""
        step(f"purchases, renewals and refunds of {PUBSUB_USERS} subscribers through the offer-metric-events topic")
        eid = exp["experimentId"]
        from offerlab.store import metrics as metrics_repo  # noqa: PLC0415 - a read, to know ingestion caught up

        chosen: dict[str, dict] = {}
        for user, arm in answers.items():
            if arm in ("CONTROL", "TREATMENT") and len(chosen) < PUBSUB_USERS:
                outcome = outcomes.draw(arm)
                if outcome is not None:
                    chosen[user] = {"arm": arm, "outcome": outcome}
        # Simulated months compressed to seconds after now: the users were exposed moments ago by get_offer.
        soon = datetime.now(timezone.utc) + timedelta(seconds=1)
        per_user = [sim.events_of(user, c["outcome"], soon, timedelta(seconds=1)) for user, c in chosen.items()]
        # Round-robin over users: one user's events land seconds apart, so their transactions on the user's
        # totals document do not contend (the emulator serialises them pessimistically; notes/emulators.md).
        messages = [{**events[k], "experimentId": eid} for k in range(max(map(len, per_user)))
                    for events in per_user if k < len(events)][:160]
        bar = sim.Progress("events published", len(messages))
        for i in range(0, len(messages), WAVE):
            for message in messages[i:i + WAVE]:
                self.publish("offer-metric-events", message)
                bar.advance()
            time.sleep(1.0)
        sent_users = {m["userId"] for m in messages}
        expected = {u: sum(1 for m in messages if m["userId"] == u) for u in sent_users}

        def landed() -> int:
            """Events counted in the users' totals so far (ingestion is asynchronous)."""
            done = 0
            for user in expected:
                totals = metrics_repo.find_totals(eid, user)
                done += sum(((totals or {}).get("counts") or {}).values())
            return done

        got = poll(landed, lambda d: d >= len(messages), 90, 3.0)
        # The functions emulator does not redeliver a message whose handler failed on contention (the
        # ingestion leaves it for redelivery, as production Pub/Sub would): say how many landed.
        print(f"   ingested: {got}/{len(messages)} events counted in {len(expected)} users' totals")
        self.summary["paths"]["pubsubMetricEvents"] = {"messages": len(messages), "users": len(expected),
                                                      "eventsIngested": got}
        return sent_users, chosen

    def fraud(self, fraudsters: list[str]) -> None:
        step(f"{len(fraudsters)} fraudulent users flagged through the fraud-signals topic")
        from offerlab.store import metrics as metrics_repo  # noqa: PLC0415

        for user in fraudsters:
            self.publish("fraud-signals", {"userId": user, "score": 0.97, "reasons": ["card testing"],
                                           "occurredAt": iso(datetime.now(timezone.utc))})
        flagged = poll(lambda: sum(metrics_repo.find_fraud_score(u) is not None for u in fraudsters),
                       lambda n: n == len(fraudsters), 120, 2.0)
        print(f"   fraud scores recorded: {flagged}/{len(fraudsters)}")
        self.summary["paths"]["pubsubFraudSignals"] = {"users": len(fraudsters), "recorded": flagged}

    def history(self, exp: dict[str, Any], cohort: dict[str, Any], population: list[str], answers: dict[str, str],
                pubsub_users: set[str], outcomes: sim.Outcomes, start: datetime) -> None:
        """Bulk-loaded simulated history of everyone enrolled at 50 %, loaded in chunks with an analysis after
        each (the cumulative lift)."""
        from offerlab.store import collections as C  # noqa: PLC0415 - only store/ spells collection names

        eid = exp["experimentId"]
        enrolled = [(u, self.arm(u, exp, cohort, 50)) for u in population]
        enrolled = [(u, a) for u, a in enrolled if a in ("CONTROL", "TREATMENT") and u not in pubsub_users]
        treatment = [u for u, a in enrolled if a == "TREATMENT"]
        fraudsters, whale = treatment[:5], treatment[5]
        special = {**{u: "fraud" for u in fraudsters}, whale: "whale"}
        step(f"bulk-loaded simulated history: {len(enrolled)} enrolled users' totals and exposures, in {ANALYSES} "
             f"chunks, with an analysis after each (fraud: {len(fraudsters)}, whale: 1)")
        self.fraud(fraudsters)
        analyses = []
        truth = {"CONTROL": [0, 0.0], "TREATMENT": [0, 0.0]}
        for n, chunk in enumerate(sim.chunks(enrolled, ANALYSES)):
            writes = []
            for user, arm in chunk:
                if user not in answers:  # sample users' exposures were written by get_offer itself
                    writes.append((self.db.collection(C.EXPERIMENT_EXPOSURES).document(f"{eid}_{user}"),
                                   sim.exposure_doc(eid, user, arm, 50, start)))
                kind = special.get(user)
                if kind == "fraud":
                    doc = sim.totals_doc(eid, user, arm, purchase=400.0, purchases=1, at=start)
                elif kind == "whale":
                    doc = sim.totals_doc(eid, user, arm, purchase=5_000.0, purchases=1, at=start)
                else:
                    outcome = outcomes.draw(arm)
                    truth[arm][0] += 1
                    if outcome is None:
                        continue
                    doc = sim.outcome_totals(eid, user, arm, outcome, start)
                    truth[arm][1] += doc["amounts"]["purchase"] + doc["amounts"]["renewal"] - doc["amounts"]["refund"]
                writes.append((self.db.collection(C.USER_METRIC_TOTALS).document(f"{eid}_{user}"), doc))
            sim.bulk_write(self.db, writes, f"chunk {n + 1}/{ANALYSES} written")
            analysis = self.pm.analyze_experiment(eid, "net_ltv")
            lo, hi = analysis["confidenceInterval"]
            print(f"   analysis {n + 1}: corrected lift {analysis['correctedPercentChange']:+.1f}% "
                  f"[{lo:+.1f}, {hi:+.1f}], raw {analysis['rawPercentChange']:+.1f}%, n={analysis['sampleSizes']}")
            analyses.append(analysis)
        sample_means = {arm: (v[1] / v[0] if v[0] else 0.0) for arm, v in truth.items()}
        self.summary["paths"]["bulkLoadedHistory"] = {"users": len(enrolled), "fraudsters": fraudsters, "whale": whale}
        self.summary["analyses"] = [{k: a.get(k) for k in ("analysisId", "rawPercentChange", "correctedPercentChange",
                                                           "confidenceInterval", "pValue", "sampleSizes",
                                                           "dataQuality", "recommendation")} for a in analyses]
        final = analyses[-1]
        lo, hi = final["confidenceInterval"]
        self.summary["priceEffect"] = {
            "trueLiftPercent": round(sim.TRUE_LIFT_PERCENT, 2),
            "simulatedSampleLiftPercent": round(100 * (sample_means["TREATMENT"] / sample_means["CONTROL"] - 1), 2),
            "rawPercentChange": final["rawPercentChange"], "correctedPercentChange": final["correctedPercentChange"],
            "confidenceInterval": [lo, hi], "trueLiftInsideInterval": lo < sim.TRUE_LIFT_PERCENT < hi,
            "biasAdjustments": final.get("biasAdjustments")}

    def guardrail_kill(self, cohort: dict[str, Any]) -> str:
        step("a second experiment (trial paywall) whose refund guardrail trips: guardrail_sweep kills it")
        body = self.experiment_body(cohort["cohortId"], f"Aggressive paywall {self.tag}", offerType="PAYWALL",
                                    offerConfig={"paywall": "hard"}, controlConfig={"paywall": "soft"},
                                    guardrails=[{"kpiName": "Refund Rate", "metric": "refund_rate",
                                                 "maxThreshold": 0.02, "violationAction": "KILL"}])
        exp = self.pm.call("create_experiment", body)
        eid = exp["experimentId"]
        self.pm.create_rollout_plan(eid, stages=[100])
        self.approve_and_start(eid)
        from offerlab.store import collections as C  # noqa: PLC0415

        at = datetime.now(timezone.utc)
        writes = []
        for arm, every in (("CONTROL", 100), ("TREATMENT", 5)):  # 1 % vs 20 % refunds, 300 buyers an arm
            for i in range(300):
                user = f"pw-{self.tag}-{arm[0]}{i}"
                refunded = int(i % every == 0)
                writes.append((self.db.collection(C.EXPERIMENT_EXPOSURES).document(f"{eid}_{user}"),
                               sim.exposure_doc(eid, user, arm, 100, at)))
                writes.append((self.db.collection(C.USER_METRIC_TOTALS).document(f"{eid}_{user}"),
                               sim.totals_doc(eid, user, arm, purchase=9.99, purchases=1, refund=9.99 * refunded,
                                              refunds=refunded, at=at)))
        sim.bulk_write(self.db, writes, "bulk-loaded paywall history")
        tick = datetime.now(timezone.utc) + timedelta(minutes=5)
        self.scheduler("guardrail_sweep", tick)
        status = poll(lambda: self.analyst.monitor_experiment(eid)["status"], lambda s: s == "KILLED", 90, 2.0)
        print(f"   guardrail_sweep at {iso(tick)}: {eid} is {status}")
        self.summary["guardrailKill"] = {"experimentId": eid, "status": status, "killed": status == "KILLED"}
        return eid

    def ledger(self, chains: list[str]) -> None:
        step("verify the ledger of each experiment and the cohort")
        verdicts = {}
        for chain in chains:
            verdict = poll(lambda c=chain: self.analyst.verify_ledger(c),
                           lambda v: v["valid"] and not v.get("pendingEntries"), 60, 2.0)
            verdicts[chain] = {"valid": verdict["valid"], "entriesChecked": verdict["entriesChecked"],
                               "headHash": verdict["headHash"]}
            print(f"   {chain}: valid={verdict['valid']} entries={verdict['entriesChecked']}")
        self.summary["ledger"] = {"chains": verdicts, "allValid": all(v["valid"] for v in verdicts.values())}

    def exports(self, price_eid: str, kill_eid: str) -> None:
        step("export the audit reports (HTML, CSV, JSON) to out/")
        files = []
        for eid, prefix, formats in ((price_eid, "audit", ("html", "csv", "json")),
                                     (kill_eid, "audit-guardrail", ("html", "json"))):
            for fmt in formats:
                resp = self.analyst.export_audit_report(eid, fmt)
                path = OUT / f"{prefix}-{eid}.{fmt}"
                path.write_bytes(resp.content)
                files.append(str(path.relative_to(ROOT)))
                print(f"   {path.relative_to(ROOT)} ({len(resp.content):,} bytes)")
        self.summary["artifacts"] = files


def main() -> int:
    OUT.mkdir(exist_ok=True)
    started = time.monotonic()
    demo = Demo(os.environ["OFFERLAB_FUNCTIONS_URL"])
    print(f"offerlab demo {demo.tag}: functions at {demo.url}")
    cohort = demo.holdout()
    population = [f"user-{demo.tag}-{i:05d}" for i in range(POPULATION)]

    step(f"holdout share over all {POPULATION:,} simulated users (published hash, computed locally)")
    holdout_n = sum(assign_arm(user_id=u, experiment_salt="x", treatment_percentage=50, coverage=None,
                               holdout_salt=cohort["salt"], holdout_percentage=10).value == "HOLDOUT" for u in population)
    print(f"   {holdout_n} of {POPULATION} = {100 * holdout_n / POPULATION:.2f}% (target 10%)")
    demo.summary["holdoutShare"] = {"users": POPULATION, "inHoldout": holdout_n, "share": holdout_n / POPULATION,
                                    "target": 0.10}
    demo.summary["paths"]["assignment"] = f"{POPULATION} users: published hash, computed locally"

    exp = demo.price_test(cohort)
    answers = demo.rollout(exp, cohort, population)
    holdout_asked = sum(a == "HOLDOUT" for a in answers.values())
    demo.summary["holdoutShare"]["getOfferSampleShare"] = holdout_asked / len(answers)
    demo.spillover(exp, cohort, population)
    outcomes = sim.Outcomes()
    start = datetime.now(timezone.utc) - timedelta(days=120)
    pubsub_users, _ = demo.metric_events(exp, answers, outcomes, start)
    demo.history(exp, cohort, population, answers, pubsub_users, outcomes, start)
    kill_eid = demo.guardrail_kill(cohort)
    demo.ledger([exp["experimentId"], kill_eid, f"cohort:{cohort['cohortId']}"])
    demo.exports(exp["experimentId"], kill_eid)

    s = demo.summary
    s["elapsedSeconds"] = round(time.monotonic() - started, 1)
    (OUT / "summary.json").write_text(json.dumps(s, indent=2, default=str))
    effect = s["priceEffect"]
    checks = {
        "holdout share within 9–11 %": 0.09 <= s["holdoutShare"]["share"] <= 0.11,
        "true price effect inside the corrected interval": effect["trueLiftInsideInterval"],
        "guardrail killed the paywall test": s["guardrailKill"]["killed"],
        "every ledger verifies": s["ledger"]["allValid"],
        "get_offer matched the published hash": all(st["hashMismatches"] == 0 for st in s["rollout"]["stages"]),
    }
    s["checks"] = checks
    (OUT / "summary.json").write_text(json.dumps(s, indent=2, default=str))
    step(f"summary (full detail in {(OUT / 'summary.json').relative_to(ROOT)})")
    lo, hi = effect["confidenceInterval"]
    print(f"   holdout share      {100 * s['holdoutShare']['share']:.2f}% of {POPULATION:,} users "
          f"({100 * s['holdoutShare']['getOfferSampleShare']:.1f}% of the get_offer sample)")
    print(f"   price effect       true {effect['trueLiftPercent']:+.1f}%  corrected {effect['correctedPercentChange']:+.1f}% "
          f"[{lo:+.1f}, {hi:+.1f}]  raw {effect['rawPercentChange']:+.1f}% (fraud + whale)")
    print(f"   rollout            {' → '.join(str(st['stage']) for st in s['rollout']['stages'])}% by rollout_sweep")
    print(f"   guardrail          {s['guardrailKill']['experimentId']} {s['guardrailKill']['status']}")
    print(f"   ledger             {'all valid' if s['ledger']['allValid'] else 'INVALID'} "
          f"({sum(v['entriesChecked'] for v in s['ledger']['chains'].values())} entries)")
    print("   paths              assignment of all users: local hash; get_offer: HTTP; "
          f"{s['paths']['pubsubMetricEvents']['messages']} metric events + "
          f"{s['paths']['pubsubFraudSignals']['users']} fraud signals: Pub/Sub; "
          "sweeps: scheduled endpoints; per-user totals of the rest: bulk-loaded simulated history")
    for name, ok in checks.items():
        print(f"   {'✔' if ok else '✘'} {name}")
    print(f"   artifacts          {', '.join(s['artifacts'])}  ({s['elapsedSeconds']} s)")
    # A 95 % interval misses the true effect in about 1 run of 20 by design (salts are random per run):
    # that check is reported, not fatal. The others are deterministic promises of the framework.
    statistical = {"true price effect inside the corrected interval"}
    if not checks["true price effect inside the corrected interval"]:
        print("   note               a 95 % interval misses the truth in ~5 % of runs; rerun to see it cover")
    return 0 if all(ok for name, ok in checks.items() if name not in statistical) else 1


if __name__ == "__main__":
    sys.exit(main())
