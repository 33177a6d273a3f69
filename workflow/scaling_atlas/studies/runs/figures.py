"""The runs study's figures: observed against predicted with the residuals, and the runs with
the fitted compute-optimal frontier and the requested predictions."""

from __future__ import annotations

import numpy as np


def _fit_of(fits):
    from scaling_atlas.laws import LawFit

    return LawFit.from_dataset(fits["law"].to_dataset())


def draw_fit(study, cube, fits):
    law = fits["law"].to_dataset()
    points = study.points(cube)
    observed = points["target"].to_numpy(float)
    residuals = law["residual"].values
    from scaling_atlas.laws import Objective

    space = str(law.attrs["objective_space"])
    predicted = Objective(space=space).inverse_transform(
        Objective(space=space).transform(observed) + residuals) if len(residuals) == len(
        observed) else observed
    first = study.form.variables[0]
    from scaling_atlas.figures.laws import fit_figure

    return fit_figure(observed, predicted, residuals, points[first],
                      x_label=f"{first} (column {study.columns().get(first, first)!r})",
                      target=study.settings["target_name"],
                      title=f"{study.settings['law']}: {law.attrs['equation']}", space=space)


def draw_frontier(study, cube, fits):
    from scaling_atlas.figures import new_figure
    from scaling_atlas.laws import optimal_allocation

    fit = _fit_of(fits)
    points = study.points(cube)
    fig, axes = new_figure()
    ax = axes[0][0]
    scatter = ax.scatter(points["C"], points["target"], c=np.log10(points["N"]), s=14,
                         cmap="viridis")
    fig.colorbar(scatter, ax=ax, label="log10 N")
    p = fit.natural_
    flops = np.geomspace(points["C"].min() / 3, points["C"].max() * 30, 100)
    if "predictions" in fits and "C" in fits["predictions"]:
        flops = np.geomspace(flops[0], max(flops[-1], float(fits["predictions"]["C"].max()) * 3), 100)
    beta = p.get("beta", p["alpha"])
    n_opt, d_opt, _ = optimal_allocation(p["A"], p["B"], p["alpha"], beta, flops)
    frontier = p["E"] + p["A"] / n_opt ** p["alpha"] + p["B"] / d_opt ** beta
    ax.plot(flops, frontier, color="k", lw=1.2, label="fitted frontier L*(C)")
    if "predictions" in fits:
        pred = fits["predictions"].to_dataset()
        if "C" in pred:
            ax.errorbar(pred["C"], pred["prediction"],
                        yerr=[pred["prediction"] - pred["low"], pred["high"] - pred["prediction"]],
                        fmt="s", color="C3", capsize=3,
                        label=f"prediction, {int(round(100 * pred.attrs['level']))} % interval")
    ax.set(xscale="log", yscale="log", xlabel="compute C [FLOP]",
           ylabel=study.settings["target_name"], title=f"{study.name}: runs and the fitted frontier")
    ax.legend(fontsize=7)
    return fig


FIGURES = {
    "fit": ("Observed against predicted target (the dashed line is equality) and the "
            "residuals in the fit's space, for the law fitted to {data}.", draw_fit),
    "frontier": ("Each run's target against its compute C (colour: N), the fitted "
                 "compute-optimal frontier L*(C), and the requested predictions with their "
                 "intervals (parameter bootstrap + residual scatter).", draw_frontier),
}
