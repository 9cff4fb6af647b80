"""Empirical-Bayes shrinkage of lifts (stats/shrinkage.py): the method of moments and the winner's curse,
checked by simulation (selected winners' raw lifts overstate their true lifts; shrunk ones much less)."""
import random

import pytest
from scipy import stats

from offerlab.stats.shrinkage import Z_975, estimate_tau2, se_from_interval, shrink


def test_the_interval_gives_back_its_standard_error():
    assert Z_975 == pytest.approx(stats.norm.ppf(0.975), rel=1e-12)
    assert se_from_interval(-1.0, 3.0) == pytest.approx(2.0 / stats.norm.ppf(0.975))


def test_tau2_is_recovered_by_the_method_of_moments():
    rng = random.Random(11)
    tau, ses = 3.0, [rng.uniform(1.0, 2.5) for _ in range(20000)]
    ys = [rng.gauss(0, tau) + rng.gauss(0, s) for s in ses]
    assert estimate_tau2(ys, ses) == pytest.approx(tau * tau, rel=0.05)
    assert estimate_tau2([0.1, -0.2], [1.0, 1.0]) == 0.0  # no signal beyond the noise: no spread
    assert estimate_tau2([], []) == 0.0 and estimate_tau2([5.0], [0.0]) == 0.0


def test_shrinking_corrects_the_winners_curse():
    rng = random.Random(5)
    tau, se = 2.0, 2.0
    truth = [rng.gauss(0, tau) for _ in range(4000)]
    ys = [t + rng.gauss(0, se) for t in truth]
    ses = [se] * len(ys)
    shrunk = shrink(ys, ses, estimate_tau2(ys, ses)).shrunk
    winners = [i for i, y in enumerate(ys) if y > Z_975 * se]  # what a team would ship
    raw_bias = sum(ys[i] - truth[i] for i in winners) / len(winners)
    shrunk_bias = sum(shrunk[i] - truth[i] for i in winners) / len(winners)
    assert len(winners) > 200 and raw_bias > 1.5 and abs(shrunk_bias) < 0.3 * raw_bias
    mse = lambda est: sum((e - t) ** 2 for e, t in zip(est, truth)) / len(truth)  # noqa: E731
    assert mse(shrunk) < 0.7 * mse(ys)  # the posterior mean beats the raw estimate overall (Efron & Morris 1975)


def test_the_factor_is_the_posterior_weight():
    result = shrink([4.0, 4.0, 7.0], [1.0, 3.0, 0.0], tau2=3.0)
    assert result.factors == pytest.approx((0.75, 0.25, 1.0)) and result.shrunk == pytest.approx((3.0, 1.0, 7.0))
    assert shrink([4.0], [1.0], tau2=0.0).shrunk == (0.0,)
