"""Bias corrections on per-user arrays: exclusions, winsorization, and the corrected analysis.

The Firestore side builds, per arm, one float64 array of per-user metric values and one boolean
array per exclusion reason (same length, same user order), then calls ``corrected_analysis``.

* Exclusions (fraud, bot/abnormal usage, sandbox purchases, spillover-contaminated, regional policy)
  are combined with a bitwise OR into one mask per arm, once. Each reason gets a report
  ``{type, affectedUserCount, severity, byArm: {CONTROL, TREATMENT}}`` (API.md ``biasAdjustments``).
* Differential exclusion: if one arm loses a different SHARE of its users than the other, excluding
  them biases the comparison (the treatment may cause the flag, e.g. a discount attracting fraud).
  A 2×2 test of excluded/kept × arm flags it at p < ``DIFFERENTIAL_EXCLUSION_P`` = 0.01.
* Winsorization: values above a cap are set to the cap (Dixon 1960; the standard outlier treatment
  for revenue in online experiments, Kohavi, Tang & Xu 2020, "Trustworthy Online Controlled
  Experiments", on capping to improve sensitivity). The cap is ONE number from the POOLED
  arms at a percentile fixed before the analysis: per-arm caps would cap the arms differently and
  bias the lift; a percentile chosen after looking is a garden of forking paths. Upper tail only.

Severity rule (per adjustment, share = affected users / users of both arms before exclusion):
LOW below 1 %, MEDIUM from 1 % to below 5 %, HIGH from 5 %; an exclusion whose differential test
flags is HIGH whatever its share, because it biases the comparison however small it is.

Speed (benchmarks/bench_stats.py): the corrected analysis of 10M users runs in well under the time
of one ``scipy.stats.ttest_ind(equal_var=False)`` on the same arrays, because
  * the flags are OR-ed into one mask with in-place bitwise ops, counted with ``count_nonzero``;
  * raw sums are one ``sum`` and one BLAS ``dot`` (Σy²) per arm, no temporaries;
  * only the kept NON-ZERO values are compacted (revenue is zero-inflated: ~90 % of users have 0,
    they add nothing to Σy or Σy² and only their count matters);
  * the exact cap is an order statistic found with ``np.partition`` (introselect, O(n), no sort and
    no sampling) on each arm's compacted copy, then on the two arms' tails only;
  * capped sums are the filtered sums corrected by the few values above the cap, which the
    partition has already gathered in each arm's tail: no second pass over the data.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, Mapping, Sequence

import numpy as np
from scipy import special

from offerlab.stats.frequentist import LiftResult, analyze_moments, welch_test
from offerlab.stats.sufficient import MetricKind, MomentStats

CONTROL, TREATMENT = "CONTROL", "TREATMENT"

DIFFERENTIAL_EXCLUSION_P = 0.01
"""Flag an exclusion as differential between arms when its 2×2 test gives p below this."""
SEVERITY_MEDIUM_SHARE = 0.01
SEVERITY_HIGH_SHARE = 0.05
FISHER_MIN_EXPECTED = 5.0
"""Below this expected count in any cell the chi-square approximation is poor (Cochran 1954): use
Fisher's exact test instead."""

EXCLUSION_TYPES = ("fraud", "bot", "sandbox", "spillover", "regional_policy")
"""The reasons the service is expected to pass (any other key works the same way)."""

Severity = Literal["LOW", "MEDIUM", "HIGH"]


# --------------------------------------------------------------------------------------------
# exclusions


def severity(affected: int, total: int) -> Severity:
    """The documented share rule: < 1 % LOW, < 5 % MEDIUM, otherwise HIGH."""
    share = affected / total if total else 0.0
    if share < SEVERITY_MEDIUM_SHARE:
        return "LOW"
    if share < SEVERITY_HIGH_SHARE:
        return "MEDIUM"
    return "HIGH"


def adjustment_report(type_: str, by_arm: Mapping[str, int], total_users: int,
                      force_high: bool = False) -> dict[str, object]:
    """``{type, affectedUserCount, severity, byArm}`` as stored in ``biasAdjustments``."""
    affected = int(sum(by_arm.values()))
    return {
        "type": type_,
        "affectedUserCount": affected,
        "severity": "HIGH" if force_high else severity(affected, total_users),
        "byArm": {arm: int(count) for arm, count in by_arm.items()},
    }


