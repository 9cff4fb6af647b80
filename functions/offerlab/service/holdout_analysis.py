"""analyze_holdout (API.md §10): the holdout's read-out, stored once and never updated.

    the cohort's program exposures (members vs everyone else; docs/program.md §5) and their totals
    → the pure computation of analyze_experiment (service/analytics.compute_analysis: the same exclusions,
      winsorizing, CUPED) with the holdout as CONTROL and the program as TREATMENT
    → the shipped experiments the cohort covers, each with its own measured lift and a shrunk lift
      (stats/shrinkage.py: empirical Bayes toward 0, τ² by method of moments over every experiment the
      cohort covered; Efron & Morris 1975) → one transaction: create the read-out

The read-out is an ``experimentAnalyses`` document (``kind`` HOLDOUT, ``cohortId``, no ``experimentId``):
the ledger's analysis trigger records it on the cohort's chain ``cohort:<cohortId>``.
"""
from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any, Sequence

from offerlab.domain.actors import Caller
from offerlab.domain.clock import utcnow
from offerlab.domain.errors import FailedPrecondition
from offerlab.domain.holdouts import Scope
from offerlab.domain.metrics import Metric
from offerlab.domain.program import program_id
from offerlab.domain.regional_policy import RegionalPolicy
from offerlab.domain.types import CohortStatus, ExperimentStatus, OfferType
from offerlab.service.analysis_source import AnalysisSource
from offerlab.service.analytics import AnalysisInputs, AnalysisSettings, compute_analysis, settings_from_env
from offerlab.service.ports import Store
from offerlab.store.documents import (
    HoldoutAnalysis, HoldoutCohort, Hypothesis, Kpi, OfferExperiment, ShippedLift,
)

# Every experiment the cohort covered and whose run is over: the pool the shipped winners were chosen from.
POOL = (ExperimentStatus.COMPLETED, ExperimentStatus.KILLED, ExperimentStatus.SHIP_PENDING_APPROVAL,
        ExperimentStatus.SHIPPED)
SHRINKAGE_METHOD = "empirical_bayes_normal_shrinkage_to_0(tau2=method_of_moments; Efron&Morris1975)"
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _program_experiment(cohort: HoldoutCohort, metric: Metric, offer_type: OfferType) -> OfferExperiment:
    """The program described as an experiment for ``compute_analysis``: CONTROL = the holdout (expected
    share ``cohort.percentage``), TREATMENT = everyone else exposed. Never stored."""
    return OfferExperiment(
        experiment_id=program_id(cohort.cohort_id), name=f"program of {cohort.name}",
        hypothesis=Hypothesis(statement="everything shipped in scope vs the status quo"),
        kpis=[Kpi(name=metric.value, type="PRIMARY", metric=metric.value, direction="INCREASE")], guardrails=[],
        holdout_cohort_id=cohort.cohort_id, treatment_percentage=100.0 - cohort.percentage, offer_type=offer_type,
        offer_config={}, planned_start_date=cohort.frozen_at or _EPOCH, planned_end_date=utcnow(), approvers=[],
        author=cohort.created_by, salt=cohort.salt, status=ExperimentStatus.RUNNING, created_at=cohort.created_at)


def _settings_for(scope: Scope, settings: AnalysisSettings) -> tuple[AnalysisSettings, OfferType]:
    """One offer type in scope: its regional rules apply. A mixed program has no single offer type, so only
    the consent exclusions (which hold for every type) apply."""
    if len(scope.offer_types) == 1:
        return settings, OfferType(next(iter(scope.offer_types)))
    return replace(settings, policy=RegionalPolicy(consent_excluded=settings.policy.consent_excluded)), OfferType.PROMO


def _lift(source: AnalysisSource, experiment: OfferExperiment, metric: Metric,
          settings: AnalysisSettings) -> tuple[float | None, float | None]:
    """An experiment's corrected TREATMENT-vs-CONTROL lift and its standard error, percent."""
    from offerlab.stats.shrinkage import se_from_interval  # noqa: PLC0415 - stats: not on cold start

    rows = source.user_rows(experiment)
    if not rows:
        return None, None
    computed = compute_analysis(AnalysisInputs(
        experiment=experiment, metric=metric, rows=rows,
        fraud_scores=source.fraud_scores((r.user_id for r in rows), settings.fraud_threshold),
        contaminated=source.contaminated_users(experiment), settings=settings))
    lift = computed["corrected_percent_change"]
    lo, hi = computed["confidence_interval"]
    if lift is None or lo is None or hi is None:
        return None, None
    return lift, se_from_interval(lo, hi)


