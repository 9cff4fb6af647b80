"""Money on the real Firestore emulator (service layer, FirestoreStore; no Pub/Sub): dated rates set once,
EUR and JPY events converted at their date's rate (the range query over exchangeRates), an unknown currency
and a missing rate refused and counted on the shards and by monitor_experiment, and the analysis of a
multi-currency test equal to the one of the same test on pre-converted amounts (FirestoreAnalysisSource)."""
import random
import uuid
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal

import pytest

from offerlab.domain.actors import Caller, Role
from offerlab.domain.errors import AlreadyExists
from offerlab.domain.metrics import Metric
from offerlab.service import analytics, guardrails
from offerlab.service import metrics as ingestion
from offerlab.service.money import set_exchange_rates
from offerlab.store import collections as C
from offerlab.store import exposures as exposures_repo
from offerlab.store import metrics as metrics_repo
from offerlab.store.documents import ExperimentExposure
from offerlab.store.firestore_store import firestore_store
from tests.unit.monitoring_fixtures import experiment_doc

ADMIN = Caller("admin-uid", "admin@company.com", frozenset({Role.ADMIN}))
ANALYST = Caller("analyst-uid", "analyst@company.com", frozenset({Role.ANALYST}))
T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
RATES = {"2026-03-09": ("EUR", {"USD": "1.0850", "JPY": "162.35"}), "2026-03-10": ("USD", {"EUR": "0.9210", "JPY": "149.80"})}


def at(day):
    return datetime(2026, 3, day, 12, tzinfo=timezone.utc).isoformat().replace("+00:00", "Z")


@pytest.fixture(scope="module")
def rates(firestore_db):
    for day, (base, table) in RATES.items():
        set_exchange_rates(firestore_store(), ADMIN, day, base, table)
    return RATES


def experiment(db, **over):
    exp = experiment_doc(f"exp-{uuid.uuid4().hex[:10]}", **over)
    db.collection(C.OFFER_EXPERIMENTS).document(exp.experiment_id).set(exp.to_firestore())
    return exp


def expose(experiment_id, user, arm):
    assert exposures_repo.record_first_exposure(ExperimentExposure(
        experiment_id=experiment_id, user_id=user, arm=arm, first_exposed_at=T0, coverage=100.0, experiment_version=3))


def ingest(body):
    return ingestion.ingest_metric_event(firestore_store(), body)


def test_rates_are_created_once_and_never_changed(firestore_db, rates):
    doc = firestore_db.collection(C.EXCHANGE_RATES).document("2026-03-09_EUR").get().to_dict()
    assert doc["rates"] == {"JPY": "162.35", "USD": "1.085"} and doc["setBy"] == "admin@company.com"
    with pytest.raises(AlreadyExists):
        set_exchange_rates(firestore_store(), ADMIN, "2026-03-09", "EUR", {"USD": "1.2"})
    assert firestore_db.collection(C.EXCHANGE_RATES).document("2026-03-09_EUR").get().to_dict()["rates"]["USD"] == "1.085"


