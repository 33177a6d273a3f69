"""The compute-optimal fits on a constructed loss surface with a known answer (a = 0.5)."""

import numpy as np
import pytest
import xarray as xr

from scaling_atlas.studies import validate_config
from scaling_atlas.models.shape import parameter_counts
from scaling_atlas.studies import get_study

from conftest import load_config

E, A, B, ALPHA, BETA = 1.3, 20.0, 20.0, 0.34, 0.34  # α = β → N_opt ∝ C^0.5 exactly


def surface(n, d):
    return E + A / n**ALPHA + B / d**BETA


@pytest.fixture(scope="module")
def study_and_cube():
    config = load_config()
    config["studies"]["compute_optimal"].update(
        widths=[16, 24, 32, 48, 64, 96, 128, 192], budgets=[1e10, 1e11, 1e12], bootstrap_resamples=100,
        min_steps=10, max_tokens_per_parameter=0)
    study = get_study("compute_optimal", validate_config(config))
    budgets, widths = study.settings["budgets"], study.settings["widths"]
    n = np.array([parameter_counts(study.model_config(w))["total"] for w in widths], float)
    shape = (len(budgets), len(widths), 1)
    d = np.array(budgets)[:, None] / (6 * n[None, :])
    points = np.geomspace(0.01, 1.0, 12)  # each run's curve: tokens seen up to its horizon D
    curve_tokens = d[..., None] * points
    cube = xr.Dataset(
        {"n_params": (("budget", "width", "seed"), np.broadcast_to(n[None, :, None], shape).copy()),
         "tokens": (("budget", "width", "seed"), d[..., None]),
         "flops_6n": (("budget", "width", "seed"), 6 * n[None, :, None] * d[..., None]),
         "final_val_loss": (("budget", "width", "seed"), surface(n[None, :], d)[..., None]),
         "curve_tokens": (("budget", "width", "seed", "point"), curve_tokens[:, :, None, :]),
         "curve_val_loss": (("budget", "width", "seed", "point"),
                            surface(n[None, :, None], curve_tokens)[:, :, None, :])},
        coords={"budget": budgets, "width": widths, "seed": [0], "point": np.arange(12)})
    return study, cube


def test_approach2_recovers_a_half_with_a_ci(study_and_cube):
    study, cube = study_and_cube
    fit = study._approach2(study.final_points(cube))
    assert int(fit["used"].sum()) == 3
    assert fit.attrs["a"] == pytest.approx(0.5, abs=0.03)
    assert fit.attrs["a_ci_low"] < fit.attrs["a"] < fit.attrs["a_ci_high"]
    assert fit.attrs["b"] == pytest.approx(1 - fit.attrs["a"])


def test_approach3_recovers_the_surface(study_and_cube):
    study, cube = study_and_cube
    fit = study._approach3(study.final_points(cube), cube)
    est = dict(zip(fit["parameter"].values, fit["estimate"].values))
    assert est["E"] == pytest.approx(E, rel=1e-3) and est["alpha"] == pytest.approx(ALPHA, abs=1e-3)
    assert fit.attrs["a"] == pytest.approx(0.5, abs=1e-3)


def test_approach1_envelope_follows_the_frontier(study_and_cube):
    study, cube = study_and_cube
    fit = study._approach1(cube)
    # the envelope can only pick sampled sizes, so the slope is coarse but close to 0.5
    assert fit.attrs["a"] == pytest.approx(0.5, abs=0.12)


def test_lr_areas_follow_each_runs_own_peak_lr():
    """Tissue's S₁ (the LR's area) and S₂ (its annealing area) are linear in the peak LR: with
    per-size LRs each run's areas come from its own peak, not the config's single lr."""
    from scaling_atlas.studies.compute_optimal.lr_annealing import schedule_areas

    settings = get_study("compute_optimal", validate_config(load_config())).settings
    at = np.array([300, 700, 1000])
    s1, s2 = schedule_areas(settings, 1000, at, 0.01)
    s1_double, s2_double = schedule_areas(settings, 1000, at, 0.02)
    np.testing.assert_allclose(s1_double, 2 * s1, rtol=1e-12)
    np.testing.assert_allclose(s2_double, 2 * s2, rtol=1e-12)
    assert s1[-1] > s1[0] > 0 and s2[-1] > 0


def test_the_frontier_band_holds_the_best_fit_and_narrows_with_less_noise():
    """laws.frontier_band: N*(C) of the best fit equals the closed form, inside the band of the
    draws; the band of a nearly noiseless law is tight around it."""
    import numpy as np
    import pandas as pd

    from scaling_atlas.laws import LawFit
    from scaling_atlas.laws.compute_optimal import frontier_band
    from scaling_atlas.laws.forms import optimal_allocation

    rng = np.random.default_rng(0)
    n = np.repeat(np.geomspace(1e7, 1e9, 6), 5)
    d = np.tile(np.geomspace(1e9, 1e11, 5), 6)
    law = dict(E=1.7, A=400.0, B=410.0, alpha=0.34, beta=0.28)
    loss = law["E"] + law["A"] / n ** law["alpha"] + law["B"] / d ** law["beta"]
    flops = np.geomspace(1e18, 1e22, 5)
    widths = []
    for noise in (1e-4, 1e-2):
        points = pd.DataFrame({"N": n, "D": d})
        fit = LawFit("chinchilla").fit(points, loss * (1 + noise * rng.standard_normal(len(n))))
        fit.bootstrap(60, seed=1)
        band = frontier_band(fit, flops)
        best, _, _ = optimal_allocation(*(fit.natural_[k] for k in ("A", "B", "alpha", "beta")), flops)
        np.testing.assert_allclose(band["frontier_n_opt"], best)
        assert (band["frontier_n_low"] <= band["frontier_n_opt"] * 1.0001).all()
        assert (band["frontier_n_high"] >= band["frontier_n_opt"] * 0.9999).all()
        assert band["frontier_flops"].attrs["units"] == "FLOP"
        widths.append(float(np.log(band["frontier_n_high"] / band["frontier_n_low"]).max()))
    assert widths[0] < widths[1] / 5
