"""Regions, money and store rules for the demo (API.md §13): a price reduction on an EU paywall that may not
be offered in one region, is kept from existing subscribers, shows the Omnibus reference price, and is paid
in EUR and JPY (plus a currency nobody can convert).

``story(ctx, cohort)`` is what scripts/demo.py calls: ``ctx`` has the demo's clients (``pm``, ``ceo``,
``cfo``, ``analyst``, ``service``, ``admin``), its Firestore client ``db``, ``tag`` and, optionally,
``publish(topic, data)`` (else the Pub/Sub emulator is used directly); ``cohort`` is a FROZEN cohort whose
scope covers any placement (the demo's global holdout). It returns the figures the summary shows
(``summary_lines``) and ``checks`` says whether each promise held. Standalone, on a fresh emulator suite:

    scripts/with-emulators functions/venv/bin/python scripts/demo_regions.py

Paths, labelled as in the main demo: get_offer over HTTP (every user here), metric events through
``offer-metric-events`` (Pub/Sub), the placement's 30-day price history before the test is *scripted*
(written into the emulator's Firestore as get_offer would have recorded it: the test starts today).
"""
from __future__ import annotations

import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "functions")]

DENIED = "BR"                  # the experiment's own deny list (the regional policy adds CU, IR, KP, SY)
USERS = {"DE": 160, "JP": 80, DENIED: 80}
SUBSCRIBERS = 30               # existing subscribers the backend names (subscriber: true)
RATES = {"USD": "1.0850", "JPY": "162.35"}   # yesterday's, base EUR: today has none (the fallback rule)
PRICES = {"DE": ("EUR", "9.99", "7.99"), "JP": ("JPY", "1200", "980")}  # status quo, reduced
# The paywall's regular prices over the past weeks in DE: (days ago, amount, shown as a reduction).
HISTORY = [(34, "6.99", False), (28, "9.49", False), (20, "8.99", False), (9, "5.99", True), (3, "9.99", False)]
UNKNOWN_CURRENCY = "VEF"       # the bolívar fuerte, withdrawn from ISO 4217 in 2018: nobody has a rate


def _iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _poll(fn: Callable[[], Any], until: Callable[[Any], bool], timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if until(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.5)


def _publisher(ctx: Any) -> Callable[[str, dict[str, Any]], None]:
    if hasattr(ctx, "publish"):
        return ctx.publish
    from google.api_core.exceptions import AlreadyExists  # noqa: PLC0415
    from google.cloud import pubsub_v1  # noqa: PLC0415

    client = pubsub_v1.PublisherClient()

    def publish(topic: str, data: dict[str, Any]) -> None:
        path = client.topic_path("demo-offerlab", topic)
        try:
            client.create_topic(name=path)
        except AlreadyExists:
            pass
        client.publish(path, json.dumps(data).encode()).result(timeout=30)

    return publish


def _body(cohort_id: str, tag: str, placement: str) -> dict[str, Any]:
    now = datetime.now(timezone.utc)
    regional = lambda i: {r: {"price": p[i], "currency": p[0]} for r, p in PRICES.items()}  # noqa: E731
    return {
        "name": f"EU paywall reduction {tag}", "description": "Premium monthly €9.99 shown reduced to €7.99",
        "hypothesis": {"statement": "A visible reduction raises conversion enough to raise net LTV",
                       "successCriteria": ["Net LTV lift > 5%"]},
        "kpis": [{"name": "Net LTV", "type": "PRIMARY", "metric": "net_ltv", "direction": "INCREASE"}],
        "guardrails": [{"kpiName": "Refund Rate", "metric": "refund_rate", "maxThreshold": 0.2, "violationAction": "ALERT"}],
        "holdoutCohortId": cohort_id, "treatmentPercentage": 50, "offerType": "PRICE_CHANGE",
        "offerConfig": {"productId": f"premium_monthly_reduced_{tag}", "displayAsDiscount": True,
                        "price": "7.99", "currency": "EUR", "regionalPrices": regional(2)},
        "controlConfig": {"productId": "premium_monthly", "price": "9.99", "currency": "EUR",
                          "regionalPrices": regional(1)},
        "regions": {"deny": [DENIED]}, "placement": placement,
        "plannedStartDate": _iso(now), "plannedEndDate": _iso(now + timedelta(days=30)),
        "approvers": ["ceo@company.com", "cfo@company.com"],
    }


def _script_history(db: Any, placement: str) -> Decimal:
    """The DE price history of the placement before the test (scripted); returns the expected reference."""
    from offerlab.store import collections as C  # noqa: PLC0415

    today = datetime.now(timezone.utc).date()
    series = db.collection(C.PRICE_SERIES).document(f"{placement}|DE").collection(C.PRICES_SERVED)
    for days_ago, amount, discount in HISTORY:
        day = (today - timedelta(days=days_ago)).isoformat()
        series.document(f"{day}|EUR|{amount}|{'D' if discount else 'R'}").set({
            "placement": placement, "region": "DE", "day": day, "currency": "EUR", "amount": amount,
            "discount": discount, "firstServedAt": datetime.now(timezone.utc) - timedelta(days=days_ago)})
    return min(Decimal(a) for d, a, disc in HISTORY if 1 <= d <= 30 and not disc)


def _usd(amount: str, currency: str) -> Decimal:
    """The conversion written out from RATES (base EUR), half-even to the cent: what the summary expects."""
    rate = Decimal(RATES["USD"]) if currency == "EUR" else Decimal(RATES["USD"]) / Decimal(RATES[currency])
    return (Decimal(amount) * rate).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)


