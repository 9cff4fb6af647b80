"""Streamed per-arm sufficient statistics (API.md §11): what one user contributes, and how shards add up.

Layout. ``experimentAggregates/{experimentId}_{arm}_{shard:02d}`` (``SHARDS`` shards per arm, the shard
chosen by hashing the user id) holds blind ``Increment`` sums:

    exposures                       users first exposed (counted when the exposure is created)
    users, keptUsers                users with a totals document; of them, the ones no exclusion removes
    exclusions.{reason}             users flagged for each exclusion reason
    metrics.{metric}.all.{sum}      Σ of every such user's terms  (sum ∈ sumY, sumY2, sumX, sumX2, sumXY)
    metrics.{metric}.kept.{sum}     Σ of the kept users' terms

A user's terms (``stats.streaming.user_contribution``: winsorized at the cap, shifted) are a function of their totals document alone (and of the
experiment's ``AggregateSpec``, fixed at launch). Exactness: ingestion reads the totals document, computes
the new one, and commits — in ONE atomic batch — the new totals (conditional on the document being
unchanged since the read: a compare-and-swap on its update time), the processed marker, and the increments
``terms(new) − terms(old)`` on the user's shard. Every commit moves the user's document from the state its
terms were computed from, so by induction the sum of a user's increments is ``terms(final state)``: a lost
race re-reads and retries, a duplicate's marker fails the whole batch. The shard sums are therefore the
sum over users of their current terms, whatever the delivery order, duplication or concurrency.

Users exposed without any event have no totals document: they count in ``exposures`` only, and the reader
adds their terms (those of the all-zero user) in closed form (``StreamedStatistics``).

Exclusions. fraud and spillover are flags set on the totals document by their signals (through the same
compare-and-swap, so a flag arriving before, between or after a user's events moves them out of the kept
sums exactly once); bot, sandbox and regional_policy are functions of the totals themselves
(domain/analysis_rules.py, domain/regional_policy.py), re-evaluated on every change.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable, Mapping

from offerlab.domain import analysis_rules as rules
from offerlab.domain.money import MoneyRefusal
from offerlab.domain.metrics import METRIC_KINDS, Metric, MetricKind, TotalsDelta, apply_delta, last_event_at, metric_value
from offerlab.domain.regional_policy import RegionalPolicy
from offerlab.stats.streaming import user_contribution
from offerlab.stats.sufficient import MomentStats

SUM_FIELDS = ("sumY", "sumY2", "sumX", "sumX2", "sumXY")

SHARDS = 16
"""Shards per arm. Firestore sustains about one write a second per document (its documented limit for
counters: "Distributed counters"), so 16 shards take ~16 sustained commits a second per arm on that
guideline (far more in bursts: increments never abort); the readers read 3 × SHARDS documents."""

ARMS = ("CONTROL", "TREATMENT", "HOLDOUT")
COMPARED_ARMS = ("CONTROL", "TREATMENT")
EXCLUSION_REASONS = ("fraud", "bot", "sandbox", "spillover", "regional_policy")
FLAGGED_REASONS = ("fraud", "spillover")
REFUSAL_REASONS = tuple(r.value for r in MoneyRefusal)
"""Metric events refused by conversion, counted per reason on the shards (``refused.{reason}``)."""
"""Reasons set by a signal on the totals document (``excludedBy``); the others are derived from totals."""


def shard_of(user_id: str) -> int:
    """The user's shard: a hash, so one user's increments always land on the same document."""
    return int.from_bytes(hashlib.sha256(f"aggregate-shard:{user_id}".encode()).digest()[:4], "big") % SHARDS


def shard_id(experiment_id: str, arm: str, shard: int) -> str:
    return f"{experiment_id}_{arm}_{shard:02d}"


@dataclass(frozen=True)
class MetricStream:
    metric: Metric
    kind: MetricKind
    cap: float | None = None
    """Winsorizing cap of y, fixed before launch (mean metrics only; None: uncapped)."""
    shift_y: float = 0.0
    """K_y of the shifted sums (stats/sufficient.py): the KPI's baselineValue when one is set, else 0."""
    shift_x: float = 0.0

    def terms(self, value: tuple[float, float]) -> dict[str, float]:
        """A user's terms of the five sums (the engine's per-user contribution, without its n)."""
        y, x = value
        out = user_contribution(y, cap=self.cap, shift=self.shift_y, x=x, x_shift=self.shift_x)
        return {k: float(out[k]) for k in SUM_FIELDS}

    def moments(self, n: int, sums: Mapping[str, float]) -> MomentStats:
        return MomentStats(int(n), *(float(sums.get(k, 0.0)) for k in SUM_FIELDS),
                           shift_y=self.shift_y, shift_x=self.shift_x)

    @property
    def support(self) -> tuple[float, float] | None:
        """The range of a user's (capped) value, for the engine's exact guardrail tests: proportions
        (0, 1); arpu (0, cap); net_ltv can go below 0 (refunds of purchases made before exposure), so
        (−inf, cap); ratio numerators are counts (the engine's default)."""
        if self.kind is MetricKind.PROPORTION:
            return (0.0, 1.0)
        if self.kind is MetricKind.MEAN:
            upper = self.cap if self.cap is not None else math.inf
            return (-math.inf if self.metric is Metric.NET_LTV else 0.0, upper)
        return None

    def value(self, totals: Mapping[str, Any]) -> tuple[float, float]:
        """(y, x): the metric's numerator and, for ratio metrics, its denominator; for mean and proportion
        metrics x is the CUPED covariate (pre-exposure purchase amount, Deng et al. 2013)."""
        y, x = metric_value(totals, self.metric)
        if self.kind is not MetricKind.RATIO:
            x = float((totals.get("preExposure") or {}).get("purchaseAmount", 0.0) or 0.0)
        return y, x


