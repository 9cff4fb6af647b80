"""compute_analysis on in-memory rows (a fake AnalysisSource's data): known answers for every adjustment,
the whale, differential exclusion, the digest, and restriction lists. No Firestore here: the same
computation runs on the emulator in tests/integration/test_analytics.py."""
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from offerlab.domain.errors import InvalidArgument
from offerlab.domain.metrics import Metric
from offerlab.domain.regional_policy import policy_from_dict
from offerlab.domain.user_rows import UserRow, moments_from_rows
from offerlab.service.analytics import AnalysisInputs, AnalysisSettings, build_analysis, compute_analysis
from offerlab.store.documents import OfferExperiment

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def experiment(offer_type="PRICE_CHANGE", treatment=50.0):
    return OfferExperiment.model_validate({
        "experimentId": "exp-1", "name": "price", "hypothesis": {"statement": "s"},
        "kpis": [{"name": "LTV", "type": "PRIMARY", "metric": "net_ltv", "direction": "INCREASE"}],
        "guardrails": [{"kpiName": "Refunds", "metric": "refund_rate", "maxThreshold": 0.05, "violationAction": "PAUSE"}],
        "holdoutCohortId": "c1", "treatmentPercentage": treatment, "offerType": offer_type, "offerConfig": {},
        "plannedStartDate": T0, "plannedEndDate": T0 + timedelta(days=30), "approvers": ["a@b.com"],
        "author": "pm@company.com", "salt": "s" * 32, "status": "RUNNING", "createdAt": T0,
    })


def row(uid, arm, ltv=0.0, **kw):
    amounts = {"purchase": ltv} if ltv else {}
    counts = {"purchase": 1} if ltv else {}
    counts.update(kw.pop("counts", {}))
    return UserRow(uid, arm, counts=counts, amounts=amounts, first_exposed_at=T0,
                   last_event_at=T0 + timedelta(days=10), **kw)


def price_test(n=2000, seed=7, effect=2.0):
    """Control pays ~Exp(10) with probability 0.5, treatment the same + ``effect``: true lift known."""
    rng = np.random.default_rng(seed)
    rows = []
    for arm, shift in (("CONTROL", 0.0), ("TREATMENT", effect)):
        pays = rng.random(n) < 0.5
        values = np.where(pays, rng.exponential(10.0, n) + shift, 0.0)
        rows += [row(f"{arm[0]}{i:05d}", arm, float(v)) for i, v in enumerate(values)]
    return rows


def inputs(rows, fraud=None, contaminated=None, policy=None, exp=None, **kw):
    settings = AnalysisSettings(policy=policy or policy_from_dict({}))
    return AnalysisInputs(experiment=exp or experiment(), metric=kw.pop("metric", Metric.NET_LTV), rows=rows,
                          fraud_scores=fraud or {}, contaminated=contaminated or set(), settings=settings, **kw)


def adjustment(result, type_):
    return next(a for a in result["bias_adjustments"] if a["type"] == type_)


def test_clean_data_raw_equals_corrected_up_to_the_cap_and_every_reason_is_reported():
    result = compute_analysis(inputs(price_test()))
    assert {a["type"] for a in result["bias_adjustments"]} == {"fraud", "bot", "sandbox", "spillover",
                                                               "regional_policy", "winsorization"}
    assert all(adjustment(result, t)["affectedUserCount"] == 0 for t in ("fraud", "bot", "sandbox", "spillover",
                                                                          "regional_policy"))
    assert result["uncapped_percent_change"] == pytest.approx(result["raw_percent_change"])
    assert result["sample_sizes"] == {"CONTROL": 2000, "TREATMENT": 2000} and result["excluded_users"] == 0
    lo, hi = result["confidence_interval"]
    assert lo < result["corrected_percent_change"] < hi
    assert result["data_quality"] == "HIGH" and len(result["inputs_digest"]) == 64


