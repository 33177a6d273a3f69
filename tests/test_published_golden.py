"""Golden tests: the engine against the reference numbers of shared/reference/fitting.md (§11)."""

import math

import numpy as np
import pandas as pd
import pytest

from scaling_atlas.datasets.schedules import lr_schedule
from scaling_atlas.laws import (
    LawFit,
    MultiPowerLawForm,
    Objective,
    chinchilla_derived,
    fit_isoflop,
    isoflop_optima,
    residual_summary,
    weighted_power_law,
)
from scaling_atlas.studies.published import MPL_PUBLISHED, PORIAN_EXPONENTS

from conftest import REPO

DATA = REPO.parent / "shared" / "data" / "published"
pytestmark = pytest.mark.skipif(not DATA.exists(), reason="needs ../shared/data/published")


@pytest.fixture(scope="module")
def epoch_points():
    df = pd.read_csv(DATA / "chinchilla_besiroglu2024_svg_extracted_data.csv")
    df = df.sort_values("loss", kind="stable").iloc[:-5]  # Epoch drops the 5 highest losses
    return pd.DataFrame({"N": df["Model Size"], "D": df["Training FLOP"] / (6 * df["Model Size"]),
                         "loss": df["loss"]})


@pytest.fixture(scope="module")
def epoch_fit(epoch_points):
    return LawFit("chinchilla").fit(epoch_points, epoch_points["loss"])


def test_epoch_log_huber_refit(epoch_fit):
    p = epoch_fit.natural_
    assert p["A"] == pytest.approx(477.8, rel=5e-4)
    assert math.log(p["B"]) == pytest.approx(math.log(2143.6), abs=0.01)  # flat direction
    assert p["E"] == pytest.approx(1.8172, rel=5e-4)
    assert p["alpha"] == pytest.approx(0.3473, rel=5e-4)
    assert p["beta"] == pytest.approx(0.3672, rel=5e-4)
    assert epoch_fit.objective_value_ == pytest.approx(0.0010183, rel=1e-4)
    assert epoch_fit.n_starts_ == 4500 and epoch_fit.n_reached_best_ >= 2


def test_epoch_log_mae_refit_equals_their_published_estimate(epoch_points):
    fit = LawFit("chinchilla", Objective("mae"), top_k=4).fit(epoch_points, epoch_points["loss"])
    p = fit.natural_
    assert p["A"] == pytest.approx(482.0, rel=5e-4)
    assert p["B"] == pytest.approx(2085.4, rel=5e-4)
    assert p["E"] == pytest.approx(1.817, rel=5e-4)
    assert p["alpha"] == pytest.approx(0.3478, rel=5e-4)
    assert p["beta"] == pytest.approx(0.3659, rel=5e-4)


def test_log_mse_variant(epoch_points):
    p = LawFit("chinchilla", Objective("mse")).fit(epoch_points, epoch_points["loss"]).natural_
    assert (p["A"], p["E"], p["alpha"], p["beta"]) == pytest.approx((593.3, 1.865, 0.360, 0.406),
                                                                    rel=2e-3)


def test_mean_reduced_objective_barely_moves_from_hoffmanns_values(epoch_points):
    """Epoch's diagnosis of Hoffmann's estimates: averaging + default tolerances stop early."""
    start = np.array([[6.0073404, 6.0179186, 0.5267228, 0.33917084, 0.2849083]])
    fit = LawFit("chinchilla", Objective(reduction="mean"), starts=start, top_k=1,
                 scale_objective=False)
    p = fit.fit(epoch_points, epoch_points["loss"]).natural_
    assert p["A"] == pytest.approx(406.4, rel=1e-3) and p["alpha"] == pytest.approx(0.339, abs=1e-3)
    # the engine's default (objective scaled to 1 at the start) walks on to the real optimum
    rescued = LawFit("chinchilla", Objective(reduction="mean"), starts=start, top_k=1)
    assert rescued.fit(epoch_points, epoch_points["loss"]).natural_["A"] == pytest.approx(477.8, rel=1e-3)


def test_extrapolation_fit_below_1e20_flops(epoch_points):
    """The flat-objective row of §4: only C ≤ 1e20 (136 points); loose tolerances."""
    small = epoch_points[epoch_points["N"] * epoch_points["D"] * 6 <= 1e20]
    fit = LawFit("chinchilla").fit(small, small["loss"])
    p = fit.natural_
    assert fit.n_points_ == 136
    assert 255 < p["A"] < 280 and 1.86 < p["E"] < 1.87 and 0.310 < p["alpha"] < 0.314
    ratio = chinchilla_derived([5.88e23])({k: np.array([v]) for k, v in p.items()})
    assert 2.4 < ratio["D_over_N@5.88e23"][0] < 2.8


def test_compute_optimal_allocation_from_the_refit(epoch_fit):
    derived = chinchilla_derived([5.88e23])({k: np.array([v]) for k, v in epoch_fit.natural_.items()})
    assert derived["N_opt@5.88e23"][0] == pytest.approx(7.4e10, rel=0.01)
    assert derived["D_over_N@5.88e23"][0] == pytest.approx(17.9, abs=0.1)
    assert derived["a"][0] == pytest.approx(0.514, abs=0.001)