@dataclass(frozen=True)
class AggregateSpec:
    """What an experiment streams, fixed at launch (KPIs, guardrails, caps and settings never change
    while it runs: update_experiment refuses then)."""

    experiment_id: str
    offer_type: Any
    holdout_cohort_id: str | None
    streams: tuple[MetricStream, ...]
    fraud_threshold: float
    policy: RegionalPolicy

    def stream(self, metric: Metric | str) -> MetricStream:
        name = metric.value if isinstance(metric, Metric) else metric
        return next(s for s in self.streams if s.metric.value == name)


def make_spec(experiment_id: str, offer_type: Any, holdout_cohort_id: str | None, caps: Mapping[str, float],
              fraud_threshold: float, policy: RegionalPolicy, baselines: Mapping[str, float] | None = None
              ) -> AggregateSpec:
    """Every metric of API.md §7 is streamed (snapshots and analyses want all six; an event only touches
    the few whose value changes). Caps apply to mean metrics only; the shift of a mean or proportion
    metric is its KPI's baseline value (fixed before launch: Chan, Golub & LeVeque 1983's shifted data)."""
    baselines = baselines or {}

    def stream(m: Metric) -> MetricStream:
        kind = METRIC_KINDS[m]
        cap = float(caps[m.value]) if m.value in caps and kind is MetricKind.MEAN else None
        shift = float(baselines.get(m.value, 0.0)) if kind is not MetricKind.RATIO else 0.0
        if cap is not None:
            shift = min(shift, cap)
        return MetricStream(m, kind, cap=cap, shift_y=shift)

    streams = tuple(stream(m) for m in Metric)
    return AggregateSpec(experiment_id, offer_type, holdout_cohort_id, streams, float(fraud_threshold), policy)


# --- one user's terms ----------------------------------------------------------------------------------


def exclusion_flags(totals: Mapping[str, Any] | None, spec: AggregateSpec) -> dict[str, bool]:
    """The exclusion reasons of a user with these totals (the rules of docs/analytics.md, as analyses
    apply them)."""
    if totals is None:
        return dict.fromkeys(EXCLUSION_REASONS, False)
    flagged = totals.get("excludedBy") or {}
    counts = totals.get("counts") or {}
    first = totals.get("firstExposedAt")
    return {
        "fraud": bool(flagged.get("fraud")),
        "bot": rules.bot_reason(counts, first if isinstance(first, datetime) else None,
                                last_event_at(totals)) is not None,
        "sandbox": bool(totals.get("sandbox")) or bool(totals.get("sandboxEvents")),
        "spillover": bool(flagged.get("spillover")),
        "regional_policy": spec.policy.excludes(spec.offer_type, totals.get("lastRegion")),
    }


def user_terms(totals: Mapping[str, Any] | None, spec: AggregateSpec) -> dict[str, float]:
    """The flat field paths and values one user adds to their shard (zero fields omitted)."""
    if totals is None:
        return {}
    flags = exclusion_flags(totals, spec)
    kept = not any(flags.values())
    out: dict[str, float] = {"users": 1, "keptUsers": 1 if kept else 0}
    for reason, on in flags.items():
        if on:
            out[f"exclusions.{reason}"] = 1
    for reason, count in (totals.get("refused") or {}).items():
        if reason in REFUSAL_REASONS and isinstance(count, (int, float)):
            out[f"refused.{reason}"] = count  # events refused by conversion (domain/money.py): counted, not summed
    for stream in spec.streams:
        terms = stream.terms(stream.value(totals))
        for name in SUM_FIELDS:
            value = terms[name]
            if value:
                out[f"metrics.{stream.metric.value}.all.{name}"] = value
                if kept:
                    out[f"metrics.{stream.metric.value}.kept.{name}"] = value
    return {k: v for k, v in out.items() if v}