def exclusion_mask(flags: Mapping[str, np.ndarray], size: int) -> np.ndarray:
    """One boolean mask, True = excluded: the OR of every flag, built in place in one buffer."""
    mask = np.zeros(size, dtype=bool)
    for name, flag in flags.items():
        flag = np.asarray(flag)
        if flag.shape != (size,):
            raise ValueError(f"flag {name!r} has shape {flag.shape}, expected ({size},)")
        np.bitwise_or(mask, flag if flag.dtype == bool else flag.astype(bool), out=mask)
    return mask


@dataclass(frozen=True, slots=True)
class DifferentialExclusion:
    """Is a reason excluding a different share of users in the two arms?"""

    type: str
    excluded: dict[str, int]
    users: dict[str, int]
    p_value: float
    flagged: bool
    method: str
    """"chi2" (Pearson, no continuity correction), "fisher" (small counts) or "none" (nothing
    excluded)."""


def differential_exclusion_test(excluded_control: int, n_control: int, excluded_treatment: int, n_treatment: int,
                                *, type_: str = "any") -> DifferentialExclusion:
    """2×2 test of (excluded, kept) × (control, treatment).

    Pearson's chi-square with 1 df when every expected count is ≥ 5: X² = N(ad − bc)² / (r₁r₂c₁c₂)
    (Pearson 1900; the 2×2 shortcut formula), p = chi2.sf(X², 1). Otherwise Fisher's exact test
    (Fisher 1922). Comparing SHARES, it is valid for any allocation (50/50 or 90/10).
    """
    a, b = excluded_control, n_control - excluded_control
    c, d = excluded_treatment, n_treatment - excluded_treatment
    if min(a, b, c, d) < 0:
        raise ValueError("excluded counts must lie between 0 and the arm size")
    excluded = {CONTROL: int(a), TREATMENT: int(c)}
    users = {CONTROL: int(n_control), TREATMENT: int(n_treatment)}
    rows, cols, total = (a + c, b + d), (n_control, n_treatment), n_control + n_treatment
    if rows[0] == 0 or rows[1] == 0 or cols[0] == 0 or cols[1] == 0:
        return DifferentialExclusion(type_, excluded, users, 1.0, False, "none")
    expected_min = min(rows) * min(cols) / total
    if expected_min >= FISHER_MIN_EXPECTED:
        statistic = total * float(a * d - b * c) ** 2 / (float(rows[0]) * rows[1] * cols[0] * cols[1])
        p_value, method = float(special.chdtrc(1, statistic)), "chi2"
    else:
        from scipy.stats import fisher_exact  # rare path; scipy.stats is slow to import

        p_value, method = float(fisher_exact([[a, b], [c, d]]).pvalue), "fisher"
    return DifferentialExclusion(type_, excluded, users, p_value, p_value < DIFFERENTIAL_EXCLUSION_P, method)


def _flag_counts(flags: Mapping[str, np.ndarray]) -> dict[str, int]:
    return {name: int(np.count_nonzero(flag)) for name, flag in flags.items()}


def exclusion_reports(flags_control: Mapping[str, np.ndarray], flags_treatment: Mapping[str, np.ndarray],
                      n_control: int, n_treatment: int) -> tuple[list[dict[str, object]], list[DifferentialExclusion]]:
    """Per reason: the ``biasAdjustments`` report and its differential-exclusion test."""
    _check_same_reasons(flags_control, flags_treatment)
    counts_c, counts_t = _flag_counts(flags_control), _flag_counts(flags_treatment)
    return _reports_from_counts(counts_c, counts_t, n_control, n_treatment)


def _reports_from_counts(counts_c: Mapping[str, int], counts_t: Mapping[str, int], n_control: int,
                         n_treatment: int) -> tuple[list[dict[str, object]], list[DifferentialExclusion]]:
    reports, tests = [], []
    for name in counts_c:
        test = differential_exclusion_test(counts_c[name], n_control, counts_t[name], n_treatment, type_=name)
        tests.append(test)
        reports.append(adjustment_report(name, {CONTROL: counts_c[name], TREATMENT: counts_t[name]},
                                         n_control + n_treatment, force_high=test.flagged))
    return reports, tests


