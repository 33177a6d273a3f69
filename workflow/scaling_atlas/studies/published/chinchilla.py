"""Hoffmann et al. 2022 (Chinchilla) as Besiroglu et al. 2024 (Epoch) reconstructed it: the
Approach-3 points read off the paper's figure, refitted with the Chinchilla law, and Epoch's
findings about the fit (its parameters, their bootstrap intervals, how fitting choices move the
compute-optimal tokens per parameter, how Hoffmann's own parameters fit the points)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import xarray as xr

from scaling_atlas.claims import ClaimSpec, Measured
from scaling_atlas.figures import new_panel
from scaling_atlas.laws import (
    LawFit,
    Objective,
    chinchilla_derived,
    compute_cut_score,
    holdout_score,
    optimal_allocation,
    residual_summary,
)
from scaling_atlas.laws.compute_optimal import frontier_band
from scaling_atlas.laws.validation import residual_summary_variables
from scaling_atlas.studies.published.common import CHINCHILLA_C, LOSS, Obtain, by_row, in_group, table
from scaling_atlas.studies.published.porian import TUNED_RW

FILE = "chinchilla_besiroglu2024_svg_extracted_data.csv"

#: Hoffmann et al.'s Approach-3 parameters: paper body (rounded) and TeX source (unrounded)
HOFFMANN = {
    "rounded": {"A": 406.4, "B": 410.7, "E": 1.69, "alpha": 0.34, "beta": 0.28},
    "unrounded": {"A": 406.4010, "B": 410.7228, "E": 1.6933737, "alpha": 0.33917084,
                  "beta": 0.2849083},
}


def hoffmann_theta(which: str) -> np.ndarray:
    """Hoffmann et al.'s parameters as a (1, 5) vector in the chinchilla form's (ln A, ln B,
    ln E, α, β) parametrisation."""
    p = HOFFMANN[which]
    return np.array([[math.log(p["A"]), math.log(p["B"]), math.log(p["E"]), p["alpha"], p["beta"]]])


# ---- data ------------------------------------------------------------------------------------
def prepare(obtain: Obtain) -> xr.Dataset:
    df = pd.read_csv(obtain(FILE))
    df = pd.DataFrame({"N": df["Model Size"], "C": df["Training FLOP"], "loss": df["loss"]})
    df["D"] = df["C"] / (6 * df["N"])
    return table(df, "point", {
        "N": ("model parameters (Hoffmann et al.'s count)", "1"),
        "C": ("training compute", "FLOP"),
        "D": ("training tokens, C/(6N)", "1"),
        "loss": ("final training loss (read from the figure's colour bar)", "nats/token"),
    }, source="Besiroglu et al. 2024 (epoch-research/analyzing-chinchilla@9225883)")


DATASETS = {"chinchilla": prepare}


def epoch_points(chinchilla: xr.Dataset, exclude: int) -> pd.DataFrame:
    """Epoch's points without the ``exclude`` highest-loss ones (Epoch drops 5)."""
    df = chinchilla.to_dataframe()
    return df.sort_values("loss", kind="stable").iloc[: len(df) - exclude]


# ---- fits ------------------------------------------------------------------------------------
VARIABLES = {
    **in_group("epoch_extrapolation", {
        "protocol": ("extrapolation protocol: what is fitted, what is scored", "1"),
        **residual_summary_variables(LOSS, "train_"), **residual_summary_variables(LOSS, "test_")}),
    **in_group("epoch_variants", {
        "variant": ("fitting choice (objective, points, starts)", "1"),
        "E": ("irreducible loss E of L = E + A/N^α + B/D^β", LOSS),
        "A": ("coefficient A of the parameter term A/N^α", LOSS),
        "B": ("coefficient B of the data term B/D^β", LOSS),
        "alpha": ("exponent α of N", "1"), "beta": ("exponent β of D", "1"),
        "a": ("a = β/(α+β): N_opt ∝ C^a", "1"), "b": ("b = α/(α+β): D_opt ∝ C^b", "1"),
        "n_points": ("points fitted", "1")}),
    **in_group("hoffmann", {
        "parameter_set": ("Hoffmann et al.'s published parameters (rounded as printed, or "
                          "unrounded)", "1"),
        **residual_summary_variables(LOSS)}),
}