def story(ctx: Any, cohort: dict[str, Any]) -> dict[str, Any]:
    """Run the story; returns the figures (JSON-ready) for the demo's summary."""
    tag = ctx.tag
    placement = f"paywall-eu-{tag}"
    publish = _publisher(ctx)
    expected_reference = _script_history(ctx.db, placement)
    yesterday = (datetime.now(timezone.utc).date() - timedelta(days=1)).isoformat()
    ctx.admin.set_exchange_rates(yesterday, "EUR", RATES)

    exp = ctx.pm.call("create_experiment", _body(cohort["cohortId"], tag, placement))
    eid = exp["experimentId"]
    ctx.pm.create_rollout_plan(eid, stages=[100])
    ctx.pm.submit_for_approval(eid)
    ctx.ceo.approve_experiment(eid, comment="pricing sign-off")
    ctx.cfo.approve_experiment(eid, comment="finance sign-off")
    ctx.pm.start_experiment(eid)

    # get_offer over HTTP: users in DE, JP and the denied region; existing subscribers named by the backend.
    users = [(f"reg-{tag}-{region}-{i:04d}", region) for region, n in USERS.items() for i in range(n)]
    subscribers = [f"reg-{tag}-sub-{i:03d}" for i in range(SUBSCRIBERS)]

    def ask(item: tuple[str, str]) -> tuple[str, dict[str, Any]]:
        user, region = item
        return user, ctx.service.get_offer_where(user_id=user, placement=placement, region=region)

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = dict(pool.map(ask, users))
        subs = dict(pool.map(lambda u: (u, ctx.service.get_offer_where(
            user_id=u, placement=placement, region="DE", subscriber=True)), subscribers))
    region_of = dict(users)
    denied = [u for u, r in users if r == DENIED]
    denied_treated = sum(1 for u in denied if answers[u]["arm"] == "TREATMENT")
    denied_reasons = sorted({answers[u].get("reason") for u in denied})
    subs_enrolled = sum(1 for a in subs.values() if a["arm"] in ("TREATMENT", "CONTROL", "HOLDOUT"))
    treated_de = [a for u, a in answers.items() if region_of[u] == "DE" and a["arm"] == "TREATMENT"]
    shown_reference = sorted({a.get("referencePrice") for a in treated_de}, key=str)

    # Purchases through offer-metric-events at the price each buyer was shown, in EUR or JPY; a few in a
    # currency nobody can convert.
    buyers = [(u, a) for u, a in answers.items() if a["arm"] in ("TREATMENT", "CONTROL") and region_of[u] in PRICES]
    buyers = buyers[::3]
    sent: dict[str, list[str]] = {"EUR": [], "JPY": [], UNKNOWN_CURRENCY: []}
    when = _iso(datetime.now(timezone.utc) + timedelta(seconds=5))
    events = []
    for user, answer in buyers:
        config = answer["offerConfig"]
        price = config["regionalPrices"][region_of[user]]
        events.append((user, price["price"], price["currency"]))
    for user, _ in buyers[:3]:
        events.append((user, "120000", UNKNOWN_CURRENCY))
    for i, (user, amount, currency) in enumerate(events):
        sent[currency].append(amount)
        publish("offer-metric-events", {"eventId": f"reg-{tag}-{i}", "userId": user, "type": "purchase",
                                        "value": amount, "currency": currency, "occurredAt": when,
                                        "experimentId": eid, "region": region_of[user]})
        if i % 10 == 9:
            time.sleep(1.0)  # the functions emulator chokes on bursts (the main demo's waves)

    from offerlab.store import collections as C  # noqa: PLC0415

    refs = [ctx.db.collection(C.USER_METRIC_TOTALS).document(f"{eid}_{u}") for u, _ in buyers]

    def delivered() -> int:  # every buyer's purchase counted (the refused ones add to refused.* instead)
        return sum(1 for snap in ctx.db.get_all(refs) if snap.exists and (
            (snap.to_dict().get("counts") or {}).get("purchase", 0) >= 1))

    _poll(delivered, lambda n: n >= len(buyers))
    monitor = _poll(lambda: ctx.analyst.monitor_experiment(eid),
                    lambda m: sum(m.get("refusedEvents", {}).values()) >= len(sent[UNKNOWN_CURRENCY]))
    analysis = ctx.analyst.analyze_experiment(eid, "net_ltv")
    breakdown = analysis["currencyBreakdown"]
    expected = {c: str(sum((_usd(a, c) for a in sent[c]), Decimal("0.00"))) for c in ("EUR", "JPY")}
    return {
        "experimentId": eid, "placement": placement, "deniedRegion": DENIED,
        "deniedUsers": len(denied), "deniedUsersTreated": denied_treated, "deniedReasons": denied_reasons,
        "notEnrolled": monitor.get("notEnrolled"), "exposures": monitor.get("exposures"),
        "subscribersAsked": len(subscribers), "subscribersEnrolled": subs_enrolled,
        "referencePrice": {"shown": shown_reference, "expected": float(expected_reference),
                           "history": [{"daysAgo": d, "amount": a, "reduction": r} for d, a, r in HISTORY]},
        "rates": {"date": yesterday, "base": "EUR", "rates": RATES},
        "events": {c: len(v) for c, v in sent.items()},
        "currencyBreakdown": breakdown, "expectedConvertedUsd": expected,
        "refusedEvents": monitor.get("refusedEvents"), "analysisId": analysis["analysisId"],
        "paths": {"getOffer": f"{len(users) + len(subscribers)} users over HTTP (get_offer {{placement, region}})",
                  "events": f"{len(events)} purchases through offer-metric-events",
                  "history": f"{len(HISTORY)} days of the DE price history: scripted (the test starts today)"},
    }


