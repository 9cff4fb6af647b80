"""Per-user contributions to streamed sufficient statistics, winsorized at a cap fixed before launch.

The monitoring pipeline keeps, per experiment × metric × arm (sharded), the shifted sums of
``MomentStats``: n, Σ(y − K_y), Σ(y − K_y)², and for ratio metrics or CUPED Σ(x − K_x), Σ(x − K_x)²,
Σ(x − K_x)(y − K_y). A user's value is a running total that changes as their events arrive (y_old →
y_new), and a user can be excluded later (fraud, bot, spillover, region). Every change is therefore
streamed as the DIFFERENCE between the user's new and old contribution, applied with blind
commutative increments (Firestore ``Increment``; no read-modify-write, no contention on one value):
the per-arm sums are then exactly Σ over kept users of their current contribution, whatever the order
in which deltas arrive, as long as each delta is applied once (the caller's idempotency marker).

Winsorization (Dixon 1960; Kohavi, Tang & Xu 2020 on capping revenue): y ↦ min(y, cap), optionally
max(·, floor), with ONE cap per metric fixed BEFORE launch (configured, or derived from pre-exposure
data by the service), never re-estimated from the experiment's own data: a data-dependent cap would
change every past contribution when it moves (not streamable) and would couple the arms. gbstats
caps at a percentile of the analysed data ("percentile capping", recomputed at each analysis) or at
an absolute value; Statsig winsorizes at a percentile (99.9th by default) computed over the
experiment's data. Both are analysis-time caps; a pre-launch absolute cap is the streaming-compatible
version of gbstats' absolute capping (docs/statistics.md compares them). The cap also gives the
bound that makes the sequential guardrails exact (``sequential.py``).

Pure Python: called per event by the ingestion path.
"""
from __future__ import annotations

import math
from typing import Mapping

STORAGE_KEYS = ("n", "sumY", "sumY2", "sumX", "sumX2", "sumXY")


def capped(value: float, cap: float | None = None, floor: float | None = None) -> float:
    """Winsorize one user's value: min(value, cap), then max(·, floor); None disables a side."""
    if not math.isfinite(value):
        raise ValueError(f"a user's value must be finite, got {value!r}")
    if cap is not None and floor is not None and floor > cap:
        raise ValueError(f"floor {floor} is above cap {cap}")
    if cap is not None:
        if not math.isfinite(cap):
            raise ValueError("cap must be finite (or None)")
        value = min(value, cap)
    if floor is not None:
        value = max(value, floor)
    return value


def user_contribution(
    value: float | None,
    *,
    cap: float | None = None,
    shift: float = 0.0,
    floor: float | None = None,
    x: float | None = None,
    x_cap: float | None = None,
    x_shift: float = 0.0,
    x_floor: float | None = None,
) -> dict[str, float]:
    """One user's contribution to the arm's shifted sums (storage keys of ``MomentStats.to_dict``).

    ``value`` None means "not counted" (not exposed yet, or excluded): every field is 0. With ``x``
    (a ratio's denominator or a CUPED covariate) the x-side and cross terms are included.
    """
    keys = STORAGE_KEYS if x is not None else STORAGE_KEYS[:3]
    if value is None:
        return {k: 0.0 if k != "n" else 0 for k in keys}  # type: ignore[misc]
    d = capped(value, cap, floor) - shift
    out: dict[str, float] = {"n": 1, "sumY": d, "sumY2": d * d}
    if x is not None:
        e = capped(x, x_cap, x_floor) - x_shift
        out.update({"sumX": e, "sumX2": e * e, "sumXY": e * d})
    return out


def delta_contribution(
    old_value: float | None,
    new_value: float | None,
    cap: float | None,
    shift: float,
    *,
    floor: float | None = None,
    old_x: float | None = None,
    new_x: float | None = None,
    x_cap: float | None = None,
    x_shift: float = 0.0,
    x_floor: float | None = None,
) -> dict[str, float]:
    """The additive deltas (Δn, ΔΣ(y−K), ΔΣ(y−K)², and with x: ΔΣ(x−K_x), ΔΣ(x−K_x)², ΔΣ(x−K_x)(y−K))
    that move an arm's sums from counting the user at ``old_value`` to counting them at ``new_value``.

    * first event of a user: ``old_value=None`` (Δn = +1);
    * their total grows: both given (Δn = 0; the capped difference, so a user already above the cap
      adds nothing more);
    * the user is excluded later (fraud, bot, spillover, region): ``new_value=None`` (Δn = −1, their
      whole contribution subtracted); re-admitted: ``old_value=None`` again.
    For a ratio metric pass ``old_x``/``new_x`` too (None together with the value). Keys whose delta is
    exactly 0 are still returned, so the caller may skip them or write them blindly.
    """
    ratio = old_x is not None or new_x is not None
    if ratio and ((old_value is None) != (old_x is None) or (new_value is None) != (new_x is None)):
        raise ValueError("a ratio metric's value and denominator are counted together: give both or neither")
    kwargs = dict(cap=cap, shift=shift, floor=floor, x_cap=x_cap, x_shift=x_shift, x_floor=x_floor)
    if ratio:
        old = user_contribution(old_value, x=old_x if old_x is not None else 0.0, **kwargs)  # type: ignore[arg-type]
        new = user_contribution(new_value, x=new_x if new_x is not None else 0.0, **kwargs)  # type: ignore[arg-type]
        if old_value is None:
            old = {k: 0.0 for k in new}
        if new_value is None:
            new = {k: 0.0 for k in old}
    else:
        old = user_contribution(old_value, **kwargs)  # type: ignore[arg-type]
        new = user_contribution(new_value, **kwargs)  # type: ignore[arg-type]
    return {k: new[k] - old[k] for k in new}


def apply_deltas(sums: Mapping[str, float], deltas: Mapping[str, float]) -> dict[str, float]:
    """What the store's blind increments compute: field-wise addition (for tests and replays)."""
    out = dict(sums)
    for key, value in deltas.items():
        out[key] = out.get(key, 0) + value
    return out
