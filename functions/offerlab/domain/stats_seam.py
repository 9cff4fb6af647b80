"""Temporary seam between the streamed statistics and the statistics engine (``offerlab.stats``).

The engine is being extended with the per-user contribution of a user to the summable (shifted) sums,
the relative and GUARDRAIL-KPI guardrail tests, always-valid lift intervals and a sequential SRM test.
Until those land, the monitoring code calls them only through the functions below, each of which names the
engine function that replaces it. Nothing here is a second statistics implementation: the bodies delegate
to what ``offerlab.stats`` already has (``guardrail_test``, ``always_valid_difference``, ``srm_p_value``)
or are the plain sum of powers that defines a sufficient statistic.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from offerlab.stats.sequential import always_valid_difference, guardrail_test
from offerlab.stats.sufficient import MomentStats

SUM_FIELDS = ("sumY", "sumY2", "sumX", "sumX2", "sumXY")


def contribution(value: tuple[float, float] | None, cap: float | None, shift_y: float = 0.0,
                 shift_x: float = 0.0) -> dict[str, float]:
    """One user's terms of the per-arm sums (stats/sufficient.py ``MomentStats``): y capped at ``cap``
    (winsorized), then Σ(y − K_y), Σ(y − K_y)², Σ(x − K_x), Σ(x − K_x)², Σ(x − K_x)(y − K_y).
    ``value`` None: the user contributes nothing (not counted yet, or removed).

    Replaced by ``stats.sufficient.delta_contribution`` (old, new, cap, shift) once the engine has it."""
    if value is None:
        return dict.fromkeys(SUM_FIELDS, 0.0)
    y, x = float(value[0]), float(value[1])
    if cap is not None and y > cap:
        y = cap
    dy, dx = y - shift_y, x - shift_x
    return {"sumY": dy, "sumY2": dy * dy, "sumX": dx, "sumX2": dx * dx, "sumXY": dx * dy}


def delta_contribution(old: tuple[float, float] | None, new: tuple[float, float] | None, cap: float | None,
                       shift_y: float = 0.0, shift_x: float = 0.0) -> dict[str, float]:
    """What replacing a user's ``old`` value by ``new`` adds to the sums (new − old term by term)."""
    before, after = contribution(old, cap, shift_y, shift_x), contribution(new, cap, shift_y, shift_x)
    return {k: after[k] - before[k] for k in SUM_FIELDS}


def moment_stats(n: int, sums: dict[str, float], shift_y: float = 0.0, shift_x: float = 0.0) -> MomentStats:
    """``MomentStats`` from streamed sums. Shifts are 0 until the engine's shifted ``MomentStats`` lands
    (it then takes ``shift_y``/``shift_x`` as fields)."""
    if shift_y or shift_x:
        raise ValueError("shifted sums need the engine's shifted MomentStats")
    return MomentStats(int(n), float(sums.get("sumY", 0.0)), float(sums.get("sumY2", 0.0)),
                       float(sums.get("sumX", 0.0)), float(sums.get("sumX2", 0.0)), float(sums.get("sumXY", 0.0)))


# --- guardrail tests ------------------------------------------------------------------------------------

BadDirection = Literal["higher", "lower"]


def relative_guardrail(control: MomentStats, treatment: MomentStats, *, max_relative_delta: float,
                       bad_direction: BadDirection, kind: str, alpha: float) -> Any:
    """TREATMENT worse than CONTROL by more than ``max_relative_delta`` percent, always valid (API.md §11).

    Replaced by ``stats.sequential.relative_guardrail_test``; the mode is the engine's
    ``relative_change`` guardrail."""
    if bad_direction == "higher":
        threshold, direction = max_relative_delta / 100.0, "max"
    else:
        threshold, direction = -max_relative_delta / 100.0, "min"
    return guardrail_test(control, treatment, threshold=threshold, direction=direction, mode="relative_change",
                          kind=kind, alpha=alpha)  # type: ignore[arg-type]


def kpi_guardrail_sides(threshold: float, direction: str) -> list[tuple[float, str, float]]:
    """(relative threshold, test direction, share of alpha) of a GUARDRAIL KPI (API.md §11): the bad side
    is opposite its direction; MAINTAIN watches both sides, each at alpha/2 (Bonferroni: the union of two
    level-alpha/2 always-valid tests is level alpha). Replaced by ``stats.sequential.kpi_guardrail_params``."""
    if direction == "INCREASE":
        return [(-threshold, "min", 1.0)]
    if direction == "DECREASE":
        return [(threshold, "max", 1.0)]
    return [(threshold, "max", 0.5), (-threshold, "min", 0.5)]


def kpi_guardrail_side(control: MomentStats, treatment: MomentStats, *, threshold: float, direction: str,
                       kind: str, alpha: float) -> Any:
    """One side of a GUARDRAIL KPI: ``stats.sequential.guardrail_test`` in mode ``relative_change``."""
    return guardrail_test(control, treatment, threshold=threshold, direction=direction, mode="relative_change",
                          kind=kind, alpha=alpha)  # type: ignore[arg-type]


# --- always-valid figures of an analysis ---------------------------------------------------------------


@dataclass(frozen=True)
class SequentialFigures:
    confidence_interval: tuple[float | None, float | None]
    """Percent of the relative lift, like the fixed-horizon ``confidenceInterval``."""
    p_value: float
    absolute_interval: tuple[float | None, float | None]
    method: str

    def to_dict(self) -> dict[str, Any]:
        return {"confidenceInterval": list(self.confidence_interval), "pValue": self.p_value,
                "absoluteInterval": list(self.absolute_interval), "method": self.method}


def _finite(v: float) -> float | None:
    return v if math.isfinite(v) else None


def always_valid_figures(control: MomentStats, treatment: MomentStats, *, kind: str, alpha: float) -> SequentialFigures:
    """API.md §11 ``sequential{confidenceInterval, pValue}`` from the engine's two-sided confidence sequence
    on treatment − control (``stats.sequential.always_valid_difference``). The relative interval here is
    the absolute one divided by the control estimate (control treated as known); the engine's
    ``always_valid_lift`` (Fieller inversion, CUPED-adjusted) replaces this."""
    result = always_valid_difference(control, treatment, kind=kind, alpha=alpha)  # type: ignore[arg-type]
    lo, hi = result.confidence_sequence
    base = control.ratio if kind == "ratio" else control.mean
    if base and math.isfinite(base) and base > 0:
        rel = (_finite(100.0 * lo / base), _finite(100.0 * hi / base))
    else:
        rel = (None, None)
    return SequentialFigures(rel, float(result.p_value), (_finite(lo), _finite(hi)),
                             "always_valid_difference/control_mean")
