"""Porian et al. 2024, "Resolving discrepancies in compute-optimal scaling of language models":
the exponent a of N*(C) under 15 configurations, from their optimal pairs, and Approach 2 on
their tuned-RefinedWeb IsoFLOP points under three estimators of each budget's minimum."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import xarray as xr

from scaling_atlas.claims import ClaimSpec, Measured
from scaling_atlas.cubes import describe_variables
from scaling_atlas.figures import new_figure
from scaling_atlas.laws import fit_isoflop, isoflop_optima, weighted_power_law
from scaling_atlas.studies.published.common import CHINCHILLA_C, LOSS, Obtain, by_row, in_group, table

ISOFLOP_FILE = "porian2024_isoflop_points.csv"
OPTIMAL_FILE = "porian2024_optimal_pairs.csv"
#: the columns that name a configuration, and the tuned RefinedWeb one (their headline exponent)
KEYS = ["dataset", "hparams", "warmup", "decay", "param_count", "loss_source"]
TUNED_RW = ("rw", "tuned", "short", "const", "standard", "val")
SOURCE = "Porian et al. 2024 (formll@0dc60d9)"


def tuned_rw(points: pd.DataFrame) -> pd.DataFrame:
    """Porian's tuned RefinedWeb configuration (the one their headline exponent uses)."""
    return points[(points[KEYS] == pd.Series(TUNED_RW, index=KEYS)).all(axis=1)]


# ---- data ------------------------------------------------------------------------------------
def _configuration() -> dict[str, tuple[str, str]]:
    return {c: (f"configuration: {c}", "1") for c in KEYS}


def prepare_isoflop(obtain: Obtain) -> xr.Dataset:
    meta = _configuration() | {
        "flops": ("compute budget", "FLOP"), "n_params": ("model parameters", "1"),
        "n_tokens": ("training tokens", "1"), "loss": ("loss at the budget", "nats/token")}
    return table(pd.read_csv(obtain(ISOFLOP_FILE)), "point", meta, source=SOURCE)


def prepare_optimal(obtain: Obtain) -> xr.Dataset:
    meta = _configuration() | {
        "flops": ("compute budget", "FLOP"), "n_opt": ("optimal parameters N*", "1"),
        "t_opt": ("optimal tokens", "1"), "loss_opt": ("loss at the optimum", "nats/token"),
        "n_star_std_log": ("bootstrap std of ln N*", "1"),
        "t_star_std_log": ("bootstrap std of ln D*", "1")}
    return table(pd.read_csv(obtain(OPTIMAL_FILE)), "pair", meta, source=SOURCE)


DATASETS = {"porian_isoflop": prepare_isoflop, "porian_optimal": prepare_optimal}


# ---- fits ------------------------------------------------------------------------------------
VARIABLES = {
    **in_group("porian_optimal", {
        "setting": ("Porian et al.'s configuration: dataset/hparams/warmup/decay/param_count/"
                    "loss_source", "1"),
        "exponent_a": ("exponent a of N* ∝ C^a (weighted least squares of ln N* on ln C)", "1"),
        "intercept": ("intercept k of ln N* = k + a ln C", "1"),
        "r2": ("R² of the weighted fit", "1"),
        "a_ci_low": ("2.5th percentile of a over budget resamples", "1"),
        "a_ci_high": ("97.5th percentile of a over budget resamples", "1"),
        "n_opt_at_chinchilla": ("N* of the fit at Chinchilla's compute, 5.88e23 FLOP", "1"),
        "n_budgets": ("budgets with an optimum, fitted", "1"),
        "n_dropped": ("budgets without an optimum (discarded by the authors)", "1")}),
    **in_group("porian_isoflop", {
        "estimator": ("how each budget's optimum is found", "1"),
        "budget": ("compute budget", "FLOP"),
        "exponent_a": ("exponent a of N* ∝ C^a over the used budgets", "1"),
        "intercept": ("intercept k of ln N* = k + a ln C", "1"),
        "n_opt": ("loss-minimising N", "1"), "loss_opt": ("loss at the minimum", LOSS),
        "used": ("1 if the budget's optimum enters the fit (not on the sampled range's edge)", "1")}),
}