def _check_same_reasons(flags_control: Mapping[str, np.ndarray], flags_treatment: Mapping[str, np.ndarray]) -> None:
    if set(flags_control) != set(flags_treatment):
        raise ValueError("both arms need the same exclusion reasons: "
                         f"{sorted(flags_control)} != {sorted(flags_treatment)}")


# --------------------------------------------------------------------------------------------
# winsorization


def _linear_rank(size: int, percentile: float) -> tuple[int, int, float]:
    """Order statistics (lo, hi) and weight for a percentile, numpy's default "linear" method
    (Hyndman & Fan 1996, definition 7): h = (N − 1)·p/100, value = x_lo + (h − lo)(x_hi − x_lo)."""
    if not 0.0 <= percentile <= 100.0:
        raise ValueError(f"percentile must lie in [0, 100], got {percentile}")
    h = (size - 1) * percentile / 100.0
    lo = min(int(math.floor(h)), size - 1)
    return lo, min(lo + 1, size - 1), h - lo


def _select_from_tails(parts: Sequence[np.ndarray], rank: int, rank_next: int) -> tuple[float, float, list[int]]:
    """Values at ascending pooled ranks ``rank`` and ``rank_next`` (= rank or rank + 1) of the
    concatenation of ``parts``, without concatenating everything.

    Each part is partitioned IN PLACE (the caller owns it) so that its top m = total − rank values
    sit in its tail; the pooled answer is among those tails, which are small for a high percentile.
    Returns the two values and, per part, the start index of its tail (everything before it is ≤
    the part's tail minimum).
    """
    total = sum(p.size for p in parts)
    m = total - rank  # how many pooled values have ascending rank ≥ rank
    starts, tails = [], []
    for part in parts:
        start = max(part.size - m, 0)
        if 0 < start:
            part.partition(start)
        starts.append(start)
        tails.append(part[start:])
    candidates = np.concatenate(tails)
    k = candidates.size - m
    candidates.partition(k)
    value = float(candidates[k])
    value_next = value if rank_next == rank else float(candidates[k + 1:].min())
    return value, value_next, starts


def winsorize_cap(values_pooled: np.ndarray | Sequence[np.ndarray], percentile: float) -> float:
    """The cap: the ``percentile`` of the POOLED values of both arms (an array, or one array per arm),
    exactly as ``np.percentile(np.concatenate(arms), percentile)`` (linear interpolation), found with
    ``np.partition`` instead of a sort. The inputs are not modified."""
    parts = [values_pooled] if isinstance(values_pooled, np.ndarray) else list(values_pooled)
    copies = [np.array(p, dtype=np.float64, copy=True).ravel() for p in parts]
    total = sum(c.size for c in copies)
    if total == 0:
        raise ValueError("no values to compute a cap from")
    lo, hi, weight = _linear_rank(total, percentile)
    v_lo, v_hi, _ = _select_from_tails(copies, lo, hi)
    return v_lo + weight * (v_hi - v_lo)


@dataclass(frozen=True)
class Winsorized:
    cap: float
    values: dict[str, np.ndarray]
    """Per arm, a new array with every value above the cap set to the cap."""
    capped_by_arm: dict[str, int]
    """Per arm, how many users had a value above the cap."""


def winsorize(y_by_arm: Mapping[str, np.ndarray], percentile: float) -> Winsorized:
    """Cap every arm at the pooled ``percentile`` (``winsorize_cap``) and count capped users per arm."""
    cap = winsorize_cap([np.asarray(v) for v in y_by_arm.values()], percentile)
    values, capped = {}, {}
    for arm, y in y_by_arm.items():
        y = np.asarray(y, dtype=np.float64)
        capped[arm] = int(np.count_nonzero(y > cap))
        values[arm] = np.minimum(y, cap)
    return Winsorized(cap, values, capped)


# --------------------------------------------------------------------------------------------
# the corrected analysis


