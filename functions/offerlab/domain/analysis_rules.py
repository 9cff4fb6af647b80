"""The documented rules of analyses and monitoring (docs/analytics.md), pure: no Firebase, no numpy.

* Bot / abnormal-usage rules on one user's totals (``bot_reason``).
* ``data_quality``: HIGH | MEDIUM | LOW | INSUFFICIENT from sample sizes, SRM and the exclusions.
* ``recommendation``: what to do with the corrected result, given the metric's desired direction.
* ``monitor_health``: HEALTHY | WARNING | CRITICAL of a running experiment.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Mapping, Sequence

from offerlab.domain.types import ViolationAction

# --- bots and abnormal usage ---------------------------------------------------------------------------

BOT_PAYWALL_VIEWS = 300
"""Paywall views in the experiment window at or above which a user is treated as automated. A person
looking at a paywall a few times a day for a month stays far below; scrapers and test rigs do not."""
BOT_EVENTS_PER_MINUTE = 5.0
BOT_MIN_EVENTS_FOR_RATE = 30
"""More than 5 events a minute, sustained over at least 30 events between first exposure and the last
event: purchases, renewals and paywall views do not happen that fast for a human user."""


def bot_reason(counts: Mapping[str, int], first_exposed_at: datetime | None, last_event_at: datetime | None) -> str | None:
    """Why this user's usage is treated as a bot / abnormal ("paywall_views", "event_rate"), or None."""
    if int(counts.get("paywall_view", 0) or 0) >= BOT_PAYWALL_VIEWS:
        return "paywall_views"
    events = sum(int(v or 0) for v in counts.values())
    if events >= BOT_MIN_EVENTS_FOR_RATE and first_exposed_at is not None and last_event_at is not None:
        minutes = max((last_event_at - first_exposed_at).total_seconds() / 60.0, 1.0)
        if events / minutes > BOT_EVENTS_PER_MINUTE:
            return "event_rate"
    return None


# --- data quality --------------------------------------------------------------------------------------

MIN_USERS_PER_ARM = 100
"""Below this many analysed users in either arm the interval is not trusted at all (INSUFFICIENT)."""
SOLID_USERS_PER_ARM = 1_000
SRM_ALERT_P = 0.001  # the same threshold as stats.frequentist.SRM_ALERT_P (Fabijan et al. 2019)
LOW_EXCLUDED_SHARE = 0.20
MEDIUM_EXCLUDED_SHARE = 0.05


@dataclass(frozen=True)
class Quality:
    level: str
    reasons: tuple[str, ...]


def data_quality(sample_sizes: Mapping[str, int], srm_p: float | None, adjustments: Sequence[Mapping[str, Any]],
                 differential_exclusion: bool, excluded_users: int, total_users: int,
                 estimate_defined: bool = True) -> Quality:
    """The documented rule, first match wins:

    INSUFFICIENT  an arm has < 100 analysed users, or the metric is undefined (e.g. a zero baseline)
    LOW           SRM (p < 0.001), a differential exclusion between arms, or ≥ 20 % of users excluded
    MEDIUM        an arm has < 1 000 users, ≥ 5 % excluded, or any adjustment of HIGH severity
    HIGH          otherwise
    """
    smallest = min(sample_sizes.get("CONTROL", 0), sample_sizes.get("TREATMENT", 0))
    if smallest < MIN_USERS_PER_ARM:
        return Quality("INSUFFICIENT", (f"fewer than {MIN_USERS_PER_ARM} users in an arm",))
    if not estimate_defined:
        return Quality("INSUFFICIENT", ("the metric is undefined for this data",))
    share = excluded_users / total_users if total_users else 0.0
    low = []
    if srm_p is not None and srm_p < SRM_ALERT_P:
        low.append("sample ratio mismatch")
    if differential_exclusion:
        low.append("exclusions differ between arms")
    if share >= LOW_EXCLUDED_SHARE:
        low.append(f"{share:.0%} of users excluded")
    if low:
        return Quality("LOW", tuple(low))
    medium = []
    if smallest < SOLID_USERS_PER_ARM:
        medium.append(f"fewer than {SOLID_USERS_PER_ARM} users in an arm")
    if share >= MEDIUM_EXCLUDED_SHARE:
        medium.append(f"{share:.0%} of users excluded")
    if any(a.get("severity") == "HIGH" for a in adjustments):
        medium.append("a HIGH-severity adjustment")
    if medium:
        return Quality("MEDIUM", tuple(medium))
    return Quality("HIGH", ())