def fit(optimal: xr.Dataset, isoflop: xr.Dataset, settings: dict) -> dict[str, xr.Dataset]:
    return {"porian_optimal": _fit_optimal(optimal.to_dataframe(), settings),
            "porian_isoflop": _fit_isoflop(isoflop.to_dataframe(), settings)}


def _fit_optimal(optimal: pd.DataFrame, settings: dict) -> xr.Dataset:
    """a of N* ∝ C^a per configuration (weighted least squares), with a bootstrap over budgets."""
    settings_names, rows = [], []
    for key, group in optimal.groupby(KEYS, sort=False):
        used = group.dropna(subset=["n_opt"])
        weights = 1.0 / used["n_star_std_log"] ** 2
        a, k, r2 = weighted_power_law(used["flops"], used["n_opt"], weights)
        rng = np.random.default_rng(settings["bootstrap_seed"])
        slopes = []
        for _ in range(settings["porian_budget_resamples"]):
            idx = rng.integers(0, len(used), len(used))
            if len(set(idx)) > 1:
                slopes.append(weighted_power_law(used["flops"].iloc[idx], used["n_opt"].iloc[idx],
                                                 weights.iloc[idx])[0])
        low, high = np.percentile(slopes, [2.5, 97.5]) if slopes else (math.nan, math.nan)
        settings_names.append("/".join(key))
        rows.append({"exponent_a": a, "intercept": k, "r2": r2, "a_ci_low": low, "a_ci_high": high,
                     "n_opt_at_chinchilla": math.exp(k) * CHINCHILLA_C**a,
                     "n_budgets": len(used), "n_dropped": len(group) - len(used)})
    opt = by_row(pd.DataFrame(rows), "setting", settings_names)
    opt.attrs.update(method="WLS of ln n_opt on ln flops, weights 1/n_star_std_log²",
                     ci_method="percentile bootstrap over budgets (ours; Porian's own CIs "
                               "come from their seed-noise replicates)",
                     excluded_points="budgets with empty n_opt (discarded by the authors)")
    return opt


def _fit_isoflop(points: pd.DataFrame, settings: dict) -> xr.Dataset:
    """Approach 2 on the tuned-RW IsoFLOP points: each budget's minimum, then N* ∝ C^a."""
    tuned = tuned_rw(points)
    estimators = {
        "parabola, all points": dict(method="parabola"),
        "parabola, 3 nearest each side": dict(method="parabola", window=3),
        "Akima + seed-noise bootstrap": dict(method="akima",
                                             noise_resamples=settings["isoflop_noise_resamples"],
                                             noise_sigma=0.002, seed=settings["bootstrap_seed"]),
    }
    results = {name: fit_isoflop(isoflop_optima(tuned, **kw)) for name, kw in estimators.items()}
    budgets = results["parabola, all points"].optima["flops"].to_numpy()
    iso = xr.Dataset(coords={"estimator": list(results), "budget": budgets})
    iso["exponent_a"] = ("estimator", [r.exponent for r in results.values()])
    iso["intercept"] = ("estimator", [r.intercept for r in results.values()])
    for var in ("n_opt", "loss_opt"):
        iso[var] = (("estimator", "budget"),
                    np.stack([r.optima[var].to_numpy() for r in results.values()]))
    iso["used"] = (("estimator", "budget"),
                   np.stack([r.optima["used"].to_numpy(int) for r in results.values()]))
    iso.attrs.update(setting="/".join(TUNED_RW), seed_noise_sigma=0.002,
                     loss_space=results["parabola, all points"].settings["space"],
                     noise_resamples=settings["isoflop_noise_resamples"],
                     regression="ln N* on ln C over used budgets: OLS for the parabolas, WLS with "
                                "weights 1/σ²(ln N*) for the seed-noise bootstrap",
                     excluded_points="budgets whose minimum lies on the sampled N range's edge")
    describe_variables(iso, {"budget": ("compute budget", "FLOP"), "n_opt": ("loss-minimising N", "1"),
                             "loss_opt": ("loss at the minimum", "nats/token")})
    return iso


