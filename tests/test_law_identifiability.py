"""Identifiability: what the data determine is stored with every fit and shown in summary();
a fit the data cannot determine warns and leaves its derived quantities undefined, with why."""

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from scaling_atlas.laws import FitWarning, LawFit, chinchilla_derived

TRUTH = {"A": 400.0, "B": 1500.0, "E": 1.8, "alpha": 0.34, "beta": 0.37}


def _points(sizes, tokens_per_size=8, noise=0.003, seed=0):
    rng = np.random.default_rng(seed)
    n = np.repeat(np.asarray(sizes, float), tokens_per_size)
    d = np.tile(np.geomspace(1e9, 1e12, tokens_per_size), len(sizes))
    loss = TRUTH["E"] + TRUTH["A"] / n ** TRUTH["alpha"] + TRUTH["B"] / d ** TRUTH["beta"]
    return pd.DataFrame({"N": n, "D": d, "loss": loss * np.exp(noise * rng.standard_normal(n.size))})


def _fit(df, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = LawFit("chinchilla", derived=chinchilla_derived([5.88e23]), **kw).fit(df, df["loss"])
    return fit, [str(w.message) for w in caught if issubclass(w.category, FitWarning)]


@pytest.mark.parametrize("n_sizes", [1, 2])
def test_one_or_two_model_sizes_are_not_identified(n_sizes):
    fit, messages = _fit(_points(np.geomspace(1e8, 1e9, n_sizes)))
    assert not fit.identified_
    assert any("not identified" in m and f"N has {n_sizes} distinct value(s)" in m for m in messages)
    assert fit.condition_number_ > LawFit.NOT_IDENTIFIED_CONDITION
    assert fit.weak_directions_  # the flat direction is named
    # no allocation from a fit that cannot determine one, and the reason is given
    derived = fit.derived_estimates()
    assert math.isnan(derived["N_opt@5.88e23"]) and math.isnan(derived["D_over_N@5.88e23"])
    assert "not identified" in fit.undefined_derived_["N_opt@5.88e23"]
    row = fit.summary()
    assert row["identified"] == 0 and "not identified" in row["fit_warnings"]
    assert f"N: {n_sizes}" in row["distinct_values"] and row["n_parameters"] == 5
    assert "N_opt@5.88e23" in row["undefined_derived"]


def test_a_well_posed_fit_is_identified_without_warnings():
    fit, messages = _fit(_points(np.geomspace(1e7, 1e10, 6)))
    assert messages == [] and fit.identified_
    assert fit.condition_number_ < LawFit.WEAK_CONDITION and fit.weak_directions_ == []
    assert fit.distinct_values_ == {"N": 6, "D": 8}
    assert fit.summary()["undefined_derived"] == "none"
    n_opt = fit.derived_estimates()["N_opt@5.88e23"]
    assert math.isfinite(n_opt) and n_opt > 0
    # every refined start is kept; the near-optimal ones agree on the parameters
    assert fit.refined_thetas_.shape == (fit.n_refined_, 5)
    assert np.allclose(fit.refined_thetas_[np.argmin(fit.refined_objectives_)], fit.theta_)
    lo, hi = fit.near_optimal_range_["alpha"]
    assert lo <= fit.natural_["alpha"] <= hi and hi - lo < 0.05
    ds = fit.to_dataset()
    assert ds["refined_theta"].shape == (fit.n_refined_, 5) and ds.attrs["identified"] == 1


def test_an_undefined_allocation_says_why():
    fit, _ = _fit(_points(np.geomspace(1e7, 1e10, 6)))
    fit.natural_ = dict(fit.natural_, alpha=-0.1)  # as if the loss rose with N
    value = fit.derived_estimates()["N_opt@5.88e23"]
    assert math.isnan(value)
    assert "α = -0.1" in fit.undefined_derived_["N_opt@5.88e23"]
    assert "does not fall with N" in fit.undefined_derived_["N_opt@5.88e23"]
