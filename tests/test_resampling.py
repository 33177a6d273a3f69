"""laws.resampling: the one place the studies' bootstrap intervals come from."""

import numpy as np
import pytest

from scaling_atlas.laws.resampling import (percentile_interval, resample_seeds,
                                           seed_and_document_bootstrap, statistic_bootstrap)


def test_percentile_interval_is_the_central_95_percent():
    low, high = percentile_interval(np.arange(1001.0))
    assert (low, high) == (25.0, 975.0)
    low, high = percentile_interval(np.array([[0.0, np.nan, 1.0, 2.0]] * 2), axis=1)
    np.testing.assert_allclose(low, [0.05, 0.05])
    np.testing.assert_allclose(high, [1.95, 1.95])
    assert percentile_interval(np.arange(101.0), level=50.0) == (25.0, 75.0)


def test_resampling_seeds_adds_the_spread_between_seeds():
    # no noise within a seed: every spread comes from which seeds are drawn
    same = resample_seeds(np.full((4, 500), 0.3), seed=0)
    assert np.ptp(same) == 0 and same.shape == (500,)
    apart = resample_seeds(np.array([[0.0] * 500, [1.0] * 500]), seed=0)
    low, high = percentile_interval(apart)
    assert (low, high) == (0.0, 1.0) and 0.4 < apart.mean() < 0.6
    one = np.random.default_rng(1).normal(size=(1, 300))
    np.testing.assert_array_equal(resample_seeds(one, seed=0), one[0])


def test_the_two_level_bootstrap_is_wider_when_seeds_disagree():
    rng = np.random.default_rng(2)
    a = rng.random((3, 400)) < 0.5
    agree = rng.random((3, 400)) < 0.6  # every seed gains 0.1
    shifts = np.array([0.0, 0.1, 0.2])[:, None]
    disagree = rng.random((3, 400)) < 0.5 + shifts  # gains 0, 0.1, 0.2
    width = [np.subtract(*percentile_interval(seed_and_document_bootstrap(
        a.astype(float), b.astype(float), 2000, seed=0))[::-1]) for b in (agree, disagree)]
    assert width[1] > 1.3 * width[0]


def test_statistic_bootstrap_matches_the_standard_error_of_a_mean():
    x = np.random.default_rng(3).normal(size=400)
    draws = statistic_bootstrap(np.mean, (x,), 4000, np.random.default_rng(0))
    assert draws.std() == pytest.approx(x.std() / np.sqrt(len(x)), rel=0.1)
    # items are resampled jointly across the arrays (pairs stay pairs)
    pairs = statistic_bootstrap(lambda u, v: np.mean(u - v), (x, x), 50, np.random.default_rng(0))
    assert np.all(pairs == 0)