# ---- figures ---------------------------------------------------------------------------------
def draw_isoflop_curves(study, cube, fits):
    from matplotlib import colormaps

    tuned = tuned_rw(cube["porian_isoflop"].to_dataset().to_dataframe())
    iso = fits["porian_isoflop"].to_dataset()
    akima = iso.sel(estimator="Akima + seed-noise bootstrap")
    fig, axes = new_figure(ncols=2, width=4.6, height=3.8)
    ax, ax2 = axes[0]
    budgets = sorted(tuned["flops"].unique())
    colours = dict(zip(budgets, colormaps["plasma"](np.linspace(0, 0.9, len(budgets)))))
    for c, group in tuned.groupby("flops"):
        group = group.sort_values("n_params")
        ax.plot(group["n_params"], group["loss"], "o-", ms=3, lw=1, color=colours[c])
    ax.scatter(akima["n_opt"], akima["loss_opt"], marker="*", s=90, color="k", zorder=3,
               label="Akima minimum")
    ax.set(xscale="log", xlabel="parameters N", ylabel="loss", title="IsoFLOP profiles (tuned RW)")
    ax.legend()
    for name, colour in zip(iso["estimator"].values, ("C0", "C1", "C3")):
        row = iso.sel(estimator=name)
        used = row["used"].values.astype(bool)
        ax2.scatter(row["budget"][used], row["n_opt"][used], s=14, color=colour)
        line = np.exp(float(row["intercept"])) * iso["budget"].values ** float(row["exponent_a"])
        ax2.plot(iso["budget"], line, color=colour, lw=1,
                 label=f"{name}: a = {float(row['exponent_a']):.3f}")
    ax2.set(xscale="log", yscale="log", xlabel="compute C [FLOP]", ylabel="N*",
            title="per-budget optima and N* ∝ C^a")
    ax2.legend(fontsize=7)
    return fig


FIGURES = {
    "isoflop_curves": (
        "Porian et al.'s IsoFLOP profiles (tuned RW): loss vs N per budget, the Akima minimum "
        "per budget, and the fitted N*(C).", draw_isoflop_curves),
}


# ---- claims ----------------------------------------------------------------------------------
#: §5.3 of the reference: exponent a of N*(C), keyed like our settings (dataset/hparams/…)
EXPONENTS = {
    "rw/base/long/kaplan/kaplan/train": 0.835,
    "rw/base/long/kaplan/standard/val": 0.706,
    "rw/base/short/kaplan/standard/val": 0.602,
    "rw/base/short/chinchilla/standard/val": 0.571,
    "rw/tuned/short/const/standard/val": 0.497,
    "owt2/base/long/kaplan/kaplan/train": 0.864,
    "owt2/base/long/kaplan/standard/val": 0.699,
    "owt2/base/short/kaplan/standard/val": 0.603,
    "owt2/base/short/chinchilla/standard/val": 0.574,
    "owt2/tuned/short/const/standard/val": 0.518,
    "rw/tuned/long/const/kaplan/train": 0.711,
    "rw/base/long/kaplan/attention/train": 0.717,
    "rw/base/short/kaplan/attention/train": 0.622,
    "rw/base/short/chinchilla/attention/train": 0.577,
    "rw/tuned/short/const/attention/train": 0.505,
}
ESTIMATORS = (("parabola_all", "parabola, all points", 0.514),
              ("parabola_window3", "parabola, 3 nearest each side", 0.502),
              ("akima_noise", "Akima + seed-noise bootstrap", 0.497))

CLAIMS = (
    *(ClaimSpec(f"porian_a_{setting.replace('/', '_')}", f"Porian N*(C) exponent a, {setting}",
                f"{value}", "code", value, 0.002)
      for setting, value in EXPONENTS.items()),
    *(ClaimSpec(f"porian_estimator_{cid}", f"Approach 2 on tuned RW IsoFLOP points, {name}: a",
                f"{value}", "recomputed", value, 0.005)
      for cid, name, value in ESTIMATORS),
)


def measure(cube, fits) -> dict[str, Measured]:
    opt = fits["porian_optimal"].to_dataset()
    iso = fits["porian_isoflop"].to_dataset()
    return {
        **{f"porian_a_{setting.replace('/', '_')}": Measured(opt["exponent_a"].sel(setting=setting))
           for setting in EXPONENTS},
        **{f"porian_estimator_{cid}": Measured(iso["exponent_a"].sel(estimator=name))
           for cid, name, _ in ESTIMATORS},
    }
