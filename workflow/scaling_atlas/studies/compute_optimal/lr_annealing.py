"""Tissue et al. 2024's LR-annealing law on our own runs: per width, fitted on every trained
horizon but the longest, which it predicts (the loss curves' LR areas S₁, S₂ from each run's
own schedule)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from scaling_atlas.laws import LawFit, lr_areas
from scaling_atlas.train.spec import LMTrainSpec, lr_sequence, warmup_steps

#: the fit group's variables (the law's parameters in its natural form)
VARIABLES = {
    "lr_annealing/width": ("model width", "1"),
    "L0": ("loss floor L₀ of L = L₀ + A·S₁^(−α) − C·S₂", "nat/token"),
    "A": ("coefficient A of the forward-area term A·S₁^(−α)", "nat/token"),
    "alpha": ("exponent α of the forward LR area S₁", "1"),
    "C": ("annealing coefficient C of the annealing area S₂", "nat/token"),
    "heldout_mean_rel_error": ("mean |pred/obs − 1| on the held-out longest horizon", "1"),
    "fit_rmse": ("RMSE on the fitted curves", "nat/token"),
}

def schedule_areas(settings: dict, steps_total: int, at_steps: np.ndarray, peak_lr: float):
    """Tissue et al.'s LR areas S₁, S₂ of a run's schedule at ``at_steps``, from its own peak
    LR (with an LR sweep, each width's chosen one)."""
    spec = LMTrainSpec(tokens=1, lr=peak_lr, **{k: settings[k] for k in (
        "schedule", "warmup_fraction", "warmup_min_steps", "final_lr_fraction",
        "decay_fraction")})
    eta = np.concatenate([[0.0], lr_sequence(steps_total, spec)])  # η[τ]: LR of step τ ≥ 1
    warmup = warmup_steps(steps_total, spec.warmup_fraction, spec.warmup_min_steps)
    s1, s2 = lr_areas(eta, warmup=warmup)
    return s1[at_steps], s2[at_steps]


def annealing_points(cube, width, settings: dict) -> list[pd.DataFrame]:
    """Per trained horizon of one width: the validation points from 20 % of the run on (the
    Tissue law has no term for the initial plateau) with their LR areas S₁, S₂."""
    curves = []
    for budget in cube["budget"].values:
        run = cube.sel(width=width, budget=budget).isel(seed=0)
        if not np.isfinite(float(run["steps"])):
            continue
        step = run["curve_step"].values
        keep = np.isfinite(step) & (step >= 0.2 * float(run["steps"]))
        s1, s2 = schedule_areas(settings, int(run["steps"]), step[keep].astype(int),
                                float(run["lr"]))
        curves.append(pd.DataFrame({"S1": s1, "S2": s2, "loss": run["curve_val_loss"].values[keep],
                                    "tokens": run["curve_tokens"].values[keep],
                                    "horizon": int(run["steps"]), "budget": budget}))
    return curves


def fit(cube, settings: dict) -> xr.Dataset:
    """Tissue et al.'s law per width, fitted on all horizons but the longest, which it predicts."""
    rows = []
    for width in cube["width"].values:
        curves = annealing_points(cube, width, settings)
        if len(curves) < 2:
            continue
        data = pd.concat(curves)
        longest = data["horizon"].max()
        train, test = data[data["horizon"] < longest], data[data["horizon"] == longest]
        if len(train) < 8:  # 4 parameters: too few curve points to say anything
            continue
        fit = LawFit("lr_annealing").fit(train, train["loss"])
        pred = fit.predict(test)
        rows.append({"width": width, **{k: float(v) for k, v in fit.natural_.items()},
                     "heldout_mean_rel_error": float(np.mean(np.abs(pred / test["loss"] - 1))),
                     "fit_rmse": float(np.sqrt(np.mean((fit.predict(train) - train["loss"]) ** 2)))})
    table = pd.DataFrame(rows)
    ds = xr.Dataset.from_dataframe(table.set_index("width")) if rows else xr.Dataset()
    ds.attrs.update(form="lr_annealing: L = L₀ + A·S₁^(−α) − C·S₂ (Tissue et al. 2024)",
                    decay_factor=0.999, fitted_on="every horizon of the width but the longest",
                    objective="log-Huber δ = 1e-3, summed; 54-start grid; L-BFGS-B",
                    points="validation loss at log-spaced steps after 20 % of training (the Tissue law has no term for the initial plateau)")
    return ds