def derived_variables(budgets) -> dict[str, tuple[str, str]]:
    """The Chinchilla fit's derived quantities at each configured budget (N_opt@C, …)."""
    out = {}
    for c in budgets:
        tag = f"{float(c):.3g}".replace("+", "")  # as laws.chinchilla_derived names them
        out.update({f"N_opt@{tag}": (f"compute-optimal N at C = {tag} FLOP", "1"),
                    f"D_opt@{tag}": (f"compute-optimal D at C = {tag} FLOP", "token"),
                    f"D_over_N@{tag}": (f"tokens per parameter at the optimum, C = {tag} FLOP",
                                        "token/parameter")})
    return in_group("epoch_variants", out)


def fit(chinchilla: xr.Dataset, settings: dict, n_jobs=None) -> dict[str, xr.Dataset]:
    """The log-Huber refit with its bootstrap and frontier band, Epoch's ≈ log-MAE estimate,
    VPNLS, the fitting-choice variants, extrapolation scores and Hoffmann's residuals."""
    points = epoch_points(chinchilla, settings["epoch_exclude_highest"])
    excluded = f"the {settings['epoch_exclude_highest']} highest-loss points (Epoch's rule)"
    bookkeeping = {"N": "Hoffmann et al.'s parameter count", "C": "as plotted in Hoffmann Fig. 4",
                   "D": "C/(6N)"}
    derived = chinchilla_derived(settings["budgets"])
    huber = LawFit("chinchilla", bookkeeping=bookkeeping).fit(points, points["loss"],
                                                              excluded=excluded)
    huber.bootstrap(settings["bootstrap_resamples"], seed=settings["bootstrap_seed"],
                    n_jobs=n_jobs, derived=derived)
    ds = huber.to_dataset()
    # the frontier N*(C) on a compute grid, with the bootstrap band
    ds = ds.merge(frontier_band(huber, np.geomspace(1e18, 1e25, 57)))
    summary = residual_summary(points["loss"].to_numpy(), huber.predict(points))
    ds.attrs.update(residual_mean=summary["mean_residual"], residual_rmse=summary["rmse"])
    # a = β/(α+β): 80 % interval width, as in Epoch's claim about Hoffmann's CI
    a_draws = derived(huber.draws_)["a"]
    ds.attrs["a_ci80_width"] = float(np.subtract(*np.nanpercentile(a_draws, [90, 10])))

    mae = LawFit("chinchilla", Objective("mae"), top_k=8, bookkeeping=bookkeeping,
                 derived=derived)
    mae.fit(points, points["loss"], excluded=excluded)
    vpnls = LawFit("chinchilla", solver="vpnls", bookkeeping=bookkeeping, derived=derived)
    vpnls.fit(points, points["loss"], excluded=excluded)
    return {"epoch_huber": ds, "epoch_mae": mae.to_dataset(),
            "epoch_extrapolation": _extrapolation(points),
            "epoch_vpnls": vpnls.to_dataset(),
            "epoch_variants": _variants(epoch_points(chinchilla, 0), points, derived),
            "hoffmann": _hoffmann_residuals(points)}


def _variants(all_points: pd.DataFrame, points: pd.DataFrame, derived) -> xr.Dataset:
    """§4 of the reference: the same data, different fitting choices, different answers."""
    small = points[points["C"] <= 1e20]
    hoffmann_start = hoffmann_theta("unrounded")
    variants = {
        "log-Huber δ=1e-3, summed (baseline)": (LawFit("chinchilla"), points),
        "log-MAE": (LawFit("chinchilla", Objective("mae"), top_k=4), points),
        "log-MSE": (LawFit("chinchilla", Objective("mse")), points),
        "Huber on raw loss": (LawFit("chinchilla", Objective(space="linear")), points),
        "all 245 points": (LawFit("chinchilla"), all_points),
        # these two reproduce plain scipy on the raw objective, as the fits they mimic did
        "single start at 0": (LawFit("chinchilla", starts=np.zeros((1, 5)), top_k=1,
                                     scale_objective=False), points),
        "mean-reduced, Hoffmann start": (
            LawFit("chinchilla", Objective(reduction="mean"), starts=hoffmann_start, top_k=1,
                   scale_objective=False), points),
        "only C ≤ 1e20": (LawFit("chinchilla"), small),
    }
    rows = []
    for law, data in variants.values():
        law.fit(data, data["loss"])
        row = dict(law.natural_)
        row.update({k: float(np.asarray(v).ravel()[0]) for k, v in derived(
            {k: np.array([v]) for k, v in law.natural_.items()}).items()})
        row["n_points"] = law.n_points_
        rows.append(row)
    ds = by_row(pd.DataFrame(rows), "variant", list(variants))
    ds.attrs["description"] = "fits of the Chinchilla form to Epoch's data under different choices"
    return ds


