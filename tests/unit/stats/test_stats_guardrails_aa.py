"""A/A simulations of every guardrail (mode × direction × metric kind), at one look per 100 users
and at one look every 5 simulated minutes, plus power when a limit is really crossed.

Vectorised: ``guardrail_log_e_batch`` runs the very kernels of ``guardrail_test`` on arrays of
looks (checked equal to the scalar path below). A false-alarm rate passes when the observed number
of alarmed experiments is not significantly above alpha: P(Binomial(SIMS, alpha) ≥ observed) ≥ 0.01
(a one-sided binomial bound; with 500 experiments it allows at most 36 alarms, 7.2 %).
"""
import math

import numpy as np
import pytest
from scipy import stats as sps
from scipy.special import ndtr

from offerlab.stats.sequential import (
    always_valid_lift,
    always_valid_lift_batch,
    guardrail_log_e_batch,
    guardrail_test,
    kpi_guardrail_params,
    kpi_guardrail_test,
    relative_guardrail_params,
)
from offerlab.stats.sufficient import MomentStats

ALPHA = 0.05
SIMS, LOOKS, BATCH = 500, 200, 100
MU, SIGMA, PAYERS = math.log(40.0), 1.5, 0.05
CAP = math.exp(MU + 2.326 * SIGMA)  # the payers' 99th percentile, fixed before launch


def capped_lognormal_mean(cap: float, payers: float = PAYERS, mu: float = MU, sigma: float = SIGMA) -> float:
    """E[min(Y, cap)] of the zero-inflated lognormal, in closed form (no simulation)."""
    z = (math.log(cap) - mu) / sigma
    return payers * (math.exp(mu + sigma**2 / 2) * float(ndtr(z - sigma)) + cap * float(ndtr(-z)))


def not_above_alpha(alarms: int, sims: int = SIMS, alpha: float = ALPHA) -> bool:
    return float(sps.binom.sf(alarms - 1, sims, alpha)) >= 0.01


def looks_of(values: np.ndarray, x: np.ndarray | None = None, shift: float = 0.0) -> MomentStats:
    """(SIMS, LOOKS, BATCH) per-user values → MomentStats of arrays (SIMS, LOOKS), cumulative."""
    d = values - shift
    c = lambda a: np.cumsum(a.sum(axis=2), axis=1)  # noqa: E731
    n = BATCH * np.arange(1, values.shape[1] + 1)
    if x is None:
        return MomentStats(n, c(d), c(d * d), shift_y=shift)
    return MomentStats(n, c(d), c(d * d), c(x), c(x * x), c(x * d), shift_y=shift)


def revenue(rng, size, scale=1.0, cap=None):
    y = np.where(rng.random(size) < PAYERS, np.exp(rng.normal(MU, SIGMA, size)), 0.0) * scale
    return y if cap is None else np.minimum(y, cap)


def refunds(rng, size, rate=0.02):
    purchases = rng.poisson(rng.gamma(0.8, 2.5, size))
    return rng.binomial(purchases, rate).astype(float), purchases.astype(float)


@pytest.fixture(scope="module")
def data():
    return make_data()


def make_data():
    """Per kind: (control looks, treatment looks, treatment-value threshold at the null, options)."""
    rng = np.random.default_rng(2026)
    shape = (SIMS, LOOKS, BATCH)
    out = {}
    out["mean (raw)"] = (looks_of(revenue(rng, shape)), looks_of(revenue(rng, shape)),
                         PAYERS * math.exp(MU + SIGMA**2 / 2), {})
    m_cap = capped_lognormal_mean(CAP)
    out["mean (capped)"] = (looks_of(revenue(rng, shape, cap=CAP), shift=m_cap),
                            looks_of(revenue(rng, shape, cap=CAP), shift=m_cap), m_cap,
                            {"support": (0.0, CAP), "allocation": 0.5})
    out["proportion"] = (looks_of((rng.random(shape) < 0.05).astype(float)),
                         looks_of((rng.random(shape) < 0.05).astype(float)), 0.05, {"allocation": 0.5})
    out["ratio"] = (looks_of(*refunds(rng, shape)), looks_of(*refunds(rng, shape)), 0.02, {})
    return out


KIND = {"mean (raw)": "mean", "mean (capped)": "mean", "proportion": "proportion", "ratio": "ratio"}
CONFIGS = [(k, mode, d) for k in KIND for mode in ("treatment_value", "absolute_change", "relative_change")
           for d in ("max", "min")]


def alarm_count(ctrl, trt, **kwargs) -> tuple[int, str]:
    breached, _, method = guardrail_log_e_batch(ctrl, trt, **kwargs)
    return int(np.any(breached, axis=1).sum()), method


