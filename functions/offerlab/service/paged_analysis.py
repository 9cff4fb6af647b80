"""The exact per-user analysis in passes over pages of users: memory does not grow with the population.

``analyze_experiment`` must see every user (data-dependent percentile cap, exclusions, CUPED), yet hold
only one page of them (AnalysisSource.row_pages). Each pass re-reads the pages in user-id order:

1. every metric's raw and filtered (kept users) sufficient statistics, the exclusion counts per reason
   and arm, the SRM counts, the inputs digest (sha256 streamed in user-id order: the same bytes as
   before), the restriction lists' checks, and — for mean metrics — the exact pooled percentile of the
   kept non-zero values by radix selection (stats/exact_quantile.py: a 65 536-bucket histogram);
2. (only when a cap's two order statistics share a histogram bucket) the values of that one bucket;
3. the winsorized sums of the kept users at the now known cap, and how many were capped.

The cap and every figure are exactly those of the in-memory computation (stats/corrections.py's
definitions: the same order statistics, interpolation and tests, on the same sums); memory is the page,
a few sums per metric and arm, and the histogram (≈1.5 MiB per capped metric), whatever the population.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Sequence

from offerlab.domain.errors import InvalidArgument
from offerlab.domain.metrics import METRIC_KINDS, Metric, MetricKind
from offerlab.domain.user_rows import ARMS, UserRow
from offerlab.stats.sufficient import MomentStats

EXCLUSION_REASONS = ("fraud", "bot", "sandbox", "spillover", "regional_policy")
_KIND = {MetricKind.MEAN: "mean", MetricKind.PROPORTION: "proportion", MetricKind.RATIO: "ratio"}

Pages = Callable[[], Iterator[Sequence[UserRow]]]


class _Sums:
    __slots__ = ("n", "sy", "sy2", "sx", "sx2", "sxy")

    def __init__(self) -> None:
        self.n, self.sy, self.sy2, self.sx, self.sx2, self.sxy = 0, 0.0, 0.0, 0.0, 0.0, 0.0

    def add(self, y: Any, x: Any | None) -> None:
        import numpy as np

        self.n += int(y.size)
        self.sy += float(y.sum())
        self.sy2 += float(np.dot(y, y))
        if x is not None:
            self.sx += float(x.sum())
            self.sx2 += float(np.dot(x, x))
            self.sxy += float(np.dot(x, y))

    def stats(self) -> MomentStats:
        return MomentStats(self.n, self.sy, self.sy2, self.sx, self.sx2, self.sxy)


@dataclass
class _MetricPass:
    metric: Metric
    kind: str
    percentile: float | None
    raw: dict[str, _Sums] = field(default_factory=lambda: {a: _Sums() for a in ARMS})
    filtered: dict[str, _Sums] = field(default_factory=lambda: {a: _Sums() for a in ARMS})
    capped: dict[str, _Sums] = field(default_factory=lambda: {a: _Sums() for a in ARMS})
    capped_users: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ARMS, 0))
    any_covariate: bool = False
    selector: Any = None

    def __post_init__(self) -> None:
        if self.percentile is not None:
            from offerlab.stats.exact_quantile import ExactPercentile  # noqa: PLC0415 - numpy: analyses only

            self.selector = ExactPercentile(self.percentile)


@dataclass
class PagedResult:
    """What compute_analysis turns into the stored analysis (same names as stats.corrections)."""

    raw: Any
    filtered: Any
    corrected: Any
    cap: float | None
    adjustments: list[dict[str, Any]]
    differential_exclusion: list[Any]
    moments: dict[str, dict[str, MomentStats]]
    family_p_values: dict[str, float]
    n_raw: dict[str, int]
    all_counts: dict[str, int]
    excluded: int
    digest: str
    passes: int

    @property
    def differential_exclusion_flagged(self) -> bool:
        return any(t.flagged for t in self.differential_exclusion)


def _arrays(rows: Sequence[UserRow], metric: Metric, kind: str) -> tuple[Any, Any | None]:
    import numpy as np

    values = [r.value(metric) for r in rows]
    y = np.fromiter((v[0] for v in values), dtype=np.float64, count=len(values))
    if kind == "ratio":
        return y, np.fromiter((v[1] for v in values), dtype=np.float64, count=len(values))
    if kind == "mean":
        return y, np.fromiter((r.covariate() for r in rows), dtype=np.float64, count=len(rows))
    return y, None


def run_paged(pages: Pages, *, metric: Metric, family: Iterable[Metric], flags_of: Callable[[UserRow], dict[str, bool]],
              digest_line: Callable[[UserRow, dict[str, bool]], bytes], digest_header: bytes,
              percentile: float, alpha: float, treatment_ids: Sequence[str] | None = None,
              control_ids: Sequence[str] | None = None) -> PagedResult:
    """The passes of the module docstring for ``metric`` and the KPI ``family`` metrics."""
    import numpy as np

    from offerlab.stats.corrections import adjustment_report, differential_exclusion_test  # noqa: PLC0415
    from offerlab.stats.frequentist import analyze_moments  # noqa: PLC0415

    metrics = list(dict.fromkeys([metric, *family]))
    passes = {m: _MetricPass(m, _KIND[METRIC_KINDS[m]], percentile if METRIC_KINDS[m] is MetricKind.MEAN else None)
              for m in metrics}
    wanted = {"TREATMENT": set(treatment_ids) if treatment_ids is not None else None,
              "CONTROL": set(control_ids) if control_ids is not None else None}
    found: dict[str, str] = {}
    reason_counts = {arm: dict.fromkeys(EXCLUSION_REASONS, 0) for arm in ARMS}
    excluded = dict.fromkeys(ARMS, 0)
    n_raw = dict.fromkeys(ARMS, 0)
    all_counts = dict.fromkeys(ARMS, 0)
    digest = hashlib.sha256(digest_header)

    def restricted(page: Sequence[UserRow]) -> list[UserRow]:
        return [r for r in page if r.arm in ARMS and (wanted[r.arm] is None or r.user_id in wanted[r.arm])]

    # pass 1
    for page in pages():
        for r in page:
            if r.arm in ARMS:
                all_counts[r.arm] += 1
                if r.user_id in (wanted["TREATMENT"] or ()) or r.user_id in (wanted["CONTROL"] or ()):
                    found[r.user_id] = r.arm
        rows = restricted(page)
        flags = [flags_of(r) for r in rows]
        for r, f in zip(rows, flags):
            digest.update(digest_line(r, f))
        for arm in ARMS:
            idx = [i for i, r in enumerate(rows) if r.arm == arm]
            arm_rows = [rows[i] for i in idx]
            arm_flags = [flags[i] for i in idx]
            n_raw[arm] += len(arm_rows)
            keep = np.fromiter((not any(f.values()) for f in arm_flags), dtype=bool, count=len(arm_flags))
            excluded[arm] += int(len(arm_flags) - keep.sum())
            for reason in EXCLUSION_REASONS:
                reason_counts[arm][reason] += sum(1 for f in arm_flags if f[reason])
            for acc in passes.values():
                y, x = _arrays(arm_rows, acc.metric, acc.kind)
                acc.raw[arm].add(y, x)
                acc.filtered[arm].add(y[keep], x[keep] if x is not None else None)
                if acc.kind == "mean" and x is not None and bool(np.any(x != 0)):
                    acc.any_covariate = True
                if acc.selector is not None:
                    kept = y[keep]
                    acc.selector.add(kept[kept != 0])
    _check_restriction(treatment_ids, control_ids, found)
    count = 1
    for acc in passes.values():
        if acc.selector is not None:
            acc.selector.end_pass()

    # pass 2 (rarely 3+): finish the selections that need one bucket's values
    while any(acc.selector is not None and not acc.selector.done for acc in passes.values()):
        count += 1
        for page in pages():
            rows = restricted(page)
            flags = [flags_of(r) for r in rows]
            keep = [not any(f.values()) for f in flags]
            kept_rows = [r for r, k in zip(rows, keep) if k]
            for acc in passes.values():
                if acc.selector is not None and not acc.selector.done:
                    y, _ = _arrays(kept_rows, acc.metric, acc.kind)
                    acc.selector.add(y[y != 0])
        for acc in passes.values():
            if acc.selector is not None and not acc.selector.done:
                acc.selector.end_pass()

    # last pass: winsorized sums at the caps
    capped_metrics = [acc for acc in passes.values() if acc.selector is not None and acc.selector.value is not None]
    if capped_metrics:
        count += 1
        for page in pages():
            rows = restricted(page)
            flags = [flags_of(r) for r in rows]
            for arm in ARMS:
                kept_rows = [r for r, f in zip(rows, flags) if r.arm == arm and not any(f.values())]
                for acc in capped_metrics:
                    y, x = _arrays(kept_rows, acc.metric, acc.kind)
                    cap = acc.selector.value
                    acc.capped_users[arm] += int(np.count_nonzero(y > cap))
                    acc.capped[arm].add(np.minimum(y, cap), x)

    total = n_raw["CONTROL"] + n_raw["TREATMENT"]
    reports, tests = [], []
    for reason in EXCLUSION_REASONS:
        test = differential_exclusion_test(reason_counts["CONTROL"][reason], n_raw["CONTROL"],
                                           reason_counts["TREATMENT"][reason], n_raw["TREATMENT"], type_=reason)
        tests.append(test)
        reports.append(adjustment_report(reason, {a: reason_counts[a][reason] for a in ARMS}, total,
                                         force_high=test.flagged))
    tests.append(differential_exclusion_test(excluded["CONTROL"], n_raw["CONTROL"], excluded["TREATMENT"],
                                             n_raw["TREATMENT"]))

    def stage(acc: _MetricPass, part: dict[str, _Sums]) -> dict[str, MomentStats]:
        out = {}
        for arm in ARMS:
            s = part[arm].stats()
            if acc.kind == "mean" and not acc.any_covariate:
                s = MomentStats(s.n, s.sum_y, s.sum_y2)  # Welch, as without a covariate
            elif acc.kind == "proportion":
                s = MomentStats(s.n, s.sum_y, s.sum_y2)
            out[arm] = s
        return out

    def results(acc: _MetricPass) -> tuple[Any, Any, Any, dict[str, dict[str, MomentStats]], float | None, list]:
        moments = {"raw": stage(acc, acc.raw), "filtered": stage(acc, acc.filtered)}
        cap = acc.selector.value if acc.selector is not None else None
        extra = []
        if cap is not None:
            moments["corrected"] = stage(acc, acc.capped)
            extra.append(adjustment_report("winsorization", dict(acc.capped_users), total))
        else:
            moments["corrected"] = moments["filtered"]
        lifts = {k: analyze_moments(v["CONTROL"], v["TREATMENT"], acc.kind, alpha=alpha) for k, v in moments.items()}
        return lifts["raw"], lifts["filtered"], lifts["corrected"], moments, cap, extra

    raw, filtered, corrected, moments, cap, extra = results(passes[metric])
    family_p = {m.value: results(passes[m])[2].p_value for m in family}
    return PagedResult(raw, filtered, corrected, cap, reports + extra, tests, moments, family_p, n_raw, all_counts,
                       excluded["CONTROL"] + excluded["TREATMENT"], digest.hexdigest(), count)


def _check_restriction(treatment_ids: Sequence[str] | None, control_ids: Sequence[str] | None,
                       found: dict[str, str]) -> None:
    """Every listed user must be an exposed user of that arm (INVALID_ARGUMENT naming each bad entry)."""
    problems: list[dict[str, str]] = []
    for arm, ids, path in (("TREATMENT", treatment_ids, "treatmentUserIds"), ("CONTROL", control_ids, "controlUserIds")):
        for index, user_id in enumerate(ids or ()):
            actual = found.get(user_id)
            if actual is None:
                problems.append({"path": f"{path}.{index}", "message": "not an exposed user of this experiment"})
            elif actual != arm:
                problems.append({"path": f"{path}.{index}", "message": f"the user is in {actual}, not {arm}"})
    if set(treatment_ids or ()) & set(control_ids or ()):
        problems.append({"path": "controlUserIds", "message": "a user is listed in both arms"})
    if problems:
        raise InvalidArgument("The request is invalid.", {"fields": problems[:50]})


def digest_line(row: UserRow, flags: dict[str, bool], metric: Metric, fraud_score: float | None) -> bytes:
    """One analysed user's line of the inputs digest (docs/analytics.md inputsDigest)."""
    num, den = row.value(metric)
    line = [row.user_id, row.arm, float(num), float(den), row.covariate(), fraud_score,
            *[bool(flags[r]) for r in EXCLUSION_REASONS]]
    return b"\n" + json.dumps(line, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