def _extrapolation(points: pd.DataFrame) -> xr.Dataset:
    """Held-out scores: fit below a compute cut and score above; hold out the largest N."""
    flops = 6 * points["N"] * points["D"]
    scores = {
        "fit C ≤ 1e20, score C > 1e20": compute_cut_score(LawFit("chinchilla"), points,
                                                           points["loss"], flops, 1e20),
        # Epoch's N values are read off a figure, so "the largest model" is one point:
        # hold out the largest 10 % instead
        "fit the 90 % smallest N, score the rest": holdout_score(
            LawFit("chinchilla"), points, points["loss"],
            points["N"] < points["N"].quantile(0.9)),
    }
    ds = by_row(pd.DataFrame(scores).T, "protocol", list(scores), float)
    ds.attrs["description"] = ("extrapolation tests of the log-Huber Chinchilla fit on Epoch's "
                               "points (residuals observed − predicted)")
    return ds


def _hoffmann_residuals(points: pd.DataFrame) -> xr.Dataset:
    form = LawFit("chinchilla").law_form
    rows = {}
    for name in HOFFMANN:
        pred = form.predict(hoffmann_theta(name),
                            {"N": points["N"].to_numpy(), "D": points["D"].to_numpy()})[0]
        rows[name] = residual_summary(points["loss"].to_numpy(), pred)
    ds = by_row(pd.DataFrame(rows).T, "parameter_set", list(rows), float)
    ds.attrs["description"] = "residuals of Hoffmann's parameters on Epoch's points"
    return ds


# ---- figures ---------------------------------------------------------------------------------
def draw_surface(study, cube, fits):
    pts = cube["chinchilla"].to_dataset()
    est = fits["epoch_huber"].to_dataset()["estimate"].to_series()
    fig, ax = new_panel(width=5.6, height=4.3)
    c_grid, n_grid = np.geomspace(5e17, 5e21, 200), np.geomspace(3e7, 3e10, 200)
    cc, nn = np.meshgrid(c_grid, n_grid)
    loss = est["E"] + est["A"] / nn ** est["alpha"] + est["B"] / (cc / (6 * nn)) ** est["beta"]
    levels = [2.0, 2.1, 2.2, 2.35, 2.5, 2.75, 3.0, 3.5]
    contours = ax.contour(cc, nn, loss, levels=levels, colors="0.35", linewidths=0.7)
    ax.clabel(contours, fontsize=6, fmt="%.2f", inline_spacing=2)
    sc = ax.scatter(pts["C"], pts["N"], c=pts["loss"], cmap="viridis_r", s=14,
                    vmax=4.0, edgecolors="none")
    fig.colorbar(sc, ax=ax, label="loss")
    n_opt, _, _ = optimal_allocation(est["A"], est["B"], est["alpha"], est["beta"], c_grid)
    ax.plot(c_grid, n_opt, color="C3", lw=2, label="compute-optimal N (refit)")
    ax.set(xscale="log", yscale="log", xlabel="training compute C [FLOP]",
           ylabel="parameters N", title="Chinchilla points and refit iso-loss contours")
    ax.legend(loc="upper left")
    return fig


def draw_frontier(study, cube, fits):
    fit = fits["epoch_huber"].to_dataset()
    flops = fit["frontier_flops"].values
    fig, ax = new_panel(width=5.4, height=4.0)
    ax.fill_between(flops, fit["frontier_n_low"], fit["frontier_n_high"], color="C0", alpha=0.25,
                    label="refit, 95 % bootstrap band")
    ax.plot(flops, fit["frontier_n_opt"], color="C0", label="refit (log-Huber, 240 points)")
    h = HOFFMANN["rounded"]
    n_h, _, _ = optimal_allocation(h["A"], h["B"], h["alpha"], h["beta"], flops)
    ax.plot(flops, n_h, "--", color="C1", label="Hoffmann et al. (rounded)")
    opt = fits["porian_optimal"].to_dataset().sel(setting="/".join(TUNED_RW))
    ax.plot(flops, np.exp(float(opt["intercept"])) * flops ** float(opt["exponent_a"]), ":",
            color="C2", label=f"Porian tuned RW: a = {float(opt['exponent_a']):.3f}")
    ax.axvline(CHINCHILLA_C, color="0.5", lw=0.8)
    ax.scatter([CHINCHILLA_C], [70e9], marker="*", color="k", zorder=3, label="Chinchilla 70B")
    ax.set(xscale="log", yscale="log", xlabel="compute C [FLOP]", ylabel="compute-optimal N",
           title="Compute-optimal frontier")
    ax.legend(fontsize=7)
    return fig