@pytest.mark.parametrize("label,mode,direction", CONFIGS, ids=["-".join(c) for c in CONFIGS])
def test_aa_every_guardrail_holds_alpha_at_one_look_per_100_users(data, label, mode, direction):
    ctrl, trt, null_value, options = data[label]
    threshold = null_value if mode == "treatment_value" else 0.0
    alarms, method = alarm_count(ctrl, trt, threshold=threshold, direction=direction, mode=mode,
                                 kind=KIND[label], alpha=ALPHA, **options)
    assert not_above_alpha(alarms), (label, mode, direction, method, alarms / SIMS)
    if label == "mean (raw)" and mode == "treatment_value" and direction == "min":
        assert method == "unbounded" and alarms == 0  # no valid test exists without a cap
    if label in ("mean (capped)", "proportion") and (mode == "treatment_value" or options.get("allocation")):
        assert method == "exact"


def test_the_old_plug_in_test_fails_where_the_exact_one_holds(data):
    # the defect: the asymptotic normal mixture on the capped mean's lower limit is still far above alpha
    ctrl, trt, m_cap, options = data["mean (capped)"]
    plug_in, _ = alarm_count(None, trt, threshold=m_cap, direction="min", method="asymptotic")
    exact, method = alarm_count(None, trt, threshold=m_cap, direction="min", support=options["support"])
    assert method == "exact" and not_above_alpha(exact)
    assert plug_in / SIMS > 0.15, plug_in / SIMS


# -- power: a real breach is caught -----------------------------------------------------------


def test_power_a_capped_revenue_drop_and_rise_are_caught():
    rng = np.random.default_rng(7)
    shape = (200, LOOKS, BATCH)
    m_cap = capped_lognormal_mean(CAP)
    low = looks_of(np.minimum(revenue(rng, shape, 0.6), CAP))  # 40 % lower (before the cap)
    high = looks_of(np.minimum(revenue(rng, shape, 1.5), CAP))
    for trt, direction in ((low, "min"), (high, "max")):
        b, _, method = guardrail_log_e_batch(None, trt, threshold=m_cap, direction=direction, support=(0.0, CAP))
        assert method == "exact" and np.mean(np.any(b, axis=1)) >= 0.8, (direction, np.mean(np.any(b, axis=1)))


def test_power_relative_and_absolute_comparisons():
    rng = np.random.default_rng(8)
    shape = (200, LOOKS, BATCH)
    ctrl = looks_of((rng.random(shape) < 0.05).astype(float))
    trt = looks_of((rng.random(shape) < 0.075).astype(float))  # +50 % relative
    for options in ({"allocation": 0.5}, {}):
        b, _, _ = guardrail_log_e_batch(ctrl, trt, threshold=0.10, direction="max", mode="relative_change",
                                        kind="proportion", **options)
        assert np.mean(np.any(b, axis=1)) >= 0.8, options
    c_rev = looks_of(revenue(rng, shape, cap=CAP))
    t_rev = looks_of(revenue(rng, shape, 0.5, cap=CAP))
    b, _, method = guardrail_log_e_batch(c_rev, t_rev, threshold=-0.05, direction="min", mode="relative_change",
                                         support=(0.0, CAP), allocation=0.5)
    assert method == "exact" and np.mean(np.any(b, axis=1)) >= 0.8


# -- the batch kernels are the scalar ones ----------------------------------------------------


@pytest.mark.parametrize("label,mode,direction", CONFIGS[::2] + CONFIGS[1::5], ids=lambda v: str(v))
def test_batch_equals_scalar(data, label, mode, direction):
    ctrl, trt, null_value, options = data[label]
    threshold = null_value if mode == "treatment_value" else 0.0
    kwargs = dict(threshold=threshold, direction=direction, mode=mode, kind=KIND[label], **options)
    breached, log_e, _ = guardrail_log_e_batch(ctrl, trt, **kwargs)
    for sim, look in ((0, 0), (1, 10), (3, 199), (7, 57)):
        def pick(s):
            fields = (np.broadcast_to(getattr(s, f), s.sum_y.shape)[sim, look]
                      for f in ("sum_y", "sum_y2", "sum_x", "sum_x2", "sum_xy"))
            return MomentStats(int(s.n[look]), *map(float, fields), s.shift_y, s.shift_x)

        res = guardrail_test(pick(ctrl), pick(trt), **kwargs)
        assert res.breached == bool(breached[sim, look])
        assert res.log_e_value == pytest.approx(float(log_e[sim, look]), rel=1e-9, abs=1e-9)


# -- one look every 5 simulated minutes -------------------------------------------------------

DAYS, PER_DAY = 3, 288
FIVE_MIN_SIMS = 300