def test_fraud_users_at_or_above_the_threshold_are_excluded_and_their_fake_lift_removed():
    rows = price_test(effect=0.0)
    fraud_ids = [f"T{i:05d}" for i in range(40)]
    rows = [replace(r, amounts={"purchase": 500.0}, counts={"purchase": 1}) if r.user_id in fraud_ids else r for r in rows]
    scores = {u: 0.95 for u in fraud_ids} | {"C00001": 0.79}
    result = compute_analysis(inputs(rows, fraud=scores))
    fraud = adjustment(result, "fraud")
    assert fraud["affectedUserCount"] == 40 and fraud["byArm"] == {"CONTROL": 0, "TREATMENT": 40}
    assert fraud["severity"] == "HIGH"  # 1 % of users, but only in one arm: differential, so HIGH
    assert result["differential_exclusion_flagged"] is True
    assert result["raw_percent_change"] > 50  # 40 fake $500 purchases fake a big lift
    lo, hi = result["confidence_interval"]
    assert lo < 0 < hi  # the true effect (none) is inside the corrected interval
    assert result["data_quality"] == "LOW" and result["recommendation"] == "INVESTIGATE_DATA_QUALITY"


def test_a_whale_is_capped_at_the_pooled_percentile_and_the_uncapped_result_is_reported():
    rows = price_test(effect=0.0)
    rows = [replace(r, amounts={"purchase": 100_000.0}, counts={"purchase": 1}) if r.user_id == "T00003" else r
            for r in rows]
    result = compute_analysis(inputs(rows))
    win = adjustment(result, "winsorization")
    payers = [r.amounts["purchase"] for r in rows if r.amounts.get("purchase")]
    assert result["winsorize_cap"] == pytest.approx(np.percentile(payers, 99))
    assert win["byArm"]["TREATMENT"] >= 1 and win["affectedUserCount"] == sum(p > result["winsorize_cap"] for p in payers)
    assert result["uncapped_percent_change"] > 50 and abs(result["corrected_percent_change"]) < 15
    lo, hi = result["confidence_interval"]
    assert lo < 0 < hi


def test_bots_sandbox_spillover_and_region_are_each_counted_in_their_arm():
    rows = price_test(n=500)
    edits = {
        "C00000": {"counts": {"paywall_view": 400}},                 # bot: paywall views
        "T00000": {"counts": {"paywall_view": 100}, "last_event_at": T0 + timedelta(minutes=2)},  # bot: rate
        "T00001": {"sandbox": True},
        "C00002": {"region": "de"},                                   # PRICE_CHANGE not allowed in DE
        "T00002": {"region": "XK"},                                   # consent excluded
    }
    rows = [replace(r, **edits[r.user_id]) if r.user_id in edits else r for r in rows]
    policy = policy_from_dict({"offerTypeNotAllowed": {"PRICE_CHANGE": ["DE"]}, "consentExcluded": ["XK"]})
    result = compute_analysis(inputs(rows, contaminated={"C00003", "C00004"}, policy=policy))
    assert adjustment(result, "bot")["byArm"] == {"CONTROL": 1, "TREATMENT": 1}
    assert adjustment(result, "sandbox")["byArm"] == {"CONTROL": 0, "TREATMENT": 1}
    assert adjustment(result, "spillover")["byArm"] == {"CONTROL": 2, "TREATMENT": 0}
    assert adjustment(result, "regional_policy")["byArm"] == {"CONTROL": 1, "TREATMENT": 1}
    assert result["sample_sizes"] == {"CONTROL": 496, "TREATMENT": 497} and result["excluded_users"] == 7
    promo = compute_analysis(inputs(rows, policy=policy, exp=experiment("PROMO")))
    assert adjustment(promo, "regional_policy")["byArm"] == {"CONTROL": 0, "TREATMENT": 1}  # only consent


def test_the_digest_is_reproducible_and_changes_with_any_input():
    rows = price_test(n=300)
    first = compute_analysis(inputs(rows))["inputs_digest"]
    assert compute_analysis(inputs(list(rows)))["inputs_digest"] == first
    changed = [replace(rows[0], amounts={"purchase": rows[0].amounts.get("purchase", 0.0) + 0.01},
                       counts={"purchase": 1})] + rows[1:]
    assert compute_analysis(inputs(changed))["inputs_digest"] != first
    assert compute_analysis(inputs(rows, fraud={rows[5].user_id: 0.9}))["inputs_digest"] != first