def terms_delta(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None, spec: AggregateSpec) -> dict[str, float]:
    """``user_terms(new) − user_terms(old)``, non-zero entries only: the shard increments of one change."""
    before, after = user_terms(old, spec), user_terms(new, spec)
    out = {}
    for key in before.keys() | after.keys():
        diff = after.get(key, 0) - before.get(key, 0)
        if diff:
            out[key] = diff
    return out


# --- one change of a user's totals --------------------------------------------------------------------


@dataclass(frozen=True)
class UserChange:
    """One change of one (experiment, user) totals document: an event's delta, or an exclusion flag."""

    experiment_id: str
    user_id: str
    arm: str
    identity: Mapping[str, Any]
    """Fields set on the document (experimentId, userId, arm, firstExposedAt, updatedAt)."""
    delta: TotalsDelta | None = None
    flag: str | None = None
    """A FLAGGED_REASONS entry to set (idempotent)."""
    spec: AggregateSpec | None = None
    """None: the experiment streams nothing (no increments)."""


@dataclass(frozen=True)
class PlannedChange:
    doc: dict[str, Any] | None
    """The totals document after the change; None when the change changes nothing (a flag set before)."""
    increments: dict[str, float] = field(default_factory=dict)
    shard: str = ""
    shard_identity: dict[str, Any] = field(default_factory=dict)


def plan_change(change: UserChange, old: Mapping[str, Any] | None, initial_flags: Iterable[str] = ()) -> PlannedChange:
    """The document after ``change`` and the shard increments that keep the sums exact.

    ``old`` is the document as read (None: none yet); ``initial_flags`` are the exclusion reasons known
    for a user whose document is created now (a fraud score or a contamination recorded before the user's
    first event)."""
    if change.delta is None and change.flag is None:
        raise ValueError("a change needs an event delta or a flag")
    if old is not None and change.delta is None and (old.get("excludedBy") or {}).get(change.flag):
        return PlannedChange(None)
    new = apply_delta(old or {}, change.delta) if change.delta is not None else dict(old or {})
    if old is None:
        new = {**new, **change.identity}
        flags = {f: True for f in initial_flags if f in FLAGGED_REASONS}
    else:
        new = {**new, **{k: v for k, v in change.identity.items() if k not in ("arm", "firstExposedAt")}}
        flags = dict(old.get("excludedBy") or {})
    if change.flag is not None:
        flags[change.flag] = True
    if flags:
        new["excludedBy"] = flags
    if change.spec is None:
        return PlannedChange(new)
    shard = shard_of(change.user_id)
    return PlannedChange(
        new, terms_delta(old, new, change.spec), shard_id(change.experiment_id, change.arm, shard),
        {"experimentId": change.experiment_id, "arm": change.arm, "shard": shard})


# --- reading the shards -------------------------------------------------------------------------------


def _get(doc: Mapping[str, Any], path: str) -> float:
    node: Any = doc
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return 0.0
        node = node[part]
    return float(node) if isinstance(node, (int, float)) else 0.0


@dataclass(frozen=True)
class StreamedStatistics:
    """The sums of one experiment's shards, per arm: exposures, users, exclusions and the metric sums."""

    exposures: dict[str, int]
    users: dict[str, int]
    kept_users: dict[str, int]
    exclusions: dict[str, dict[str, int]]
    sums: dict[str, dict[str, dict[str, dict[str, float]]]]
    """arm → metric → "all" | "kept" → sum field → value."""
    documents: int
    refused: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REFUSAL_REASONS, 0))
    """Metric events refused by conversion (unknown currency, no rate), per reason, all arms."""

    @classmethod
    def from_shards(cls, docs: Iterable[Mapping[str, Any]]) -> StreamedStatistics:
        exposures = dict.fromkeys(ARMS, 0)
        users = dict.fromkeys(ARMS, 0)
        kept = dict.fromkeys(ARMS, 0)
        exclusions = {arm: dict.fromkeys(EXCLUSION_REASONS, 0) for arm in ARMS}
        sums = {arm: {m.value: {"all": dict.fromkeys(SUM_FIELDS, 0.0), "kept": dict.fromkeys(SUM_FIELDS, 0.0)}
                      for m in Metric} for arm in ARMS}
        count = 0
        refused = dict.fromkeys(REFUSAL_REASONS, 0)
        for doc in docs:
            count += 1
            arm = doc.get("arm")
            if arm not in exposures:
                continue
            for reason in REFUSAL_REASONS:
                refused[reason] += int(_get(doc, f"refused.{reason}"))
            exposures[arm] += int(_get(doc, "exposures"))
            users[arm] += int(_get(doc, "users"))
            kept[arm] += int(_get(doc, "keptUsers"))
            for reason in EXCLUSION_REASONS:
                exclusions[arm][reason] += int(_get(doc, f"exclusions.{reason}"))
            for m in Metric:
                for part in ("all", "kept"):
                    target = sums[arm][m.value][part]
                    for name in SUM_FIELDS:
                        target[name] += _get(doc, f"metrics.{m.value}.{part}.{name}")
        return cls(exposures, users, kept, exclusions, sums, count, refused)

    def zero_users(self, arm: str) -> int:
        """Exposed users without a totals document (no event yet): all-zero values, kept."""
        return max(self.exposures[arm] - self.users[arm], 0)

    def moments(self, spec: AggregateSpec, metric: Metric | str, arm: str, *, kept: bool = True) -> MomentStats:
        """The arm's ``MomentStats`` of ``metric`` over every exposed user (``kept``: minus the excluded)."""
        stream = spec.stream(metric)
        name = stream.metric.value
        part = "kept" if kept else "all"
        zeros = self.zero_users(arm)
        zero_terms = stream.terms((0.0, 0.0))
        total = {k: self.sums[arm][name][part][k] + zeros * zero_terms[k] for k in SUM_FIELDS}
        n = zeros + (self.kept_users[arm] if kept else self.users[arm])
        return stream.moments(n, total)

    def arm_moments(self, spec: AggregateSpec, metrics: Iterable[Metric | str], *, kept: bool = True
                    ) -> dict[str, dict[str, MomentStats]]:
        """{metric: {CONTROL, TREATMENT: MomentStats}} as the guardrail tests take them."""
        out = {}
        for metric in metrics:
            name = metric.value if isinstance(metric, Metric) else metric
            out[name] = {arm: self.moments(spec, name, arm, kept=kept) for arm in COMPARED_ARMS}
        return out