def summary_lines(figures: dict[str, Any]) -> list[str]:
    """The summary's lines for regions and money (the demo prints them)."""
    b, ref = figures["currencyBreakdown"], figures["referencePrice"]
    cur = b["currencies"]
    conv = ", ".join(f"{c} {v['events']} events {v['amount']} → {b['reportingCurrency']} {v['convertedAmount']}"
                     for c, v in cur.items())
    return [
        f"denied region      {figures['deniedRegion']}: {figures['deniedUsers']} users, {figures['deniedUsersTreated']} treated, "
        f"not enrolled {figures['notEnrolled']}",
        f"existing subs      {figures['subscribersAsked']} asked, {figures['subscribersEnrolled']} enrolled (NEW_CUSTOMERS)",
        f"reference price    shown {ref['shown']} = lowest of the prior 30 days {ref['expected']}",
        f"currencies         {conv}; refused {figures['refusedEvents']}",
    ]


def checks(figures: dict[str, Any]) -> dict[str, bool]:
    """The promises of API.md §13, for the demo's checks."""
    cur = figures["currencyBreakdown"]["currencies"]
    return {
        "no user of the denied region got a treatment, all counted as not enrolled":
            figures["deniedUsersTreated"] == 0 and figures["deniedReasons"] == ["region"]
            and (figures["notEnrolled"] or {}).get("region", 0) >= figures["deniedUsers"],
        "no existing subscriber enrolled": figures["subscribersEnrolled"] == 0,
        "the reference price is the lowest of the prior 30 days": figures["referencePrice"]["shown"] == [figures["referencePrice"]["expected"]],
        "EUR and JPY converted at the dated rate": all(
            cur.get(c, {}).get("convertedAmount") == figures["expectedConvertedUsd"][c] for c in ("EUR", "JPY")),
        "the unknown currency refused and counted": (figures["refusedEvents"] or {}).get("unknown_currency")
            == figures["events"][UNKNOWN_CURRENCY],
    }


def main() -> int:
    from demo_standalone import run_standalone  # noqa: PLC0415 (only when run on its own)

    return run_standalone(sys.modules[__name__])


if __name__ == "__main__":
    sys.exit(main())
