"""Sequential SRM (Lindon & Malek 2022): the Bayes factor against scipy's distributions, false alarms
under continuous monitoring (one look every 5 simulated minutes), and power on a real mismatch."""
import math

import numpy as np
import pytest
from scipy import special
from scipy import stats as sps

from offerlab.stats.frequentist import srm_p_value
from offerlab.stats.sequential import sequential_srm


@pytest.mark.parametrize("counts,shares", [([510, 490], [0.5, 0.5]), ([120, 880], [0.1, 0.9]), ([3, 0], [0.5, 0.5])])
def test_two_arm_bayes_factor_is_beta_binomial_over_binomial(counts, shares):
    k = 100.0
    n = sum(counts)
    ref = sps.betabinom.logpmf(counts[0], n, k * shares[0], k * shares[1]) - sps.binom.logpmf(counts[0], n, shares[0])
    assert sequential_srm(counts, shares).log_bayes_factor == pytest.approx(ref, rel=1e-9, abs=1e-9)


def test_three_arm_bayes_factor_closed_form_with_gammaln():
    counts, shares = np.array([80, 470, 450]), np.array([0.1, 0.45, 0.45])
    a = 100 * shares
    ref = (special.gammaln(a.sum()) - special.gammaln(a.sum() + counts.sum())
           + np.sum(special.gammaln(a + counts) - special.gammaln(a)) - np.sum(counts * np.log(shares)))
    assert sequential_srm(list(counts), list(shares)).log_bayes_factor == pytest.approx(ref, rel=1e-9, abs=1e-8)
    assert sequential_srm([5, 1, 1], [0.5, 0.0, 0.5]).mismatch  # a user in an arm with no share
    assert not sequential_srm([5, 0, 1], [0.5, 0.0, 0.5]).mismatch


def monitor(rng, shares, sims=1000, looks=3 * 288, per_look=20.0):
    """Cumulative arm counts at each 5-minute look (Poisson arrivals split multinomially)."""
    arrivals = rng.poisson(per_look, (sims, looks))
    counts = np.stack([rng.binomial(arrivals, shares[0])], axis=-1)
    if len(shares) == 2:
        counts = np.concatenate([counts, (arrivals - counts[..., 0])[..., None]], axis=-1)
    else:
        rest = arrivals - counts[..., 0]
        second = rng.binomial(rest, shares[1] / (1 - shares[0]))
        counts = np.concatenate([counts, second[..., None], (rest - second)[..., None]], axis=-1)
    return np.cumsum(counts, axis=1)


def ever_alarms(cum, shares, alpha):
    hits = 0
    for sim in range(cum.shape[0]):
        for look in range(0, cum.shape[1], 6):  # a decision every 30 minutes: 144 per experiment
            if sequential_srm(list(cum[sim, look]), shares, alpha=alpha).mismatch:
                hits += 1
                break
    return hits


def test_aa_continuous_monitoring_keeps_alpha_where_repeated_chi_square_does_not():
    rng = np.random.default_rng(50)
    shares = [0.1, 0.45, 0.45]
    cum = monitor(rng, shares, sims=400)
    alarms = ever_alarms(cum, shares, alpha=0.05)
    assert sps.binom.sf(alarms - 1, 400, 0.05) >= 0.01, alarms / 400
    naive = np.mean([any(srm_p_value(list(cum[s, k]), shares) < 0.05 for k in range(0, cum.shape[1], 6))
                     for s in range(200)])
    assert naive > 0.15, naive


def test_a_real_mismatch_is_found():
    rng = np.random.default_rng(51)
    cum = monitor(rng, [0.53, 0.47], sims=100)  # logging drops 6 % of one arm's users
    assert ever_alarms(cum, [0.5, 0.5], alpha=0.001) >= 95
