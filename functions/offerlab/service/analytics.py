"""analyze_experiment (API.md §3, Analytics): raw and bias-corrected results, stored once, never updated.

    read (AnalysisSource.row_pages: pages of users, bounded memory) → per-user values and exclusion flags
    → passes over the pages (service/paged_analysis.py: the exact cap, raw/filtered/winsorized sums)
    → SRM, dataQuality, recommendation (domain/analysis_rules.py), always-valid ``sequential`` figures
    → one transaction: create the analysis

The analysis document is created with ``create`` under a new id: nothing ever updates it (rules deny
clients; no function writes it twice); a second call makes a second analysis. Its creation is the event
the ledger records (ANALYSIS_RECORDED, ledger trigger on experimentAnalyses), with ``inputsDigest``: the
sha256 of the canonical inputs (docs/analytics.md), so anyone holding the same data can re-derive it.

Exclusions (each reported ``{type, affectedUserCount, severity, byArm}``, always all five):
fraud (highest fraud-signals score ≥ the threshold), bot (domain/analysis_rules.bot_reason), sandbox
(any sandbox event), spillover (contaminated users), regional_policy (domain/regional_policy.py); then
winsorization of mean metrics at a pooled percentile of the kept non-zero values fixed in the settings
before any data is read (the uncapped result is reported too).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from offerlab import config
from offerlab.domain.actors import Caller, Role
from offerlab.domain import analysis_rules as rules
from offerlab.domain.clock import utcnow
from offerlab.domain.errors import PermissionDenied
from offerlab.domain.money import CurrencyBreakdown
from offerlab.domain.metrics import METRIC_KINDS, Metric, MetricKind
from offerlab.domain.regional_policy import RegionalPolicy
from offerlab.ledger.canonical import canonicalize
from offerlab.service.analysis_source import ARMS, AnalysisSource, UserRow
from offerlab.service.paged_analysis import Pages, digest_line, run_paged
from offerlab.service.ports import Store
from offerlab.store.documents import ExperimentAnalysis, OfferExperiment

EXCLUSION_REASONS = ("fraud", "bot", "sandbox", "spillover", "regional_policy")
DIGEST_FORMAT = "offerlab-analysis-inputs/1"


@dataclass(frozen=True)
class AnalysisSettings:
    """Fixed before the analysis reads any data (a cap or threshold chosen after looking is p-hacking)."""

    fraud_threshold: float = 0.8
    winsorize_percentile: float = 99.0
    alpha: float = 0.05
    policy: RegionalPolicy = field(default_factory=config.regional_policy)
    reporting_currency: str = field(default_factory=config.reporting_currency)
    """The currency every amount was converted into at ingestion (domain/money.py)."""

    def as_dict(self) -> dict[str, Any]:
        return {"fraudThreshold": self.fraud_threshold, "winsorizePercentile": self.winsorize_percentile,
                "alpha": self.alpha, "regionalPolicy": self.policy.as_dict(), "reportingCurrency": self.reporting_currency,
                "botRules": {"paywallViews": rules.BOT_PAYWALL_VIEWS, "eventsPerMinute": rules.BOT_EVENTS_PER_MINUTE,
                             "minEventsForRate": rules.BOT_MIN_EVENTS_FOR_RATE}}


def settings_from_env() -> AnalysisSettings:
    """Deployment settings: OFFERLAB_FRAUD_THRESHOLD, OFFERLAB_WINSORIZE_PERCENTILE, the regional policy
    (offerlab/config.py: OFFERLAB_REGIONAL_POLICY, OFFERLAB_REGIONAL_POLICY_FILE, else the shipped default)."""
    return AnalysisSettings(
        fraud_threshold=float(os.environ.get("OFFERLAB_FRAUD_THRESHOLD", "0.8")),
        winsorize_percentile=float(os.environ.get("OFFERLAB_WINSORIZE_PERCENTILE", "99")),
        policy=config.regional_policy(), reporting_currency=config.reporting_currency(),
    )


# --- inputs --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AnalysisInputs:
    """Everything an analysis depends on, already read; ``compute_analysis`` is a function of this alone."""

    experiment: OfferExperiment
    metric: Metric
    rows: Sequence[UserRow]
    fraud_scores: dict[str, float]  # users whose score is at or above the threshold (others do not matter)
    contaminated: set[str]
    settings: AnalysisSettings
    treatment_user_ids: tuple[str, ...] | None = None
    control_user_ids: tuple[str, ...] | None = None


def exclusion_flags(row: UserRow, inputs: AnalysisInputs) -> dict[str, bool]:
    """Each documented exclusion reason for one user (docs/analytics.md)."""
    score = inputs.fraud_scores.get(row.user_id)
    return {
        "fraud": score is not None and score >= inputs.settings.fraud_threshold,
        "bot": rules.bot_reason(row.counts, row.first_exposed_at, row.last_event_at) is not None,
        "sandbox": row.sandbox,
        "spillover": row.user_id in inputs.contaminated,
        "regional_policy": inputs.settings.policy.excludes(inputs.experiment.offer_type, row.region),
    }


def _jsonable(value: Any) -> Any:
    """Floats that are whole numbers as ints (RFC 8785 prints them the same; the fast path takes ints)."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