@dataclass(frozen=True)
class CorrectedAnalysis:
    raw: LiftResult
    """Every user, no correction."""
    filtered: LiftResult
    """Excluded users removed, values not capped."""
    corrected: LiftResult
    """Excluded users removed and values winsorized at ``cap`` (equal to ``filtered`` when no cap)."""
    cap: float | None
    adjustments: list[dict[str, object]]
    """``biasAdjustments``: one report per exclusion reason, then "winsorization" when capped."""
    differential_exclusion: list[DifferentialExclusion]
    """Per reason, then "any" (the combined mask)."""
    moments: dict[str, dict[str, MomentStats]] = field(default_factory=dict)
    """{"raw"|"filtered"|"corrected": {CONTROL, TREATMENT: MomentStats}} for storage and re-use."""

    @property
    def differential_exclusion_flagged(self) -> bool:
        return any(t.flagged for t in self.differential_exclusion)


@dataclass
class _ArmPass:
    """One arm after the single pass: raw and filtered moments, the kept non-zero values."""

    raw: MomentStats
    filtered: MomentStats
    nonzero_kept: np.ndarray  # our own compacted copy: safe to partition in place
    flag_counts: dict[str, int]
    excluded: int


def _arm_pass(y: np.ndarray, flags: Mapping[str, np.ndarray]) -> _ArmPass:
    """Raw and filtered moments of one arm in a few streaming passes, no float64 temporaries.

    Zeros add nothing to Σy and Σy², so only the kept NON-ZERO values are compacted (the cap needs
    them anyway); the filtered n is the kept count. The raw sums are one ``sum`` and one BLAS
    ``dot`` over y, cheaper than compacting the excluded values.
    """
    n = y.size
    raw = MomentStats(n, float(y.sum()), float(np.dot(y, y)))
    flag_counts = _flag_counts(flags)
    kept_nonzero = np.not_equal(y, 0.0)
    excluded = 0
    if flags:
        mask = exclusion_mask(flags, n)
        excluded = int(np.count_nonzero(mask))
        if excluded:
            np.logical_not(mask, out=mask)  # now: kept
            np.logical_and(kept_nonzero, mask, out=kept_nonzero)
    nonzero_kept = y[kept_nonzero]
    filtered = MomentStats(n - excluded, float(nonzero_kept.sum()), float(np.dot(nonzero_kept, nonzero_kept)))
    return _ArmPass(raw, filtered, nonzero_kept, flag_counts, excluded)


def _pooled_cap(arms: Sequence[_ArmPass], percentile: float, ignore_zeros: bool) -> tuple[float, list[int]]:
    """The pooled percentile of the kept values (zeros included unless ``ignore_zeros``), from the
    compacted non-zero values plus the known number of zeros: in ascending order the pooled kept
    values are [negatives, zeros, positives], so a rank maps onto the non-zero values directly."""
    parts = [a.nonzero_kept for a in arms]
    nonzero = sum(p.size for p in parts)
    zeros = 0 if ignore_zeros else sum(a.filtered.n for a in arms) - nonzero
    total = nonzero + zeros
    if total == 0:
        return math.nan, [0] * len(parts)
    lo, hi, weight = _linear_rank(total, percentile)
    negatives = sum(int(np.count_nonzero(p < 0)) for p in parts) if zeros else 0

    def nonzero_rank(rank: int) -> int | None:  # None: that order statistic is one of the zeros
        if rank < negatives:
            return rank
        if rank < negatives + zeros:
            return None
        return rank - zeros

    r_lo, r_hi = nonzero_rank(lo), nonzero_rank(hi)
    if r_lo is None and r_hi is None:
        return 0.0, [0] * len(parts)
    if r_lo is None:  # lo is the last zero, hi the first positive
        v_hi, _, starts = _select_from_tails(parts, r_hi, r_hi)  # type: ignore[arg-type]
        return weight * v_hi, starts
    if r_hi is None:  # lo is the last negative, hi the first zero
        v_lo, _, starts = _select_from_tails(parts, r_lo, r_lo)
        return v_lo * (1 - weight), starts
    v_lo, v_hi, starts = _select_from_tails(parts, r_lo, r_hi)
    return v_lo + weight * (v_hi - v_lo), starts


