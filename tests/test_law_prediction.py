"""Prediction intervals that combine the parameter bootstrap with the residual scatter, and
their coverage on held-out points."""

import numpy as np
import pandas as pd
import pytest

from scaling_atlas.laws import LawFit, chinchilla_derived, interval_coverage, optimal_allocation


def _offset_law(x):
    return 1.5 + 3.0 * x**-0.5


def test_interval_coverage_is_near_nominal_over_repeated_draws():
    """Data from a known law with 2 % log-normal noise: over 20 simulated data sets, new
    observations fall inside the 80 % and 95 % intervals at about those rates, while the
    parameter-only interval (no observation noise) covers far fewer."""
    tables = []
    for rep in range(20):
        rng = np.random.default_rng(rep)
        x = np.r_[np.geomspace(1, 1000, 40), np.exp(rng.uniform(0, np.log(1000), 10))]
        y = _offset_law(x) * np.exp(0.02 * rng.standard_normal(50))
        train = np.arange(50) < 40
        tables.append(interval_coverage(LawFit("power_law_offset", top_k=8), pd.DataFrame({"x": x}),
                                        y, train, levels=(0.8, 0.95), n_resamples=100, seed=rep,
                                        n_jobs=1))
    mean = pd.concat(tables).groupby("nominal").mean()
    assert mean.loc[0.8, "coverage"] == pytest.approx(0.8, abs=0.08)
    assert mean.loc[0.95, "coverage"] == pytest.approx(0.95, abs=0.05)
    assert mean.loc[0.95, "parameter_only_coverage"] < 0.7


def test_prediction_at_a_compute_budget_uses_the_allocation_of_every_draw():
    rng = np.random.default_rng(0)
    n = np.repeat(np.geomspace(1e7, 1e10, 6), 6)
    d = np.tile(np.geomspace(1e9, 1e12, 6), 6)
    truth = dict(A=400.0, B=1500.0, E=1.8, alpha=0.34, beta=0.37)
    loss = truth["E"] + truth["A"] / n ** truth["alpha"] + truth["B"] / d ** truth["beta"]
    df = pd.DataFrame({"N": n, "D": d, "loss": loss * np.exp(0.003 * rng.standard_normal(n.size))})
    fit = LawFit("chinchilla", derived=chinchilla_derived([1e21])).fit(df, df["loss"])
    with pytest.raises(ValueError, match="call fit\\(...\\).bootstrap"):
        fit.predict_interval(C=1e21)
    fit.bootstrap(100, seed=1, n_jobs=1)
    table = fit.predict_interval(C=[1e20, 1e21], level=0.9)
    p = fit.natural_
    n_opt, d_opt, _ = optimal_allocation(p["A"], p["B"], p["alpha"], p["beta"], np.array([1e20, 1e21]))
    assert table["N"].to_numpy() == pytest.approx(n_opt) and table["D"].to_numpy() == pytest.approx(d_opt)
    expected = p["E"] + p["A"] / n_opt ** p["alpha"] + p["B"] / d_opt ** p["beta"]
    assert table["prediction"].to_numpy() == pytest.approx(expected, rel=1e-9)
    assert (table["low"] < table["prediction"]).all() and (table["prediction"] < table["high"]).all()
    assert (table["low"] <= table["param_low"]).all() and (table["param_high"] <= table["high"]).all()
    n_opt_true, d_opt_true, _ = optimal_allocation(truth["A"], truth["B"], truth["alpha"],
                                                   truth["beta"], 1e21)
    true_loss = truth["E"] + truth["A"] / n_opt_true ** truth["alpha"] + truth["B"] / d_opt_true ** truth["beta"]
    assert table["low"].iloc[1] < true_loss < table["high"].iloc[1]
    with pytest.raises(ValueError, match="needs a form with A, B"):
        LawFit("power_law_offset").fit(pd.DataFrame({"x": n}), loss).bootstrap(10, n_jobs=1).predict_interval(C=1e21)


def test_the_coverage_table_on_published_data():
    """The published study's coverage table on two of its datasets (the workflow's ci preset
    skips it): both splits, every level, and the intervals widen with the level."""
    from pathlib import Path

    from scaling_atlas.studies.published import coverage_table

    mirror = Path(__file__).resolve().parents[2] / "shared" / "data" / "published"
    gadre = pd.read_csv(mirror / "gadre2024_overtraining_models.csv")
    rpj = gadre[gadre["dataset"] == "rpj"]
    data = {"Gadre rpj": pd.DataFrame({"N": rpj["params"], "D": rpj["tokens"],
                                       "C": 6 * rpj["params"] * rpj["tokens"],
                                       "loss": rpj["loss_c4_val"]}).dropna().reset_index(drop=True)}
    rng = np.random.default_rng(0)
    n, d = np.meshgrid(np.geomspace(1e7, 1e10, 6), np.geomspace(1e9, 1e12, 6))
    n, d = n.ravel(), d.ravel()
    loss = (1.8 + 400 / n**0.34 + 1500 / d**0.37) * np.exp(0.005 * rng.standard_normal(n.size))
    data["the law itself"] = pd.DataFrame({"N": n, "D": d, "C": 6 * n * d, "loss": loss})
    table = coverage_table(data, 40, seed=0, n_jobs=1)
    assert table.sizes == {"dataset": 2, "split": 2, "nominal": 3}
    cov = table["coverage"]
    assert (cov.diff("nominal") >= 0).all()  # a wider interval holds at least as many points
    held = table["n_test"].sel(dataset="Gadre rpj").isel(nominal=0)
    assert int(held.sel(split="largest N held out (≥ 10 % of points)")) >= 3
    assert float(table["median_relative_error"].sel(dataset="the law itself").max()) < 0.02
    assert table["coverage"].attrs["units"] == "1"