# --- the computation ----------------------------------------------------------------------------------


def _finite(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _pct(value: float | None) -> float | None:
    v = _finite(value)
    return None if v is None else 100.0 * v


def _interval(pair: Iterable[float]) -> list[float | None]:
    return [_pct(v) for v in pair]


def family_metrics(experiment: OfferExperiment) -> list[Metric]:
    """The experiment's PRIMARY and SECONDARY KPI metrics (Holm 1979 across them)."""
    return [Metric(name) for name in dict.fromkeys(k.metric for k in experiment.kpis
                                                    if k.type in ("PRIMARY", "SECONDARY")
                                                    and k.metric in Metric._value2member_map_)]


def _digest_header(inputs: AnalysisInputs) -> bytes:
    header = {
        "format": DIGEST_FORMAT, "experimentId": inputs.experiment.experiment_id, "metric": inputs.metric.value,
        "offerType": inputs.experiment.offer_type.value, "treatmentPercentage": inputs.experiment.treatment_percentage,
        "settings": inputs.settings.as_dict(),
        "treatmentUserIds": sorted(inputs.treatment_user_ids) if inputs.treatment_user_ids is not None else None,
        "controlUserIds": sorted(inputs.control_user_ids) if inputs.control_user_ids is not None else None,
    }
    return canonicalize(_jsonable(header))


def compute_analysis(inputs: AnalysisInputs, pages: Pages | None = None) -> dict[str, Any]:
    """The analysis as stored (without id, author and time), from ``inputs`` and the users' ``pages``
    (default: ``inputs.rows`` as one page). Exact per-user computation in passes over the pages with
    bounded memory (service/paged_analysis.py); numpy is imported here, not on a cold start."""
    from offerlab.stats.frequentist import holm_adjust, srm_p_value  # noqa: PLC0415 - scipy.special
    from offerlab.stats.sequential import always_valid_lift  # noqa: PLC0415

    experiment, metric = inputs.experiment, inputs.metric
    pages = breakdown_pages(pages or (lambda: iter([list(inputs.rows)])), breakdown := CurrencyBreakdown(
        inputs.settings.reporting_currency))
    family = family_metrics(experiment)
    threshold = inputs.settings.fraud_threshold

    def score(row: UserRow) -> float | None:
        value = inputs.fraud_scores.get(row.user_id)
        return value if value is not None and value >= threshold else None

    result = run_paged(
        pages, metric=metric, family=family, flags_of=lambda r: exclusion_flags(r, inputs),
        digest_line=lambda r, f: digest_line(r, f, metric, score(r)), digest_header=_digest_header(inputs),
        percentile=inputs.settings.winsorize_percentile, alpha=inputs.settings.alpha,
        treatment_ids=inputs.treatment_user_ids, control_ids=inputs.control_user_ids)

    p_values = [_finite(result.corrected.p_value) if m is metric else _finite(result.family_p_values[m.value])
                for m in family]
    valid = [i for i, p in enumerate(p_values) if p is not None]
    adjusted_all = dict(zip(valid, holm_adjust([p_values[i] for i in valid]))) if valid else {}
    kpi_family = [{"metric": m.value, "pValue": p_values[i], "holmAdjustedPValue": adjusted_all.get(i)}
                  for i, m in enumerate(family)]
    adjusted_p = next((k["holmAdjustedPValue"] for k in kpi_family if k["metric"] == metric.value), None)

    n_raw = dict(result.n_raw)
    n_kept = {arm: int(result.corrected.n_control if arm == "CONTROL" else result.corrected.n_treatment) for arm in ARMS}
    tp = experiment.treatment_percentage
    all_counts = result.all_counts
    srm = srm_p_value(all_counts, {"CONTROL": 100.0 - tp, "TREATMENT": tp}) if sum(all_counts.values()) else None
    excluded = result.excluded
    differential = [{"type": d.type, "pValue": _finite(d.p_value), "flagged": bool(d.flagged), "method": d.method,
                     "excluded": d.excluded, "users": d.users} for d in result.differential_exclusion]
    adjustments = [dict(a) for a in result.adjustments]
    quality = rules.data_quality(n_kept, srm, adjustments, result.differential_exclusion_flagged, excluded,
                                 sum(n_raw.values()), estimate_defined=_finite(result.corrected.relative_lift) is not None)
    direction = rules.desired_direction(metric.value, [k.model_dump() for k in experiment.kpis])
    interval = _interval(result.corrected.ci_relative)
    # Significance within the KPI family uses the Holm-adjusted p-value (Holm 1979): several KPIs are tested.
    decision_p = adjusted_p if adjusted_p is not None else _finite(result.corrected.p_value)
    code, reason = rules.recommendation(quality.level, decision_p, interval, direction, inputs.settings.alpha)
    method = result.corrected.method
    if result.cap is not None:
        method += f"+winsorized_p{inputs.settings.winsorize_percentile:g}_nonzero"
    method += "+exclusions"
    corrected = result.moments["corrected"]
    kind = {MetricKind.MEAN: "mean", MetricKind.PROPORTION: "proportion", MetricKind.RATIO: "ratio"}[METRIC_KINDS[metric]]
    sequential = always_valid_lift(corrected["CONTROL"], corrected["TREATMENT"], kind=kind,
                                   alpha=inputs.settings.alpha).to_dict()
    sequential["pValue"] = _finite(sequential.get("pValue"))
    return {
        "experiment_id": experiment.experiment_id, "metric": metric.value,
        "raw_percent_change": _pct(result.raw.relative_lift),
        "corrected_percent_change": _pct(result.corrected.relative_lift),
        "p_value": _finite(result.corrected.p_value), "confidence_interval": interval,
        "sample_sizes": n_kept, "srm_p_value": _finite(srm) if srm is not None else None,
        "bias_adjustments": adjustments, "data_quality": quality.level, "recommendation": code, "method": method,
        "inputs_digest": result.digest,
        # API.md §11: always-valid figures (a confidence sequence), honest however often this is repeated.
        "sequential": sequential,
        # Beyond API.md: what a reviewer needs to check the correction.
        "recommendation_reason": reason, "data_quality_reasons": list(quality.reasons),
        "desired_direction": direction, "raw_sample_sizes": n_raw, "excluded_users": excluded,
        "raw_p_value": _finite(result.raw.p_value), "raw_confidence_interval": _interval(result.raw.ci_relative),
        "uncapped_percent_change": _pct(result.filtered.relative_lift),
        "uncapped_p_value": _finite(result.filtered.p_value),
        "uncapped_confidence_interval": _interval(result.filtered.ci_relative),
        "winsorize_cap": _finite(result.cap) if result.cap is not None else None,
        "means": {"raw": {"CONTROL": _finite(result.raw.control_mean), "TREATMENT": _finite(result.raw.treatment_mean)},
                  "corrected": {"CONTROL": _finite(result.corrected.control_mean),
                                "TREATMENT": _finite(result.corrected.treatment_mean)}},
        "absolute_change": _finite(result.corrected.absolute_lift),
        "differential_exclusion": differential,
        "differential_exclusion_flagged": bool(result.differential_exclusion_flagged),
        "settings": inputs.settings.as_dict(),
        "holm_adjusted_p_value": adjusted_p, "kpi_family": kpi_family,
        "analysis_passes": result.passes,
        # API.md §13: amounts are in the reporting currency; what each currency contributed, and what was refused.
        "currency_breakdown": breakdown.as_dict(),
    }


def breakdown_pages(pages: Pages, breakdown: CurrencyBreakdown) -> Pages:
    """``pages`` that also add each CONTROL/TREATMENT user's currencies to ``breakdown`` on the first pass
    (no extra read: the analysis reads every page in its first pass anyway)."""
    first = [True]

    def counted():
        if not first[0]:
            yield from pages()
            return
        first[0] = False
        for page in pages():
            for row in page:
                if row.arm in ARMS:
                    breakdown.add(row.arm, row.currencies, row.refused, row.refused_currencies)
            yield page

    return counted


# --- the use case -------------------------------------------------------------------------------------


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def build_analysis(analysis_id: str, actor: str, computed: dict[str, Any]) -> ExperimentAnalysis:
    """The stored model: API.md's fields by name, the extra ones camelCased here (pydantic keeps extra
    fields under the name they are given, and the wire and Firestore are camelCase)."""
    known = set(ExperimentAnalysis.model_fields)
    fields = {k: v for k, v in computed.items() if k in known}
    extra = {_camel(k): v for k, v in computed.items() if k not in known}
    return ExperimentAnalysis(analysis_id=analysis_id, created_by=actor, created_at=utcnow(), **fields, **extra)


def _check_access(caller: Caller, experiment: OfferExperiment) -> None:
    """Analysts and admins analyse any experiment; an experimenter only the experiments they author."""
    if caller.has(Role.ANALYST):
        return
    if caller.has(Role.EXPERIMENTER) and caller.email is not None and caller.email == experiment.author:
        return
    raise PermissionDenied("Only the experiment's author, an analyst or an admin may analyse it.")


def analyze_experiment(store: Store, caller: Caller, experiment_id: str, metric: Metric,
                       treatment_user_ids: Sequence[str] | None = None, control_user_ids: Sequence[str] | None = None,
                       *, source: AnalysisSource | None = None, settings: AnalysisSettings | None = None
                       ) -> ExperimentAnalysis:
    experiment = store.experiments.get(experiment_id)
    _check_access(caller, experiment)
    settings = settings or settings_from_env()
    source = source or store.analysis_source()
    inputs = AnalysisInputs(
        experiment=experiment, metric=metric, rows=(),
        # the flagged populations (bounded by how many users are flagged, not by the experiment's size)
        fraud_scores=source.fraud_scores(None, settings.fraud_threshold),
        contaminated=source.contaminated_users(experiment), settings=settings,
        treatment_user_ids=tuple(treatment_user_ids) if treatment_user_ids is not None else None,
        control_user_ids=tuple(control_user_ids) if control_user_ids is not None else None,
    )
    computed = compute_analysis(inputs, lambda: source.row_pages(experiment))
    analysis = build_analysis(store.analyses.new_id(), caller.actor, computed)
    store.transaction(lambda uow: uow.analyses.create(analysis))
    return analysis