def _capped_moments(arm: _ArmPass, cap: float, start: int) -> tuple[MomentStats, int]:
    """Filtered moments with every value above ``cap`` replaced by ``cap``: Σy and Σy² corrected by
    the few values above the cap only, which lie in the partitioned tail part[start:]."""
    part = arm.nonzero_kept
    region = part[start:] if start and part[start] <= cap else part  # part[:start] ≤ part[start] ≤ cap
    over = region[region > cap]
    capped = int(over.size)
    sum_y = arm.filtered.sum_y - float(over.sum()) + capped * cap
    sum_y2 = arm.filtered.sum_y2 - float(np.dot(over, over)) + capped * cap * cap
    if cap < 0:  # a negative cap also caps the users at 0 (counted or not in the percentile)
        zeros = arm.filtered.n - part.size
        capped += zeros
        sum_y, sum_y2 = sum_y + zeros * cap, sum_y2 + zeros * cap * cap
    return MomentStats(arm.filtered.n, sum_y, sum_y2), capped


def corrected_analysis(
    y_control: np.ndarray,
    y_treatment: np.ndarray,
    flags_control: Mapping[str, np.ndarray],
    flags_treatment: Mapping[str, np.ndarray],
    cap_percentile: float | None = 99.0,
    *,
    cap_ignore_zeros: bool = True,
    alpha: float = 0.05,
    kind: MetricKind = "mean",
    x_control: np.ndarray | None = None,
    x_treatment: np.ndarray | None = None,
) -> CorrectedAnalysis:
    """Raw, filtered (exclusions) and corrected (exclusions + winsorization) lifts, with reports.

    ``y_*``: per-user metric values (float64, finite), ``flags_*``: {reason: bool array aligned with
    y}, the same reasons in both arms (see ``EXCLUSION_TYPES``). ``cap_percentile``: fixed before
    the analysis (None: no cap); the cap is computed on the KEPT users of both arms pooled, so that
    excluded bots and fraudsters do not set it. ``cap_ignore_zeros`` (default True): the percentile
    is taken over the non-zero values only (GrowthBook's "ignore zeros" percentile capping): revenue
    is zero-inflated, and with 99 % non-payers the 99th percentile of all users is 0, which would
    erase the metric. Pass False for the plain percentile of every kept value. Zeros are capped like
    any value if the cap is negative.

    ``kind`` "mean" (default; the fast path) uses Welch, or CUPED when covariates ``x_*`` (the
    pre-exposure value per user) are given. "proportion" (0/1 values) and "ratio" (``x_*`` = per-user
    denominators, delta method) are never winsorized: capping counts at a percentile would mostly
    zero out rare events.

    Suggested mapping onto API.md's analysis: rawPercentChange = 100·raw.relative_lift,
    correctedPercentChange = 100·corrected.relative_lift, pValue = corrected.p_value,
    confidenceInterval = 100·corrected.ci_relative, biasAdjustments = adjustments.
    """
    y_c = np.asarray(y_control, dtype=np.float64)
    y_t = np.asarray(y_treatment, dtype=np.float64)
    _check_same_reasons(flags_control, flags_treatment)
    if kind != "mean" or x_control is not None or x_treatment is not None:
        return _corrected_analysis_with_x(y_c, y_t, flags_control, flags_treatment,
                                          cap_percentile if kind == "mean" else None,
                                          cap_ignore_zeros, alpha, kind, x_control, x_treatment)

    arms = (_arm_pass(y_c, flags_control), _arm_pass(y_t, flags_treatment))
    control, treatment = arms
    if not (math.isfinite(control.raw.sum_y2) and math.isfinite(treatment.raw.sum_y2)):
        raise ValueError("y contains NaN or infinite values")  # free check: NaN/inf poison Σy²
    reports, tests = _reports_from_counts(control.flag_counts, treatment.flag_counts, y_c.size, y_t.size)
    tests.append(differential_exclusion_test(control.excluded, y_c.size, treatment.excluded, y_t.size))

    raw = welch_test(control.raw, treatment.raw, alpha=alpha)
    filtered = welch_test(control.filtered, treatment.filtered, alpha=alpha)
    moments = {"raw": {CONTROL: control.raw, TREATMENT: treatment.raw},
               "filtered": {CONTROL: control.filtered, TREATMENT: treatment.filtered}}
    if cap_percentile is None or control.filtered.n + treatment.filtered.n == 0:
        moments["corrected"] = moments["filtered"]
        return CorrectedAnalysis(raw, filtered, filtered, None, reports, tests, moments)

    cap, starts = _pooled_cap(arms, cap_percentile, cap_ignore_zeros)
    if math.isnan(cap):  # every kept value is zero and zeros are ignored: nothing to cap
        moments["corrected"] = moments["filtered"]
        return CorrectedAnalysis(raw, filtered, filtered, None, reports, tests, moments)
    capped_c, count_c = _capped_moments(control, cap, starts[0])
    capped_t, count_t = _capped_moments(treatment, cap, starts[1])
    reports.append(adjustment_report("winsorization", {CONTROL: count_c, TREATMENT: count_t},
                                     y_c.size + y_t.size))
    moments["corrected"] = {CONTROL: capped_c, TREATMENT: capped_t}
    corrected = welch_test(capped_c, capped_t, alpha=alpha)
    return CorrectedAnalysis(raw, filtered, corrected, cap, reports, tests, moments)