def draw_residuals(study, cube, fits):
    points = epoch_points(cube["chinchilla"].to_dataset(), study.settings["epoch_exclude_highest"])
    fit = fits["epoch_huber"].to_dataset()
    form = LawFit("chinchilla").law_form
    fig, ax = new_panel(width=5.4, height=3.8)
    X = {"N": points["N"].to_numpy(), "D": points["D"].to_numpy()}
    for label, theta, colour in (("Hoffmann et al. (rounded)", hoffmann_theta("rounded"), "C1"),
                                 ("our log-Huber refit", fit["theta"].values[None, :], "C0")):
        resid = np.log(form.predict(theta, X)[0]) - np.log(points["loss"].to_numpy())
        ax.scatter(points["C"], resid, s=10, color=colour, alpha=0.7,
                   label=f"{label}: mean {resid.mean():+.3f}, RMSE {np.sqrt(np.mean(resid**2)):.3f}")
    ax.axhline(0, color="k", lw=0.8)
    ax.set(xscale="log", xlabel="compute C [FLOP]", ylabel="ln L̂ − ln L",
           title="Residuals on Epoch's 240 points")
    ax.legend(fontsize=7)
    return fig


def draw_fitting_choices(study, cube, fits):
    from matplotlib.ticker import FixedLocator, NullFormatter, ScalarFormatter

    var = fits["epoch_variants"].to_dataset()
    fig, ax = new_panel(width=6.4, height=3.6)
    names = var["variant"].values.tolist()
    values = var[_at_chinchilla("D_over_N")].values
    ax.barh(names, values, color=["C0"] + ["C7"] * (len(names) - 1))
    for i, value in enumerate(values):
        ax.text(value * 1.05, i, f"{value:.1f}", va="center", fontsize=7)
    ax.axvline(20, color="C3", lw=1, label="Chinchilla's D/N = 20")
    ax.set(xscale="log", xlim=(1, 200), xlabel="tokens per parameter at 5.88e23 FLOP",
           title="Same data, different fitting choices")
    ax.xaxis.set_major_locator(FixedLocator([1, 2, 5, 10, 20, 50, 100, 200]))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.invert_yaxis()
    ax.legend(fontsize=7)
    return fig


FIGURES = {
    "chinchilla_surface": (
        "Epoch's reconstruction of Chinchilla's points (colour: loss) with the iso-loss "
        "contours of our log-Huber refit and its compute-optimal frontier.", draw_surface),
    "frontier": (
        "Compute-optimal N*(C): our Chinchilla refit with its 95 % bootstrap band, Hoffmann's "
        "rounded fit and Porian's tuned-RW IsoFLOP law.", draw_frontier),
    "residuals": (
        "Log-residuals on the 240 Epoch points: Hoffmann's published parameters vs our refit.",
        draw_residuals),
    "fitting_choices": (
        "Tokens per parameter at Chinchilla compute (5.88e23 FLOP) under different fitting "
        "choices on the same data.", draw_fitting_choices),
}


# ---- claims ----------------------------------------------------------------------------------
EPOCH_REFIT = {"A": 477.84, "E": 1.8172, "alpha": 0.34731, "beta": 0.36718}
EPOCH_PUBLISHED = {"A": (482.01, 1.0), "B": (2085.43, 10.0), "E": (1.817, 0.001),
                   "alpha": (0.3478, 0.0005), "beta": (0.3659, 0.0005)}
EPOCH_CI = {"A": (285.2, 743.6), "E": (1.769, 1.871), "alpha": (0.317, 0.373),
            "beta": (0.331, 0.415)}
CHOICES = (("log_mse", "log-MSE", 14.2, 0.2), ("all_points", "all 245 points", 6.8, 0.1),
           ("below_1e20", "only C ≤ 1e20", 2.65, 0.1))


def _at_chinchilla(quantity: str) -> str:
    """The name of a derived quantity at Chinchilla's compute (``D_over_N@5.88e23``)."""
    return f"{quantity}@{CHINCHILLA_C:.3g}".replace("+", "")


