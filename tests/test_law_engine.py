"""The fitting engine on constructed data with known answers."""

import math

import numpy as np
import pandas as pd
import pytest

from scaling_atlas.datasets.schedules import lr_schedule
from scaling_atlas.laws import (
    REGISTRY,
    LawFit,
    LawForm,
    MultiPowerLawForm,
    Objective,
    Param,
    chinchilla_derived,
    envelope_optima,
    fit_isoflop,
    get_form,
    isoflop_optima,
    leave_largest_out,
    lr_areas,
    optimal_allocation,
    register_form,
    residual_summary,
)

TRUTH = {"A": 400.0, "B": 1500.0, "E": 1.8, "alpha": 0.34, "beta": 0.37}


def chinchilla_truth(n, d):
    return TRUTH["E"] + TRUTH["A"] / n ** TRUTH["alpha"] + TRUTH["B"] / d ** TRUTH["beta"]


def synthetic_points(noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    n = np.repeat(np.geomspace(1e7, 1e10, 12), 8)
    d = np.tile(np.geomspace(1e9, 1e12, 8), 12)
    loss = chinchilla_truth(n, d) * np.exp(noise * rng.standard_normal(n.size))
    return pd.DataFrame({"N": n, "D": d, "loss": loss})


# ---- forms -----------------------------------------------------------------------------------------
FORM_POINTS = {
    "power_law": ({"x": np.geomspace(1, 100, 7)}, [0.5, 0.7]),
    "power_law_offset": ({"x": np.geomspace(1, 100, 7)}, [0.5, 0.7, -1.0]),
    "broken_power_law": ({"x": np.geomspace(1, 1e4, 9)}, [0.5, 0.3, 0.9, 4.0, 0.7, -1.0]),
    "exponential": ({"t": np.linspace(0, 50, 7)}, [1.0, 0.05]),
    "task_law": ({"N": np.geomspace(1e6, 1e9, 7)}, [5.0, -0.4]),
    "chinchilla": ({"N": np.geomspace(1e7, 1e9, 7), "D": np.geomspace(1e9, 1e11, 7)},
                   [6.0, 7.5, 0.6, 0.34, 0.37]),
    "chinchilla_tied": ({"N": np.geomspace(1e7, 1e9, 7), "D": np.geomspace(1e9, 1e11, 7)},
                        [6.0, 7.5, 0.6, 0.34]),
    "kaplan": ({"N": np.geomspace(1e7, 1e9, 7), "D": np.geomspace(1e9, 1e11, 7)},
               [30.0, 22.0, 0.076, 0.095]),
    "lr_annealing": ({"S1": np.linspace(1, 10, 7), "S2": np.linspace(0, 0.5, 7)},
                     [2.0, 1.0, 0.5, 0.3]),
}


def test_every_registered_form_has_a_test_point():
    assert set(FORM_POINTS) | {"multi_power"} == set(REGISTRY)


@pytest.mark.parametrize("name", sorted(FORM_POINTS))
def test_analytic_jacobian_matches_finite_differences(name):
    X, theta = FORM_POINTS[name]
    form = get_form(name)
    theta = np.array([theta], float)
    pred = form.predict(theta, X)
    assert pred.shape == (1, len(next(iter(X.values())))) and np.all(np.isfinite(pred))
    numeric = LawFit(form)._jacobian.__func__(_NoAnalytic(form), theta, X)
    analytic = form.jacobian(theta, X)
    if analytic is None:  # the engine's finite differences are the Jacobian: check them instead
        analytic = _central(form, theta, X, 1e-5)
    np.testing.assert_allclose(analytic, numeric, rtol=2e-5, atol=1e-9 * np.abs(pred).max())
    # the engine's hot path computes both at once: it must agree with the separate calls
    both_pred, both_jac = form.predict_and_jacobian(theta, X)
    np.testing.assert_allclose(both_pred, pred, rtol=1e-12)
    if both_jac is not None:
        np.testing.assert_allclose(both_jac, analytic, rtol=1e-12)


def test_multi_power_jacobian_matches_finite_differences():
    form = MultiPowerLawForm([lr_schedule("cosine_24000"), lr_schedule("wsdcon_9")])
    X = {"curve": np.array([0, 0, 0, 1, 1]), "step": np.array([3000, 12000, 23000, 9000, 15000])}
    theta = np.array([[3.0, 0.5, 0.5, 400.0, 2.0, 0.6, 0.6]])
    np.testing.assert_allclose(form.jacobian(theta, X), _central(form, theta, X, 1e-6), rtol=1e-5,
                               atol=1e-9)


class _NoAnalytic:
    """A form wrapper whose Jacobian is unknown, so the engine falls back to differences."""

    def __init__(self, form):
        self.form = self.law_form = form

    def __getattr__(self, name):
        return getattr(self.form, name)


def _central(form, theta, X, rel):
    cols = []
    for p in range(theta.shape[1]):
        h = rel * max(1.0, abs(theta[0, p]))
        up, down = theta.copy(), theta.copy()
        up[0, p] += h
        down[0, p] -= h
        cols.append((form.predict(up, X) - form.predict(down, X)) / (2 * h))
    return np.stack(cols, axis=-1)


def test_a_user_form_takes_a_few_lines():
    class Logistic(LawForm):
        name = "test_logistic"
        variables = ("x",)
        positive_variables = ()
        params = (Param("top", 0, 10), Param("rate", 0, 5), Param("mid", -10, 10))

        def predict(self, theta, X):
            top, rate, mid = self.unpack(theta)
            return top / (1 + np.exp(-rate * (X["x"] - mid)))

    register_form(Logistic)
    try:
        x = np.linspace(-5, 5, 30)
        y = 3.0 / (1 + np.exp(-1.5 * (x - 0.5)))
        fit = LawFit("test_logistic", Objective("mse", space="linear"),
                     starts={"top": [1, 5], "rate": [0.5, 2], "mid": [-1, 1]}).fit({"x": x}, y)
        assert fit.natural_ == pytest.approx({"top": 3.0, "rate": 1.5, "mid": 0.5}, abs=1e-5)
    finally:
        REGISTRY.pop("test_logistic")


# ---- objectives ---------------------------------------------------------------------------------------
def test_huber_is_quadratic_inside_delta_and_linear_outside_and_summed():
    obj = Objective()
    r = np.array([[5e-4, -2e-3, 0.1]])
    expected = 0.5 * 5e-4**2 + 1e-3 * (2e-3 - 5e-4) + 1e-3 * (0.1 - 5e-4)
    assert obj.value(r)[0] == pytest.approx(expected, rel=1e-12)
    assert Objective(reduction="mean").value(r)[0] == pytest.approx(expected / 3, rel=1e-12)
    assert Objective("mae").value(r)[0] == pytest.approx(0.1025, rel=1e-12)
    assert Objective("mse").value(r)[0] == pytest.approx(0.5 * (r**2).sum(), rel=1e-12)


def test_bad_objective_names_are_refused():
    with pytest.raises(ValueError, match="loss 'l3'"):
        Objective("l3")
    with pytest.raises(ValueError, match="space 'sqrt'"):
        Objective(space="sqrt")


# ---- recovery -----------------------------------------------------------------------------------------
def test_noise_free_chinchilla_points_give_the_truth_back():
    pts = synthetic_points()
    fit = LawFit("chinchilla").fit(pts, pts["loss"])
    assert fit.natural_ == pytest.approx(TRUTH, rel=1e-4)
    assert fit.objective_value_ < 1e-9 and fit.n_starts_ == 4500 and fit.n_refined_ == 32


def test_noisy_chinchilla_points_recover_the_exponents():
    pts = synthetic_points(noise=0.01, seed=3)
    fit = LawFit("chinchilla").fit(pts, pts["loss"])
    assert fit.natural_["alpha"] == pytest.approx(TRUTH["alpha"], abs=0.03)
    assert fit.natural_["beta"] == pytest.approx(TRUTH["beta"], abs=0.03)
    assert fit.natural_["E"] == pytest.approx(TRUTH["E"], abs=0.05)


def test_vpnls_reaches_the_linear_least_squares_optimum():
    pts = synthetic_points(noise=0.01, seed=4)
    vp = LawFit("chinchilla", solver="vpnls").fit(pts, pts["loss"])
    ls = LawFit("chinchilla", Objective("mse", space="linear")).fit(pts, pts["loss"])
    assert vp.fit_objective.space == "linear" and vp.fit_objective.loss == "mse"
    assert vp.objective_value_ == pytest.approx(ls.objective_value_, rel=1e-6)
    assert vp.natural_["alpha"] == pytest.approx(ls.natural_["alpha"], rel=1e-4)


def test_bootstrap_ci_covers_the_truth_at_about_the_nominal_rate():
    truth_alpha, hits, trials = 0.6, 0, 40
    x = np.geomspace(1, 1000, 25)
    for seed in range(trials):
        rng = np.random.default_rng(seed)
        y = 5.0 * x**-truth_alpha * np.exp(0.05 * rng.standard_normal(x.size))
        fit = LawFit("power_law", Objective("mse")).fit({"x": x}, y)
        fit.bootstrap(200, seed=seed, n_jobs=1, ci=0.9)
        low, high = fit.intervals()["alpha"]
        hits += low <= truth_alpha <= high
    assert 0.75 <= hits / trials <= 1.0


def test_bootstrap_is_seeded_and_does_not_depend_on_the_worker_count():
    pts = synthetic_points(noise=0.01, seed=5)
    one = LawFit("chinchilla").fit(pts, pts["loss"]).bootstrap(60, seed=7, n_jobs=1)
    two = LawFit("chinchilla").fit(pts, pts["loss"]).bootstrap(60, seed=7, n_jobs=2)
    np.testing.assert_array_equal(one.draws_theta_, two.draws_theta_)
    other = LawFit("chinchilla").fit(pts, pts["loss"]).bootstrap(60, seed=8, n_jobs=1)
    assert not np.array_equal(one.draws_theta_, other.draws_theta_)
    assert np.std(one.draws_["alpha"]) > 1e-4  # refits move away from the full-data optimum


def test_bootstrap_over_groups_resamples_whole_runs():
    pts = synthetic_points(noise=0.01, seed=6)
    groups = np.repeat(np.arange(12), 8)  # one group per model size
    fit = LawFit("chinchilla").fit(pts, pts["loss"], groups=groups)
    fit.bootstrap(30, by="groups", seed=1, n_jobs=1, derived=chinchilla_derived([1e21]))
    ds = fit.to_dataset()
    assert ds.sizes["draw"] == 30 and "N_opt@1e21" in ds["quantity"].values
    assert ds.attrs["ci_method"] == "percentile bootstrap over groups"
    assert float(ds["ci_low"].sel(parameter="alpha")) < float(ds["ci_high"].sel(parameter="alpha"))


def test_result_records_the_misfitting_checklist():
    pts = synthetic_points(noise=0.01, seed=2)
    fit = LawFit("chinchilla", bookkeeping={"N": "non-embedding", "C": "6ND"})
    fit.fit(pts, pts["loss"], excluded="none on purpose")
    attrs = fit.to_dataset().attrs
    for key in ("form", "equation", "variables", "objective", "objective_space", "objective_delta",
                "objective_reduction", "optimiser", "tolerances", "initialisation", "n_starts",
                "n_reached_best", "excluded_points", "ci_method", "counting_N", "counting_C"):
        assert key in attrs, key
    assert attrs["objective_delta"] == 1e-3 and attrs["objective_reduction"] == "sum"
    row = fit.summary()
    assert row["alpha"] == fit.natural_["alpha"] and row["counting_N"] == "non-embedding"


def test_gauss_newton_standard_error_equals_the_ols_slope_error():
    from scipy import stats

    rng = np.random.default_rng(0)
    x = np.geomspace(1, 100, 12)
    y = 2.0 * x**-0.8 * np.exp(0.05 * rng.standard_normal(12))
    fit = LawFit("power_law", Objective("mse")).fit({"x": x}, y)
    ols = stats.linregress(np.log(x), np.log(y))
    assert fit.natural_["alpha"] == pytest.approx(-ols.slope, rel=1e-7)
    assert fit.standard_errors_["alpha"] == pytest.approx(ols.stderr, rel=1e-5)


def test_exponential_rate_and_task_law_recover_known_parameters():
    t = np.linspace(0, 200, 30)
    fit = LawFit("exponential").fit({"t": t}, 3.0 * np.exp(-0.04 * t))
    assert fit.natural_["rate"] == pytest.approx(0.04, rel=1e-6)
    # badly scaled: rate ~1e-3 against t ~1e4 (gradients 10⁷ apart) still converges
    slow = np.array([640.0, 1237, 1857, 2490, 3127, 3768])
    fit = LawFit("exponential", Objective("mse")).fit({"t": slow}, 10.0 ** -np.arange(4.0, 10.0))
    assert fit.natural_["rate"] == pytest.approx(-np.polyfit(slow, -np.arange(4, 10) * np.log(10), 1)[0],
                                                 rel=1e-6)
    n = np.geomspace(1e6, 1e9, 8)
    pass_until = np.exp(-np.exp(12.0 - 0.9 * np.log(n)))
    law = LawFit("task_law", Objective("mse", space="loglog")).fit({"N": n}, pass_until)
    assert law.params_ == pytest.approx({"c": 12.0, "k": -0.9}, rel=1e-5)


# ---- compute-optimal tools ----------------------------------------------------------------------------
def test_closed_form_allocation_minimises_the_loss_on_the_isoflop_line():
    C = 1e21
    n_opt, d_opt, ratio = optimal_allocation(TRUTH["A"], TRUTH["B"], TRUTH["alpha"], TRUTH["beta"], C)
    n = np.geomspace(n_opt / 10, n_opt * 10, 20001)
    best = n[np.argmin(chinchilla_truth(n, C / (6 * n)))]
    assert best == pytest.approx(n_opt, rel=1e-3)
    assert d_opt == pytest.approx(C / (6 * n_opt)) and ratio == pytest.approx(d_opt / n_opt)


def _isoflop_points(n_per_budget=9, span=30.0, offset=1.0):
    rows = []
    for c in np.geomspace(1e18, 1e21, 7):
        n_centre, _, _ = optimal_allocation(TRUTH["A"], TRUTH["B"], TRUTH["alpha"], TRUTH["beta"], c)
        for n in np.geomspace(n_centre * offset / span, n_centre * offset * span, n_per_budget):
            rows.append({"flops": c, "n_params": n, "loss": chinchilla_truth(n, c / (6 * n))})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("method", ["akima", "parabola"])
def test_isoflop_recovers_the_allocation_exponent_on_a_synthetic_surface(method):
    result = fit_isoflop(isoflop_optima(_isoflop_points(), method=method, window=2), n_boot=200)
    a = TRUTH["beta"] / (TRUTH["alpha"] + TRUTH["beta"])
    assert result.exponent == pytest.approx(a, abs=0.01)
    assert result.exponent_ci[0] <= result.exponent <= result.exponent_ci[1]
    assert result.d_exponent == pytest.approx(1 - result.exponent, abs=1e-9)  # C = 6ND
    assert result.optima["used"].all()


def test_isoflop_drops_budgets_whose_minimum_is_on_the_grid_edge():
    shifted = _isoflop_points(offset=40.0)  # every sampled N is far above the optimum
    optima = isoflop_optima(shifted, method="akima")
    assert optima["on_edge"].all() and not optima["used"].any()
    with pytest.raises(ValueError, match="at least 2 usable budgets"):
        fit_isoflop(optima)


def test_envelope_of_training_curves_gives_the_allocation_exponent():
    rows = []
    for run, n in enumerate(np.geomspace(1e7, 1e10, 25)):
        for d in np.geomspace(1e8, 1e13, 60):
            rows.append({"run": run, "n_params": n, "tokens": d, "loss": chinchilla_truth(n, d)})
    optima = envelope_optima(pd.DataFrame(rows), n_budgets=12)
    inner = optima[(optima["flops"] > 1e19) & (optima["flops"] < 1e22)]
    slope = np.polyfit(np.log(inner["flops"]), np.log(inner["n_opt"]), 1)[0]
    assert slope == pytest.approx(TRUTH["beta"] / (TRUTH["alpha"] + TRUTH["beta"]), abs=0.03)


# ---- validation and schedules -------------------------------------------------------------------------
def test_leave_largest_out_extrapolates_an_exact_law_exactly():
    pts = synthetic_points()
    score = leave_largest_out(LawFit("chinchilla"), pts, pts["loss"], pts["N"])
    assert score["test_n"] == 8 and score["test_max_relative_error"] < 1e-5


def test_residual_summary_on_known_residuals():
    s = residual_summary([1.0, 2.0, 4.0], [1.1, 2.0, 3.6])
    assert s["mean_residual"] == pytest.approx((-0.1 + 0 + 0.4) / 3)
    assert s["max_relative_error"] == pytest.approx(0.1)


def test_lr_areas_constant_schedule_has_no_annealing_area():
    s1, s2 = lr_areas(np.r_[0.0, np.full(100, 2e-4)])
    assert s1[-1] == pytest.approx(100 * 2e-4) and np.all(s2 == 0)
    eta = np.r_[0.0, np.full(50, 3e-4), np.full(50, 1e-4)]
    assert lr_areas(eta, decay=0.0)[1][-1] == pytest.approx(2e-4)  # λ = 0: the drop counts once
    assert lr_areas(eta, decay=1.0)[1][-1] == pytest.approx(50 * 2e-4)  # λ = 1: every later step


def test_lr_schedules_match_their_definitions():
    cosine = lr_schedule("cosine_24000")
    assert cosine[0] == 0 and cosine[2160] == pytest.approx(3e-4) and cosine[24000] == pytest.approx(3e-5)
    wsd = lr_schedule("wsd_20000_24000")
    assert wsd[20000] == pytest.approx(3e-4) and wsd[22000] == pytest.approx(3e-4 * 0.1**0.5)
    assert lr_schedule("wsdcon_3")[8000] == pytest.approx(3e-5)
    with pytest.raises(ValueError, match="unknown LR schedule"):
        lr_schedule("triangle_100")


def test_tissue_law_is_recovered_from_its_own_curve():
    eta = lr_schedule("cosine_24000")
    s1, s2 = lr_areas(eta, warmup=2160)
    steps = np.arange(3000, 24001, 500)
    truth = [2.5, 1.2, 0.5, 2.0]
    form = get_form("lr_annealing")
    X = {"S1": s1[steps], "S2": s2[steps]}
    y = form.predict(np.array([truth]), X)[0]
    fit = LawFit("lr_annealing", starts=np.array([[2.0, 1.0, 0.4, 1.0]]), top_k=1,
                 options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 5000}).fit(X, y)
    assert fit.theta_ == pytest.approx(truth, rel=1e-3)
    vp = LawFit("lr_annealing", solver="vpnls").fit(X, y)
    assert vp.theta_ == pytest.approx(truth, rel=1e-4)
    assert math.isfinite(fit.objective_value_)


def test_settings_stay_as_given_and_vpnls_refuses_another_objective():
    """scikit-learn's rule: construction stores the settings and changes none of them; what a
    fit used is read from properties and ``_`` attributes. VPNLS is least squares in linear
    space by construction, so it refuses another objective instead of replacing it."""
    from scaling_atlas.laws import LawFit, Objective
    from scaling_atlas.laws.engine import VPNLS_OBJECTIVE

    fit = LawFit("chinchilla")
    assert fit.form == "chinchilla" and fit.objective is None
    assert fit.law_form.name == "chinchilla" and fit.fit_objective == Objective()
    vp = LawFit("chinchilla", solver="vpnls")
    assert vp.objective is None and vp.fit_objective == VPNLS_OBJECTIVE
    assert LawFit("chinchilla", VPNLS_OBJECTIVE, solver="vpnls").fit_objective == VPNLS_OBJECTIVE
    with pytest.raises(ValueError, match="VPNLS minimises least squares in linear loss space"):
        LawFit("chinchilla", Objective("huber"), solver="vpnls")