def shipped_lifts(pool: Sequence[OfferExperiment], cohort_id: str, measured: dict[str, tuple[float | None, float | None]]
                  ) -> tuple[list[ShippedLift], float]:
    """The shipped experiments of ``pool`` covering the cohort, with measured and shrunk lifts; τ² over the
    whole pool (stats/shrinkage.py). A shipped CONTROL arm is the status quo: lift 0 by definition."""
    from offerlab.stats.shrinkage import estimate_tau2, shrink  # noqa: PLC0415

    known = [(eid, y, s) for eid, (y, s) in sorted(measured.items()) if y is not None and s is not None]
    tau2 = estimate_tau2([y for _, y, _ in known], [s for _, _, s in known])
    out = []
    for experiment in pool:
        ship = experiment.ship
        if experiment.status is not ExperimentStatus.SHIPPED or ship is None or cohort_id not in ship.covering_cohort_ids:
            continue
        y, s = measured.get(experiment.experiment_id, (None, None))
        if ship.arm == "CONTROL":
            y, s = 0.0, 0.0
        shrunk = shrink([y], [s], tau2).shrunk[0] if y is not None and s is not None else None
        out.append(ShippedLift(experiment_id=experiment.experiment_id, arm=ship.arm, shipped_at=ship.shipped_at,
                               experiment_lift_percent=y, experiment_lift_se_percent=s, shrunk_lift_percent=shrunk))
    return out, tau2


def analyze_holdout(store: Store, caller: Caller, cohort_id: str, metric: Metric, *,
                    source: AnalysisSource | None = None, settings: AnalysisSettings | None = None) -> HoldoutAnalysis:
    cohort = store.cohorts.get(cohort_id)  # NOT_FOUND
    if cohort.status is CohortStatus.DRAFT:
        raise FailedPrecondition("A DRAFT cohort holds nobody out: there is nothing to read out until it is frozen.",
                                 {"status": cohort.status.value})
    scope = Scope.of(cohort.scope.placements, cohort.scope.offer_types)
    settings, offer_type = _settings_for(scope, settings or settings_from_env())
    source = source or store.analysis_source()
    program = _program_experiment(cohort, metric, offer_type)
    rows = source.program_rows(cohort_id)
    computed = compute_analysis(AnalysisInputs(
        experiment=program, metric=metric, rows=rows,
        fraud_scores=source.fraud_scores((r.user_id for r in rows), settings.fraud_threshold),
        contaminated=source.contaminated_users(program), settings=settings))

    pool = [e for e in store.experiments.with_status(POOL)
            if cohort_id in e.covering_cohort_ids or (e.ship is not None and cohort_id in e.ship.covering_cohort_ids)]
    measured = {e.experiment_id: _lift(source, e, metric, settings) for e in pool}
    shipped, tau2 = shipped_lifts(pool, cohort_id, measured)

    means = computed["means"]["corrected"]
    analysis = HoldoutAnalysis(
        analysis_id=store.analyses.new_id(), cohort_id=cohort_id, metric=metric.value,
        holdout_users=computed["sample_sizes"]["CONTROL"], comparison_users=computed["sample_sizes"]["TREATMENT"],
        holdout_mean=means["CONTROL"], comparison_mean=means["TREATMENT"],
        lift_percent=computed["corrected_percent_change"], confidence_interval=computed["confidence_interval"],
        p_value=computed["p_value"], shipped_experiments=shipped,
        method=f"{computed['method']}; shipped lifts: {SHRINKAGE_METHOD}", inputs_digest=computed["inputs_digest"],
        created_by=caller.actor, created_at=utcnow(),
        **_extras(computed, tau2, len(pool), scope),
    )
    store.transaction(lambda uow: uow.analyses.create_holdout(analysis))
    return analysis


def _extras(computed: dict[str, Any], tau2: float, pool_size: int, scope: Scope) -> dict[str, Any]:
    """Beyond API.md: what a reviewer needs to check the read-out (stored camelCased, like analyses)."""
    return {
        "rawLiftPercent": computed["raw_percent_change"], "rawSampleSizes": computed["raw_sample_sizes"],
        "srmPValue": computed["srm_p_value"], "biasAdjustments": computed["bias_adjustments"],
        "dataQuality": computed["data_quality"], "absoluteChange": computed["absolute_change"],
        "shrinkage": {"tau2": tau2 if math.isfinite(tau2) else None, "pooledExperiments": pool_size},
        "scope": scope.as_dict(), "settings": computed["settings"],
    }