def _corrected_analysis_with_x(
    y_c: np.ndarray, y_t: np.ndarray,
    flags_control: Mapping[str, np.ndarray], flags_treatment: Mapping[str, np.ndarray],
    cap_percentile: float | None, cap_ignore_zeros: bool, alpha: float,
    kind: MetricKind,
    x_control: np.ndarray | None, x_treatment: np.ndarray | None,
) -> CorrectedAnalysis:
    """The straightforward path for proportions, ratios and CUPED (second array per user)."""
    if (x_control is None) != (x_treatment is None):
        raise ValueError("give x for both arms or for neither")
    if kind == "ratio" and x_control is None:
        raise ValueError("a ratio metric needs the per-user denominators x_control and x_treatment")
    x_c = None if x_control is None else np.asarray(x_control, dtype=np.float64)
    x_t = None if x_treatment is None else np.asarray(x_treatment, dtype=np.float64)
    keep_c = ~exclusion_mask(flags_control, y_c.size)
    keep_t = ~exclusion_mask(flags_treatment, y_t.size)
    reports, tests = exclusion_reports(flags_control, flags_treatment, y_c.size, y_t.size)
    tests.append(differential_exclusion_test(y_c.size - int(np.count_nonzero(keep_c)), y_c.size,
                                             y_t.size - int(np.count_nonzero(keep_t)), y_t.size))

    def stats(y: np.ndarray, x: np.ndarray | None, keep: np.ndarray | None = None) -> MomentStats:
        if keep is None:
            return MomentStats.from_arrays(y, x)
        return MomentStats.from_arrays(y[keep], None if x is None else x[keep])

    moments = {
        "raw": {CONTROL: stats(y_c, x_c), TREATMENT: stats(y_t, x_t)},
        "filtered": {CONTROL: stats(y_c, x_c, keep_c), TREATMENT: stats(y_t, x_t, keep_t)},
    }
    cap = None
    if cap_percentile is not None:
        kept_c, kept_t = y_c[keep_c], y_t[keep_t]
        pooled = [kept_c[kept_c != 0], kept_t[kept_t != 0]] if cap_ignore_zeros else [kept_c, kept_t]
        if sum(p.size for p in pooled):
            cap = winsorize_cap(pooled, cap_percentile)
            by_arm = {CONTROL: int(np.count_nonzero(kept_c > cap)), TREATMENT: int(np.count_nonzero(kept_t > cap))}
            reports.append(adjustment_report("winsorization", by_arm, y_c.size + y_t.size))
            np.minimum(kept_c, cap, out=kept_c)  # kept_* are our own copies: cap them in place
            np.minimum(kept_t, cap, out=kept_t)
            moments["corrected"] = {CONTROL: stats(kept_c, None if x_c is None else x_c[keep_c]),
                                    TREATMENT: stats(kept_t, None if x_t is None else x_t[keep_t])}
    moments.setdefault("corrected", moments["filtered"])
    results = {stage: analyze_moments(by_arm[CONTROL], by_arm[TREATMENT], kind, alpha=alpha)
               for stage, by_arm in moments.items()}
    return CorrectedAnalysis(results["raw"], results["filtered"], results["corrected"], cap, reports, tests, moments)