def test_eur_and_jpy_events_convert_at_the_right_dated_rate_and_unknown_currency_is_refused_and_counted(
        firestore_db, rates, monkeypatch):
    monkeypatch.setenv("OFFERLAB_RATE_MAX_AGE_DAYS", "3")
    exp = experiment(firestore_db)
    user, other = f"u-{uuid.uuid4().hex[:8]}", f"u-{uuid.uuid4().hex[:8]}"
    expose(exp.experiment_id, user, "TREATMENT")
    expose(exp.experiment_id, other, "CONTROL")
    base = {"experimentId": exp.experiment_id, "type": "purchase"}
    sent = [
        ({"userId": user, "value": 9.99, "currency": "EUR", "occurredAt": at(9)}, "APPLIED"),    # 10.84
        ({"userId": user, "value": 1200, "currency": "JPY", "occurredAt": at(12)}, "APPLIED"),   # the 10th's: 8.01
        ({"userId": user, "value": 5, "currency": "XYZ", "occurredAt": at(9)}, "REFUSED"),
        ({"userId": other, "value": 9.99, "currency": "EUR", "occurredAt": at(14)}, "REFUSED"),  # 4 days: no rate
        ({"userId": other, "value": "8.99", "currency": "EUR", "occurredAt": at(10)}, "APPLIED"),  # 9.76
    ]
    for body, status in sent:
        assert ingest({**base, **body, "eventId": f"ev-{uuid.uuid4().hex}"}).status.value == status
    t = metrics_repo.find_totals(exp.experiment_id, user)
    assert t["amounts"]["purchase"] == pytest.approx(10.84 + 8.01)
    assert t["currencies"]["EUR"]["purchase"] == {"count": 1, "amountMinor": 999, "convertedMinor": 1084}
    assert t["currencies"]["JPY"]["purchase"] == {"count": 1, "amountMinor": 1200, "convertedMinor": 801}
    assert t["refused"] == {"unknown_currency": 1} and t["refusedCurrencies"] == {"XYZ": 1}
    o = metrics_repo.find_totals(exp.experiment_id, other)
    assert o["amounts"]["purchase"] == pytest.approx(9.76) and o["refused"] == {"no_rate": 1}
    monitor = guardrails.monitor_experiment(firestore_store(), ANALYST, exp.experiment_id)
    assert monitor["refusedEvents"] == {"unknown_currency": 1, "no_rate": 1}
    assert any("2 metric event(s) refused" in issue for issue in monitor["issues"])


def usd(value, currency, day):
    """The conversion written out again from RATES (not the code under test)."""
    if currency == "USD":
        rate = Decimal(1)
    elif day >= 10:
        rate = 1 / Decimal(RATES["2026-03-10"][1][currency])
    else:
        table = RATES["2026-03-09"][1]
        rate = Decimal(table["USD"]) if currency == "EUR" else Decimal(table["USD"]) / Decimal(table[currency])
    return (Decimal(str(value)) * rate).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)


def test_the_analysis_of_a_multi_currency_test_equals_one_on_pre_converted_amounts(firestore_db, rates):
    mixed, converted = experiment(firestore_db), experiment(firestore_db)
    rng = random.Random(3)
    prices = {"USD": (9.99, 12.99), "EUR": (8.99, 11.99), "JPY": (1200, 1600)}
    for i in range(160):
        user, arm = f"m{i:03d}-{uuid.uuid4().hex[:4]}", "TREATMENT" if i % 2 else "CONTROL"
        expose(mixed.experiment_id, user, arm)
        expose(converted.experiment_id, user, arm)
        currency = rng.choice(list(prices))
        for n in range(rng.randint(0, 2)):
            kind = "purchase" if n == 0 else rng.choice(("renewal", "refund"))
            value = prices[currency][1 if arm == "TREATMENT" and rng.random() < 0.6 else 0]
            day = rng.choice((9, 10, 11))
            body = {"userId": user, "type": kind, "occurredAt": at(day)}
            assert ingest({**body, "eventId": uuid.uuid4().hex, "experimentId": mixed.experiment_id,
                           "value": value, "currency": currency}).status.value == "APPLIED"
            assert ingest({**body, "eventId": uuid.uuid4().hex, "experimentId": converted.experiment_id,
                           "value": str(usd(value, currency, day)), "currency": "USD"}).status.value == "APPLIED"
    a, b = (analytics.analyze_experiment(firestore_store(), ANALYST, e.experiment_id, Metric.NET_LTV)
            .model_dump(by_alias=True) for e in (mixed, converted))
    for key in ("rawPercentChange", "correctedPercentChange", "pValue", "srmPValue"):
        assert a[key] == pytest.approx(b[key], rel=1e-9, abs=1e-12), key
    assert a["confidenceInterval"] == pytest.approx(b["confidenceInterval"], rel=1e-9)
    assert a["sampleSizes"] == b["sampleSizes"]
    assert set(a["currencyBreakdown"]["currencies"]) == {"USD", "EUR", "JPY"}
    assert set(b["currencyBreakdown"]["currencies"]) == {"USD"}
    stored = firestore_db.collection(C.EXPERIMENT_ANALYSES).document(a["analysisId"]).get().to_dict()
    assert stored["currencyBreakdown"]["reportingCurrency"] == "USD"
