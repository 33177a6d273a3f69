"""Do the engine's prediction intervals hold when a law extrapolates? Every published dataset
with (N, D, C, loss) (Epoch's, Gadre's, Porian's tuned RefinedWeb, the (Mis)Fitting runs and
Open-Athena's IsoFLOP compilation), fitted on its smaller part and scored on the larger."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import xarray as xr

from scaling_atlas.cubes import describe_variables
from scaling_atlas.figures import new_figure
from scaling_atlas.laws import FitWarning, LawFit, interval_coverage
from scaling_atlas.studies.published.common import Obtain, in_group, table

MISFITTING_FILE = "li2025_misfitting_scaling_results_last_ckpt_only.csv"
OPENATHENA_FILE = "openathena_isoflops_extract.csv"
#: nominal levels of the prediction-interval coverage table
LEVELS = (0.5, 0.8, 0.95)


# ---- data ------------------------------------------------------------------------------------
def prepare_misfitting_runs(obtain: Obtain) -> xr.Dataset:
    df = pd.read_csv(obtain(MISFITTING_FILE))
    df = df[["model", "N", "D", "C_6ND", "peak_lr", "loss"]].astype(
        {"N": float, "D": float, "C_6ND": float})  # C_6ND exceeds int64
    meta = {"model": ("model shape", "1"), "N": ("parameters incl. embeddings", "1"),
            "D": ("training tokens", "token"), "C_6ND": ("compute 6·N·D", "FLOP"),
            "peak_lr": ("peak learning rate", "1"),
            "loss": ("final training loss", "nats/token")}
    return table(df, "run", meta, source="Li et al. 2025 (hadasah/scaling_laws@1f3708c), "
                                          "the last checkpoint of every run")


def prepare_openathena_isoflops(obtain: Obtain) -> xr.Dataset:
    df = pd.read_csv(obtain(OPENATHENA_FILE))
    df = df[["source", "experiment", "params", "tokens", "budget", "loss"]]
    meta = {"source": ("publication the points come from", "1"),
            "experiment": ("source, data and model: one IsoFLOP family", "1"),
            "params": ("model parameters (as each source counts them)", "1"),
            "tokens": ("training tokens", "token"), "budget": ("compute budget", "FLOP"),
            "loss": ("loss as each source reports it", "nats/token")}
    return table(df, "point", meta,
                 source="Open-Athena/scaling-law-analysis@3e0656e data/isoflops/extract "
                        "(ml-scalefit's Chinchilla IsoFLOPs, Epoch, (Mis)Fitting, Llama 3, "
                        "Marin 2026-03)")


DATASETS = {"misfitting_runs": prepare_misfitting_runs,
            "openathena_isoflops": prepare_openathena_isoflops}


def extra_data(cube) -> dict[str, pd.DataFrame]:
    """(N, D, C, loss) of the datasets only the coverage table uses."""
    runs = cube["misfitting_runs"].to_dataset().to_dataframe()
    # several peak learning rates per (N, D): the best one's loss, as a tuned ladder would
    best = runs.groupby(["N", "D"], as_index=False)["loss"].min()
    data = {"(Mis)Fitting, best LR": best.assign(C=6 * best["N"] * best["D"])}
    iso = cube["openathena_isoflops"].to_dataset().to_dataframe()
    for experiment, d in iso.groupby("experiment", sort=True):
        data[f"Open-Athena {experiment.replace('__', '/')}"] = pd.DataFrame(
            {"N": d["params"], "D": d["tokens"], "C": d["budget"], "loss": d["loss"]})
    return data


# ---- the table -------------------------------------------------------------------------------
TABLE_VARIABLES = {
    "dataset": ("published dataset", "1"), "split": ("held-out protocol", "1"),
    "nominal": ("nominal coverage of the prediction interval", "1"),
    "coverage": ("fraction of held-out points inside the interval", "1"),
    "parameter_only_coverage": ("the same for the parameter-bootstrap part alone", "1"),
    "n_test": ("held-out points", "1"), "n_train": ("points fitted", "1"),
    "median_relative_error": ("median |predicted − observed|/observed on held-out points", "1"),
    "identified": ("1 if the training fit is identified", "1")}
VARIABLES = in_group("prediction_coverage", TABLE_VARIABLES)


def coverage_table(data: dict[str, pd.DataFrame], resamples: int, seed: int,
                   n_jobs: int | None = None, levels=LEVELS) -> xr.Dataset:
    """For each dataset (N, D, C, loss), the Chinchilla law fitted on the smaller part, its
    prediction intervals scored on the held-out larger part (the largest sizes holding ≥ 10 % of
    the points; the top 20 % of C)."""
    rows = []
    for dataset, d in data.items():
        # the largest model sizes that hold ≥ 10 % of the points (and ≥ 3): Epoch's N are
        # read off a figure and Gadre's largest size is one run, so one size is too few
        sizes = np.sort(d["N"].unique())[::-1]
        counts = np.cumsum([int((d["N"] == n).sum()) for n in sizes])
        cut = sizes[int(np.argmax(counts >= max(3, math.ceil(0.1 * len(d)))))]
        splits = {"largest N held out (≥ 10 % of points)": d["N"] < cut,
                  "compute cut (top 20 % of C held out)": d["C"] <= d["C"].quantile(0.8)}
        for split, train in splits.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FitWarning)
                scored = interval_coverage(LawFit("chinchilla"), d, d["loss"], train.to_numpy(),
                                           levels=levels, n_resamples=resamples, seed=seed,
                                           n_jobs=n_jobs)
            rows.extend({"dataset": dataset, "split": split, **row} for row in scored.to_dict("records"))
    ds = xr.Dataset.from_dataframe(pd.DataFrame(rows).set_index(["dataset", "split", "nominal"]))
    describe_variables(ds, TABLE_VARIABLES)
    ds.attrs.update(method="LawFit('chinchilla') (log-Huber δ=1e-3) on the training rows; "
                           f"{resamples} bootstrap refits; interval = "
                           "central percentiles of bootstrap predictions plus resampled "
                           "log-residuals (LawFit.predict_interval)",
                    seed=seed)
    return ds


def draw(study, cube, fits):
    cov = fits["prediction_coverage"].to_dataset()
    datasets = list(cov["dataset"].values.astype(str))
    fig, axes = new_figure(len(cov["split"]), 1, width=4.4, height=0.32 * len(datasets) + 1.6,
                           sharey=True)
    axes = axes[0]
    rows = np.arange(len(datasets))
    markers = {0.5: "o", 0.8: "s", 0.95: "D"}
    for ax, split in zip(axes, cov["split"].values.astype(str)):
        for level in cov["nominal"].values:
            colour = f"C{list(markers).index(float(level)) % 10}"
            sel = cov.sel(split=split, nominal=level)
            ax.axvline(level, color=colour, lw=0.8, ls="--")
            ax.scatter(sel["coverage"], rows, marker=markers.get(float(level), "o"),
                       color=colour, s=22, label=f"nominal {level:.0%}")
        held = cov["n_test"].sel(split=split).max("nominal").values.astype(int)
        for row, count in zip(rows, held):
            ax.text(1.03, row, f"{count}", fontsize=7, va="center",
                    transform=ax.get_yaxis_transform())
        ax.text(1.03, -0.9, "held\nout", fontsize=7, va="bottom",
                transform=ax.get_yaxis_transform())
        ax.set(xlim=(-0.02, 1.02), xlabel="held-out points inside the interval",
               title=str(split).replace(" (", "\n("))
    axes[0].set_yticks(rows, datasets, fontsize=7)
    axes[0].invert_yaxis()
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=3, fontsize=7)
    return fig


FIGURES = {
    "prediction_coverage": (
        "Prediction intervals tested by extrapolation: fit the Chinchilla law on the smaller "
        "part of each published dataset, predict the held-out larger part with an interval "
        "(parameter bootstrap + residual scatter), and count the held-out points inside it "
        "against the nominal level (dashed). fits.nc group prediction_coverage holds the "
        "table.", draw),
}