def test_ratio_and_proportion_metrics_use_their_methods_and_are_never_capped():
    rows = price_test(n=400)
    rows = [replace(r, counts={**r.counts, "refund": 1}) if r.user_id.endswith("7") and r.counts else r for r in rows]
    ratio = compute_analysis(inputs(rows, metric=Metric.REFUND_RATE))
    assert ratio["method"].startswith("ratio_delta") and ratio["winsorize_cap"] is None
    stats = moments_from_rows(rows, Metric.REFUND_RATE)
    expected = stats["TREATMENT"].ratio / stats["CONTROL"].ratio - 1
    assert ratio["raw_percent_change"] == pytest.approx(100 * expected)
    conv = compute_analysis(inputs(rows, metric=Metric.CONVERSION_RATE))
    assert conv["method"].startswith("proportion") and conv["desired_direction"] == "INCREASE"


def test_cuped_is_used_when_a_pre_exposure_covariate_exists():
    rows = [replace(r, pre_exposure={"purchaseAmount": r.amounts.get("purchase", 0.0) * 0.5}) for r in price_test(n=300)]
    assert compute_analysis(inputs(rows))["method"].startswith("cuped")


def test_restriction_lists_keep_only_listed_users_and_refuse_wrong_arms():
    rows = price_test(n=300)
    t_ids = [f"T{i:05d}" for i in range(150)]
    result = compute_analysis(inputs(rows, treatment_user_ids=tuple(t_ids)))
    assert result["sample_sizes"] == {"CONTROL": 300, "TREATMENT": 150}
    with pytest.raises(InvalidArgument) as err:
        compute_analysis(inputs(rows, treatment_user_ids=("C00001", "nobody")))
    assert [f["path"] for f in err.value.details["fields"]] == ["treatmentUserIds.0", "treatmentUserIds.1"]


def test_too_few_users_is_insufficient_data():
    result = compute_analysis(inputs(price_test(n=50)))
    assert result["data_quality"] == "INSUFFICIENT" and result["recommendation"] == "INSUFFICIENT_DATA"


def test_the_stored_model_carries_extra_fields_in_camel_case():
    analysis = build_analysis("a1", "pm@company.com", compute_analysis(inputs(price_test(n=200))))
    stored = analysis.to_firestore()
    assert {"analysisId", "rawPercentChange", "inputsDigest", "uncappedPercentChange", "dataQualityReasons"} <= set(stored)
    assert not any("_" in k for k in stored)


def test_the_kpi_family_is_holm_adjusted_and_decides_significance():
    from offerlab.stats.frequentist import holm_adjust

    exp = experiment()
    kpis = exp.kpis + [exp.kpis[0].model_copy(update={"name": "Conversion", "type": "SECONDARY",
                                                       "metric": "conversion_rate"}),
                       exp.kpis[0].model_copy(update={"name": "Churn", "type": "GUARDRAIL", "metric": "churn_rate"})]
    exp = exp.model_copy(update={"kpis": kpis})
    rows = price_test(n=1500, effect=1.5)
    result = compute_analysis(inputs(rows, exp=exp))
    family = {k["metric"]: k for k in result["kpi_family"]}
    assert set(family) == {"net_ltv", "conversion_rate"}  # GUARDRAIL KPIs are not in the family
    conversion = compute_analysis(inputs(rows, exp=exp, metric=Metric.CONVERSION_RATE))
    raw = [result["p_value"], conversion["p_value"]]
    assert [family["net_ltv"]["holmAdjustedPValue"], family["conversion_rate"]["holmAdjustedPValue"]] == \
        pytest.approx(holm_adjust(raw))
    assert result["holm_adjusted_p_value"] == pytest.approx(holm_adjust(raw)[0])
    assert result["holm_adjusted_p_value"] >= result["p_value"]
    single = compute_analysis(inputs(rows))  # one KPI: the adjustment changes nothing
    assert single["holm_adjusted_p_value"] == pytest.approx(single["p_value"])