def test_hoffmann_rounded_parameters_misfit_the_reconstructed_points(epoch_points):
    n, d, y = epoch_points["N"], epoch_points["D"], epoch_points["loss"]
    pred = 1.69 + 406.4 / n**0.34 + 410.7 / d**0.28
    summary = residual_summary(y, pred)
    assert summary["mean_residual"] == pytest.approx(-0.045, abs=0.001)
    assert summary["rmse"] == pytest.approx(0.053, abs=0.001)


def test_bootstrap_ci_width_of_the_exponents(epoch_fit):
    """A short bootstrap already shows CIs of Epoch's width (paper: α (0.317, 0.373))."""
    epoch_fit.bootstrap(200, seed=42, n_jobs=2)
    low, high = epoch_fit.intervals()["alpha"]
    assert 0.30 < low < 0.33 and 0.36 < high < 0.39


def test_porian_exponents_for_all_fifteen_configurations():
    df = pd.read_csv(DATA / "porian2024_optimal_pairs.csv")
    keys = ["dataset", "hparams", "warmup", "decay", "param_count", "loss_source"]
    found = {}
    for key, group in df.groupby(keys):
        used = group.dropna(subset=["n_opt"])
        found["/".join(key)] = weighted_power_law(used["flops"], used["n_opt"],
                                                  1 / used["n_star_std_log"] ** 2)[0]
    assert set(found) == set(PORIAN_EXPONENTS)
    for setting, value in PORIAN_EXPONENTS.items():
        assert found[setting] == pytest.approx(value, abs=6e-4), setting


def test_porian_isoflop_estimators_on_tuned_rw():
    df = pd.read_csv(DATA / "porian2024_isoflop_points.csv")
    tuned = df.query("dataset == 'rw' and hparams == 'tuned' and warmup == 'short' and "
                     "decay == 'const' and param_count == 'standard'")
    a = {name: fit_isoflop(isoflop_optima(tuned, **kw)).exponent for name, kw in {
        "parabola": dict(method="parabola"), "window": dict(method="parabola", window=3),
        "akima_plain": dict(method="akima"),
        "akima": dict(method="akima", noise_resamples=200, noise_sigma=0.002, seed=0)}.items()}
    assert a["parabola"] == pytest.approx(0.514, abs=0.003)
    assert a["window"] == pytest.approx(0.502, abs=0.001)
    assert a["akima_plain"] == pytest.approx(0.497, abs=0.001)
    assert a["akima"] == pytest.approx(0.497, abs=0.003)  # seed noise moves it by ~0.002


def test_gadre_five_point_protocol_on_redpajama():
    from scaling_atlas.studies.published import gadre

    df = pd.read_csv(DATA / "gadre2024_overtraining_models.csv")
    import xarray as xr

    fits = gadre.fit(xr.Dataset.from_dataframe(df.reset_index(drop=True)))["gadre"]
    rpj = fits.sel(training_data="rpj")
    assert float(rpj["E"]) == pytest.approx(1.8366, rel=1e-3)
    assert float(rpj["a"]) == pytest.approx(166.21, rel=2e-3)
    assert float(rpj["b"]) == pytest.approx(366.69, rel=2e-3)
    assert float(rpj["eta"]) == pytest.approx(-0.2729, rel=1e-3)
    assert 100 * float(rpj["rel_error_1b"]) == pytest.approx(0.71, abs=0.005)
    assert 100 * float(rpj["rel_error_7b"]) == pytest.approx(0.73, abs=0.005)
    assert 100 * float(fits.sel(training_data="c4")["rel_error_7b"]) == pytest.approx(4.3, abs=0.05)


@pytest.mark.parametrize("size,r2,pred_e", [(25, 0.9988, 0.00110), (100, 0.9983, 0.00142),
                                            (400, 0.9978, 0.00168)])
def test_multi_power_law_with_published_parameters_on_the_test_schedules(size, r2, pred_e):
    tests = ["constant_72000", "cosine_72000", "wsd_20000_24000", "wsdld_20000_24000", "wsdcon_3",
             "wsdcon_18"]
    r2s, errors = [], []
    for schedule in tests:
        curve = pd.read_csv(DATA / "luo2025_mpl_loss_curves" / f"N{size}M_{schedule}.csv")
        curve = curve[curve["step"] < 24000] if schedule.endswith("24000") else curve
        form = MultiPowerLawForm([lr_schedule(schedule)])
        pred = form.predict(np.array([MPL_PUBLISHED[size]]),
                            {"curve": np.zeros(len(curve)), "step": curve["step"].to_numpy()})[0]
        summary = residual_summary(curve["loss"].to_numpy(), pred)
        r2s.append(summary["r2"])
        errors.append(summary["mean_relative_error"])
    assert np.mean(r2s) == pytest.approx(r2, abs=5e-5)
    assert np.mean(errors) == pytest.approx(pred_e, abs=5e-6)
