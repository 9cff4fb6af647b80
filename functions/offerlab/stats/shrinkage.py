"""Empirical-Bayes shrinkage of experiment lifts toward 0: the winner's-curse correction of shipped lifts.

Shipped experiments are the ones whose measured lift was large: selecting on the estimate biases it
upward (the "winner's curse"; Lee & Shen 2018, "Winner's Curse: Bias Estimation for Total Effects of
Features in Online Controlled Experiments", KDD). The normal–normal model of Efron & Morris (1975, "Data
Analysis Using Stein's Estimator and its Generalizations", JASA 70:311–319) and Morris (1983, "Parametric
Empirical Bayes Inference", JASA 78:47–55) treats each experiment's true lift as drawn from N(0, τ²) and its
estimate as y_i ~ N(θ_i, s_i²) with a known standard error s_i:

    E[y_i²] = τ² + s_i²            ⇒  τ̂² = max(0, mean_i(y_i² − s_i²))        (method of moments)
    E[θ_i | y_i] = B_i · y_i,   B_i = τ̂² / (τ̂² + s_i²)                        (posterior mean)

The prior is centred at 0 (most changes do little: the conservative centre for a program's read-out), and
τ² is estimated over *every* experiment the holdout covered (the pool the winners were selected from), not
only the shipped ones. With τ̂² = 0 every lift shrinks to 0: the data cannot tell the experiments' effects
from their noise. Checked by simulation in tests/unit/stats/test_shrinkage.py (selected winners' shrunk
lifts are far less biased than their raw ones). Pure Python.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

Z_975 = 1.959963984540054  # the 97.5 % normal quantile: a 95 % interval is ±Z_975 standard errors


@dataclass(frozen=True)
class Shrinkage:
    tau2: float                 # the estimated between-experiment variance of true lifts
    factors: tuple[float, ...]  # B_i per estimate (1 where the standard error is 0: nothing to shrink)
    shrunk: tuple[float, ...]   # B_i · y_i


def se_from_interval(lo: float, hi: float, z: float = Z_975) -> float:
    """The standard error behind a symmetric normal interval [lo, hi]."""
    return (hi - lo) / (2.0 * z)


def estimate_tau2(estimates: Sequence[float], standard_errors: Sequence[float]) -> float:
    """Method of moments (module docstring), over the estimates that have a positive standard error."""
    pairs = [(y, s) for y, s in zip(estimates, standard_errors) if s > 0]
    if not pairs:
        return 0.0
    return max(0.0, sum(y * y - s * s for y, s in pairs) / len(pairs))


def shrink(estimates: Sequence[float], standard_errors: Sequence[float], tau2: float) -> Shrinkage:
    """Posterior means toward 0 under N(0, tau2)."""
    factors = tuple(1.0 if s <= 0 else (tau2 / (tau2 + s * s) if tau2 + s * s > 0 else 0.0) for s in standard_errors)
    return Shrinkage(tau2, factors, tuple(b * y for b, y in zip(factors, estimates)))