def recompute(rows: Iterable[tuple[str, Mapping[str, Any] | None]], spec: AggregateSpec
              ) -> dict[str, dict[str, float]]:
    """The shard fields summed per arm straight from per-user totals ``(arm, totals)``: what the streamed
    sums must equal (the reconciliation and the tests compare the two)."""
    out: dict[str, dict[str, float]] = {arm: {} for arm in ARMS}
    for arm, totals in rows:
        acc = out.setdefault(arm, {})
        for key, value in user_terms(totals, spec).items():
            acc[key] = acc.get(key, 0.0) + value
    return out


def recompute_scales(rows: Iterable[tuple[str, Mapping[str, Any] | None]], spec: AggregateSpec
                     ) -> dict[str, dict[str, float]]:
    """Σ|terms| per arm and field: the scale of each sum's rounding error."""
    out: dict[str, dict[str, float]] = {arm: {} for arm in ARMS}
    for arm, totals in rows:
        acc = out.setdefault(arm, {})
        for key, value in user_terms(totals, spec).items():
            acc[key] = acc.get(key, 0.0) + abs(value)
    return out


def streamed_fields(docs: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """The shard fields (as ``recompute`` names them) summed per arm from the shard documents."""
    out: dict[str, dict[str, float]] = {arm: {} for arm in ARMS}

    def walk(node: Mapping[str, Any], prefix: str, acc: dict[str, float]) -> None:
        for key, value in node.items():
            path = f"{prefix}{key}"
            if isinstance(value, Mapping):
                walk(value, path + ".", acc)
            elif isinstance(value, (int, float)) and not isinstance(value, bool) and (
                    path in ("users", "keptUsers") or path.startswith(("exclusions.", "metrics."))):
                acc[path] = acc.get(path, 0.0) + value

    for doc in docs:
        arm = doc.get("arm")
        if arm in out:
            walk(doc, "", out[arm])
    return out


def max_relative_difference(streamed: Mapping[str, Mapping[str, float]], recomputed: Mapping[str, Mapping[str, float]],
                            scales: Mapping[str, Mapping[str, float]] | None = None) -> tuple[float, str | None]:
    """The largest |streamed − recomputed| / scale over every field, and where it is. The scale is the
    field's Σ|terms| when ``scales`` gives it (the sum's condition: a sum of large terms that cancels to
    ~0 carries their rounding error, not its own), else max(|streamed|, |recomputed|); below 1e-9 the
    difference is taken absolutely (two zeros agree)."""
    worst, where = 0.0, None
    for arm in set(streamed) | set(recomputed):
        a, b = streamed.get(arm, {}), recomputed.get(arm, {})
        given = (scales or {}).get(arm, {})
        for key in set(a) | set(b):
            x, y = float(a.get(key, 0.0)), float(b.get(key, 0.0))
            scale = max(abs(x), abs(y), float(given.get(key, 0.0)))
            diff = abs(x - y) / scale if scale > 1e-9 else abs(x - y)
            if diff > worst:
                worst, where = diff, f"{arm}.{key}"
    return worst, where