# --- recommendation ------------------------------------------------------------------------------------

DESIRED_DIRECTION = {
    "net_ltv": "INCREASE", "arpu": "INCREASE", "conversion_rate": "INCREASE", "trial_conversion_rate": "INCREASE",
    "churn_rate": "DECREASE", "refund_rate": "DECREASE",
}


def desired_direction(metric: str, kpis: Iterable[Mapping[str, Any]]) -> str:
    """The KPI's own direction for this metric (PRIMARY first) when it says INCREASE/DECREASE, else the
    metric's natural one."""
    ordered = sorted(kpis, key=lambda k: {"PRIMARY": 0, "SECONDARY": 1}.get(str(k.get("type")), 2))
    for kpi in ordered:
        if kpi.get("metric") == metric and kpi.get("direction") in ("INCREASE", "DECREASE"):
            return str(kpi["direction"])
    return DESIRED_DIRECTION.get(metric, "INCREASE")


def recommendation(quality: str, p_value: float | None, interval: Sequence[float | None], direction: str,
                   alpha: float = 0.05) -> tuple[str, str]:
    """(code, reason). Codes: INSUFFICIENT_DATA, INVESTIGATE_DATA_QUALITY, SHIP_TREATMENT, KEEP_CONTROL,
    NO_SIGNIFICANT_DIFFERENCE. Significance is the corrected two-sided p < alpha with the corrected
    interval entirely on one side of zero."""
    if quality == "INSUFFICIENT":
        return "INSUFFICIENT_DATA", "Keep collecting: too few users for a trustworthy interval."
    if quality == "LOW":
        return "INVESTIGATE_DATA_QUALITY", "Do not decide on this result: the data quality is LOW."
    lo, hi = (interval[0], interval[1]) if len(interval) == 2 else (None, None)
    if p_value is None or lo is None or hi is None or any(map(_nan, (p_value, lo, hi))) or p_value >= alpha:
        return "NO_SIGNIFICANT_DIFFERENCE", "No significant difference at this sample size."
    improved = lo > 0 if direction == "INCREASE" else hi < 0
    worsened = hi < 0 if direction == "INCREASE" else lo > 0
    if improved:
        return "SHIP_TREATMENT", "The corrected effect is significant in the desired direction."
    if worsened:
        return "KEEP_CONTROL", "The corrected effect is significant in the wrong direction."
    return "NO_SIGNIFICANT_DIFFERENCE", "The corrected interval includes no change."


def _nan(value: float) -> bool:
    return isinstance(value, float) and math.isnan(value)


# --- monitoring ----------------------------------------------------------------------------------------


def monitor_health(srm_p: float | None, guardrails: Sequence[Mapping[str, Any]], exposures: Mapping[str, int],
                   status: str) -> tuple[str, list[str]]:
    """CRITICAL: a guardrail credibly breached, or SRM (p < 0.001). WARNING: a guardrail's point estimate
    beyond its threshold without yet being credible, or a running experiment with < 100 exposures in an
    arm. HEALTHY otherwise. Returns (health, issues)."""
    critical, warning = [], []
    for g in guardrails:
        if g.get("breached"):
            critical.append(f"guardrail {g.get('kpiName')} ({g.get('metric')}) breached its threshold")
        elif g.get("pointBeyondThreshold"):
            warning.append(f"guardrail {g.get('kpiName')} ({g.get('metric')}) trends beyond its threshold")
    if srm_p is not None and srm_p < SRM_ALERT_P:
        critical.append(f"sample ratio mismatch (p = {srm_p:.2g})")
    if status == "RUNNING" and min(exposures.get("CONTROL", 0), exposures.get("TREATMENT", 0)) < MIN_USERS_PER_ARM:
        warning.append(f"fewer than {MIN_USERS_PER_ARM} exposures in an arm")
    if critical:
        return "CRITICAL", critical + warning
    if warning:
        return "WARNING", warning
    return "HEALTHY", []


def strongest_action(actions: Iterable[str]) -> ViolationAction | None:
    """KILL over PAUSE over ALERT: one check acts once, with the strongest action any violation asks for."""
    ranked = [ViolationAction(a) for a in actions if a in ViolationAction._value2member_map_]
    return max(ranked, key=lambda a: a.rank) if ranked else None