def five_minute_looks(rng, draw, sims=FIVE_MIN_SIMS, mean_per_look=12.0):
    """Cumulative MomentStats (arrays sims × looks) with Poisson arrivals per 5-minute look following
    a daily cycle (peak in the evening, 4x the night rate): ~3 500 users per arm per day."""
    looks = DAYS * PER_DAY
    hour = (np.arange(looks) % PER_DAY) / 12.0
    rate = mean_per_look * (1 + 0.6 * np.sin((hour - 14) / 24 * 2 * np.pi))
    counts = rng.poisson(rate, size=(sims, looks))
    ends = np.cumsum(counts, axis=1)
    total = int(ends[:, -1].max())
    y, x = draw(rng, (sims, total))
    idx = np.minimum(ends - 1, total - 1)
    def cum(a):  # noqa: E306
        cs = np.cumsum(a, axis=1)
        return np.where(ends > 0, np.take_along_axis(cs, idx, axis=1), 0.0)
    # users beyond a simulation's own arrivals are never read: cumulative sums stop at ends
    if x is None:
        return MomentStats(ends, cum(y), cum(y * y))
    return MomentStats(ends, cum(y), cum(y * y), cum(x), cum(x * x), cum(x * y))


def capped_revenue(scale=1.0):
    return lambda rng, size: (revenue(rng, size, scale, cap=CAP), None)


def conversions(p):
    return lambda rng, size: ((rng.random(size) < p).astype(float), None)


@pytest.fixture(scope="module")
def five_min():
    return make_five_min()


def make_five_min():
    rng = np.random.default_rng(15)
    return {
        "revenue": (five_minute_looks(rng, capped_revenue()), five_minute_looks(rng, capped_revenue())),
        "churn": (five_minute_looks(rng, conversions(0.08)), five_minute_looks(rng, conversions(0.08))),
        "refund_rate": (five_minute_looks(rng, lambda r, s: refunds(r, s)),
                        five_minute_looks(rng, lambda r, s: refunds(r, s))),
    }


def any_alarm(breached) -> int:
    return int(np.any(breached, axis=1).sum())


def test_5min_absolute_guardrails_hold_alpha(five_min):
    # 7a: maxThreshold / minThreshold on the treatment arm's value, the limit at the true value
    _, rev = five_min["revenue"]
    _, churn = five_min["churn"]
    _, refund = five_min["refund_rate"]
    m_cap = capped_lognormal_mean(CAP)
    cases = [(rev, dict(threshold=m_cap, kind="mean", support=(0.0, CAP)), ("max", "min")),
             (churn, dict(threshold=0.08, kind="proportion"), ("max", "min")),
             (refund, dict(threshold=0.02, kind="ratio"), ("max", "min"))]
    for trt, kwargs, directions in cases:
        for direction in directions:
            b, _, method = guardrail_log_e_batch(None, trt, direction=direction, **kwargs)
            assert not_above_alpha(any_alarm(b), FIVE_MIN_SIMS), (kwargs, direction, method)


@pytest.mark.parametrize("metric,bad", [("revenue", "lower"), ("revenue", "higher"), ("churn", "higher"),
                                        ("churn", "lower"), ("refund_rate", "higher")])
def test_5min_relative_guardrail_holds_alpha(five_min, metric, bad):
    # 7b: TREATMENT worse than CONTROL by more than maxRelativeDelta %; A/A at the boundary δ = 0
    ctrl, trt = five_min[metric]
    kind = {"revenue": "mean", "churn": "proportion", "refund_rate": "ratio"}[metric]
    options = {"support": (0.0, CAP), "allocation": 0.5} if metric == "revenue" else {}
    b, _, _ = guardrail_log_e_batch(ctrl, trt, kind=kind, **relative_guardrail_params(0.0, bad), **options)
    assert not_above_alpha(any_alarm(b), FIVE_MIN_SIMS)


@pytest.mark.parametrize("direction", ["INCREASE", "DECREASE", "MAINTAIN"])
def test_5min_kpi_guardrail_holds_alpha(five_min, direction):
    # 7c: GUARDRAIL KPI, threshold 0 (the A/A worst case), relative against CONTROL
    ctrl, trt = five_min["churn"]
    alarms = np.zeros(FIVE_MIN_SIMS, bool)
    for params in kpi_guardrail_params(0.0, direction):
        share = params.pop("alpha_share")
        b, _, _ = guardrail_log_e_batch(ctrl, trt, kind="proportion", alpha=ALPHA * share, **params)
        alarms |= np.any(b, axis=1)
    assert not_above_alpha(int(alarms.sum()), FIVE_MIN_SIMS)