CLAIMS = (
    *(ClaimSpec(f"epoch_refit_{name}", f"Epoch refit (log-Huber, 4,500 starts): {name}",
                f"{value}", "code", value, 0.0005 * abs(value) + 1e-12)
      for name, value in EPOCH_REFIT.items()),
    ClaimSpec("epoch_refit_logB", "Epoch refit: ln B (flat direction)", "ln 2143.4–2143.9",
              "code", math.log(2143.6), 0.01),
    ClaimSpec("epoch_refit_objective", "Epoch refit: summed log-Huber objective",
              "0.0010183", "recomputed", 0.0010183, 1e-7),
    *(ClaimSpec(f"epoch_published_{name}", f"Epoch's published estimate (≈ log-MAE): {name}",
                f"{value}", "paper", value, tol)
      for name, (value, tol) in EPOCH_PUBLISHED.items()),
    *(spec for name, (low, high) in EPOCH_CI.items() for spec in (
        ClaimSpec(f"epoch_ci_{name}_low", f"Epoch 95 % bootstrap CI of {name}: lower bound",
                  f"({low}, {high})", "paper", low, 0.1 * (high - low),
                  "our bootstrap refits the log-Huber fit; Epoch's refits their "
                  "Huber-likelihood fit"),
        ClaimSpec(f"epoch_ci_{name}_high", f"Epoch 95 % bootstrap CI of {name}: upper bound",
                  f"({low}, {high})", "paper", high, 0.1 * (high - low)))),
    ClaimSpec("epoch_a", "a = β/(α+β) of the refit (Epoch: 0.513, agrees with Approaches "
              "1–2)", "0.514 (refit), 0.513 (published)", "paper", 0.514, 0.005),
    ClaimSpec("epoch_a_ci80_width", "80 % CI width of a with 240 points", "0.051", "paper",
              0.051, 0.01),
    ClaimSpec("epoch_n_opt", "N_opt at 5.88e23 FLOP from the refit (×1e10)", "7.4e10",
              "recomputed", 7.4, 0.05),
    ClaimSpec("epoch_tokens_per_param", "D/N at 5.88e23 FLOP from the refit", "17.9",
              "recomputed", 17.9, 0.1),
    *(ClaimSpec(f"choice_{cid}", f"Fitting choice '{variant}': D/N at 5.88e23 FLOP "
                "(baseline 17.9)", f"{value}", "recomputed", value, tol)
      for cid, variant, value, tol in CHOICES),
    ClaimSpec("hoffmann_residual_mean", "Hoffmann's rounded fit on Epoch's data: mean "
              "residual (loss − prediction)", "−0.045", "recomputed", -0.045, 0.001),
    ClaimSpec("hoffmann_residual_rmse", "Hoffmann's rounded fit on Epoch's data: residual "
              "RMSE", "0.053", "recomputed", 0.053, 0.001),
    ClaimSpec("epoch_residual_rmse", "Our refit on Epoch's data: residual RMSE (Epoch fit: "
              "0.022)", "0.022", "recomputed", 0.022, 0.001),
)


def measure(cube, fits) -> dict[str, Measured]:
    out = {}
    huber = fits["epoch_huber"].to_dataset()
    est = huber["estimate"].to_series()
    lo, hi = huber["ci_low"].to_series(), huber["ci_high"].to_series()
    out.update({f"epoch_refit_{name}": Measured(est[name]) for name in EPOCH_REFIT})
    out["epoch_refit_logB"] = Measured(math.log(est["B"]))
    out["epoch_refit_objective"] = Measured(huber.attrs["objective_value"])
    mae_est = fits["epoch_mae"].to_dataset()["estimate"].to_series()
    out.update({f"epoch_published_{name}": Measured(mae_est[name]) for name in EPOCH_PUBLISHED})
    for name in EPOCH_CI:
        out[f"epoch_ci_{name}_low"] = Measured(lo[name], f"(ours: {lo[name]:.4g}–{hi[name]:.4g})")
        out[f"epoch_ci_{name}_high"] = Measured(hi[name])
    derived = huber["derived"].to_series()
    out["epoch_a"] = Measured(derived["a"])
    out["epoch_a_ci80_width"] = Measured(huber.attrs["a_ci80_width"])
    out["epoch_n_opt"] = Measured(derived[_at_chinchilla("N_opt")] / 1e10)
    out["epoch_tokens_per_param"] = Measured(derived[_at_chinchilla("D_over_N")])
    variants = fits["epoch_variants"].to_dataset()
    out.update({f"choice_{cid}": Measured(variants[_at_chinchilla("D_over_N")].sel(variant=variant))
                for cid, variant, _, _ in CHOICES})
    hoff = fits["hoffmann"].to_dataset().sel(parameter_set="rounded")
    out["hoffmann_residual_mean"] = Measured(hoff["mean_residual"])
    out["hoffmann_residual_rmse"] = Measured(hoff["rmse"])
    out["epoch_residual_rmse"] = Measured(huber.attrs["residual_rmse"])
    return out