def test_5min_always_valid_lift_covers_and_its_p_value_holds(five_min):
    # 7d: the confidence sequence contains the true difference (0) at EVERY look, simultaneously
    for metric, kind in (("revenue", "mean"), ("churn", "proportion"), ("refund_rate", "ratio")):
        ctrl, trt = five_min[metric]
        lo, hi, p, _ = always_valid_lift_batch(ctrl, trt, kind=kind)
        ok = np.asarray(ctrl.n) >= 100
        miss = np.any(ok & ((lo > 0) | (hi < 0)), axis=1)
        assert not_above_alpha(int(miss.sum()), FIVE_MIN_SIMS), metric
        assert not_above_alpha(int(np.any(ok & (p <= ALPHA), axis=1).sum()), FIVE_MIN_SIMS), metric


def test_5min_power_sanity(five_min):
    rng = np.random.default_rng(16)
    ctrl, _ = five_min["churn"]
    worse = five_minute_looks(rng, conversions(0.12))  # churn 8 % → 12 %: a 50 % relative breach
    res = kpi_guardrail_params(0.05, "MAINTAIN")
    alarms = np.zeros(FIVE_MIN_SIMS, bool)
    for params in res:
        share = params.pop("alpha_share")
        b, _, _ = guardrail_log_e_batch(ctrl, worse, kind="proportion", alpha=ALPHA * share, **params)
        alarms |= np.any(b, axis=1)
    assert alarms.mean() >= 0.9
    lo, hi, p, _ = always_valid_lift_batch(ctrl, worse, kind="proportion")
    assert np.mean(np.any(p <= ALPHA, axis=1)) >= 0.9


# -- the wrappers on single looks -------------------------------------------------------------


def test_kpi_and_relative_wrappers_decide_the_right_side():
    rng = np.random.default_rng(17)
    c = MomentStats.from_arrays((rng.random(20000) < 0.08).astype(float))
    t = MomentStats.from_arrays((rng.random(20000) < 0.16).astype(float))
    assert kpi_guardrail_test(c, t, threshold=0.05, direction="MAINTAIN", kind="proportion").side == "higher"
    assert kpi_guardrail_test(c, t, threshold=0.05, direction="DECREASE", kind="proportion").breached
    assert not kpi_guardrail_test(c, t, threshold=0.05, direction="INCREASE", kind="proportion").breached
    assert kpi_guardrail_test(t, c, threshold=0.05, direction="INCREASE", kind="proportion").side == "lower"
    with pytest.raises(ValueError):
        relative_guardrail_params(-1.0, "higher")
    with pytest.raises(ValueError):
        kpi_guardrail_params(0.05, "SIDEWAYS")  # type: ignore[arg-type]
    lift = always_valid_lift(c, t, kind="proportion")
    lo, hi = lift.ci_relative
    assert lo < 1.0 < hi and lift.p_value < 1e-6
    assert lift.to_dict()["confidenceInterval"] == [100 * lo, 100 * hi]


@pytest.mark.parametrize("direction", ["max", "min"])
def test_exact_breach_iff_its_always_valid_bound_is_beyond_the_threshold(direction):
    rng = np.random.default_rng(18)
    m_cap = capped_lognormal_mean(CAP)
    for scale in (0.5, 0.8, 1.0, 1.3, 2.0):
        y = revenue(rng, 20000, scale, cap=CAP)
        res = guardrail_test(None, MomentStats.from_arrays(y, shift_y=m_cap), threshold=m_cap, direction=direction,
                             support=(0.0, CAP))
        assert res.method == "exact" and res.reason in ("breached", "within")
        beyond = res.confidence_bound > m_cap if direction == "max" else res.confidence_bound < m_cap
        assert res.breached == beyond or abs(res.confidence_bound - m_cap) < 1e-6 * m_cap
        assert (res.p_value <= ALPHA) == res.breached
        lo_ok = 0.0 <= res.confidence_bound <= CAP
        assert lo_ok and ((res.confidence_bound <= res.estimate) == (direction == "max"))


def test_bad_support_or_threshold_is_refused():
    s = MomentStats.from_arrays(np.ones(500))
    with pytest.raises(ValueError):
        guardrail_test(None, s, threshold=2.0, direction="min", support=(0.0, 1.0))  # limit outside the support
    with pytest.raises(ValueError):
        guardrail_test(None, s, threshold=0.5, support=(1.0, 0.0))
    with pytest.raises(ValueError):
        guardrail_test(s, s, threshold=0.0, mode="relative_change", kind="proportion", allocation=1.5)
    with pytest.raises(ValueError):
        guardrail_test(None, s, threshold=0.5, direction="min", method="exact")  # no cap: no exact test
