"""The compute-optimal study's figures: IsoFLOP profiles, the frontier N*(C), the loss surface
and the LR-annealing law's curve fits."""

from __future__ import annotations

import math

import numpy as np

from scaling_atlas.figures import new_panel
from scaling_atlas.studies.compute_optimal.lr_annealing import annealing_points


def draw_isoflop_curves(study, cube, fits):
    fig, ax = new_panel(width=5.4, height=4.0)
    iso = fits["approach2"].to_dataset()
    loss = cube["final_val_loss"].mean("seed")
    for i, budget in enumerate(cube["budget"].values):
        n = cube["n_params"].sel(budget=budget).isel(seed=0).values
        y = loss.sel(budget=budget).values
        keep = np.isfinite(y)
        ax.plot(n[keep], y[keep], "o", color=f"C{i}", label=f"C = {budget:.1e}")
        if keep.sum() >= 3:
            coef = np.polyfit(np.log(n[keep]), y[keep], 2)
            x = np.geomspace(n[keep].min(), n[keep].max(), 50)
            ax.plot(x, np.polyval(coef, np.log(x)), "-", color=f"C{i}", lw=1)
        opt = iso.sel(budget=budget)
        if np.isfinite(float(opt["n_opt"])):
            ax.plot(float(opt["n_opt"]), float(opt["loss_opt"]), "*", ms=12, color=f"C{i}",
                    mec="k", alpha=1.0 if bool(opt["used"]) else 0.3)
    ax.set(xscale="log", xlabel="parameters N", ylabel="final validation loss (nats/token)",
           title="IsoFLOP profiles (★ minimum; faded: on the edge)")
    ax.legend(fontsize=7)
    return fig


def draw_frontier(study, cube, fits):
    fig, ax = new_panel(width=5.4, height=4.0)
    a3 = fits["approach3"].to_dataset()
    f = a3["frontier_flops"].values
    ax.fill_between(f, a3["frontier_n_low"], a3["frontier_n_high"], color="C2", alpha=0.2,
                    label="Approach 3: 95 % bootstrap band")
    ax.plot(f, a3["frontier_n_opt"], "C2-", label=f"Approach 3 (a = {a3.attrs['a']:.2f})")
    a1 = fits["approach1"].to_dataset()
    ax.plot(a1["envelope_flops"], a1["n_opt"], "C0.", label=f"Approach 1 (a = {a1.attrs['a']:.2f})")
    a2 = fits["approach2"].to_dataset()
    used = a2["used"].values.astype(bool)
    ax.plot(a2["budget"].values[used], a2["n_opt"].values[used], "C1s",
            label=f"Approach 2 (a = {a2.attrs.get('a', math.nan):.2f})")
    mid = float(np.sqrt(f[0] * f[-1]))
    ref = float(np.interp(np.log(mid), np.log(f), a3["frontier_n_opt"].values))
    ax.plot(f, ref * (f / mid) ** 0.5, "k--", lw=1, label="slope 0.5 (Hoffmann)")
    ax.set(xscale="log", yscale="log", xlabel="compute C (FLOP)", ylabel="N_opt",
           title="compute-optimal model size")
    ax.legend(fontsize=7)
    return fig


def draw_loss_surface(study, cube, fits):
    fig, ax = new_panel(width=5.4, height=4.2)
    pts = study.final_points(cube)
    sc = ax.scatter(pts["N"], pts["D"], c=pts["loss"], cmap="viridis", s=30, edgecolor="k", lw=0.3)
    fig.colorbar(sc, ax=ax, label="final validation loss")
    a3 = fits["approach3"].to_dataset()
    est = dict(zip(a3["parameter"].values, a3["estimate"].values))
    n = np.geomspace(pts["N"].min() / 2, pts["N"].max() * 2, 80)
    d = np.geomspace(pts["D"].min() / 2, pts["D"].max() * 2, 80)
    NN, DD = np.meshgrid(n, d)
    LL = est["E"] + est["A"] / NN ** est["alpha"] + est["B"] / DD ** est["beta"]
    cs = ax.contour(NN, DD, LL, levels=8, colors="0.4", linewidths=0.7)
    ax.clabel(cs, fontsize=6)
    f = a3["frontier_flops"].values
    nopt = a3["frontier_n_opt"].values
    ax.plot(nopt, f / (6 * nopt), "r-", label="compute-optimal frontier (Approach 3)")
    ax.set(xscale="log", yscale="log", xlabel="parameters N", ylabel="tokens D",
           title="L(N, D) = E + A/N^α + B/D^β")
    ax.legend(fontsize=7)
    return fig


def draw_curve_fits(study, cube, fits):
    fig, ax = new_panel(width=5.4, height=4.0)
    lr = fits["lr_annealing"].to_dataset()
    widths = [w for w in cube["width"].values if "width" in lr.coords and w in lr["width"].values]
    for i, width in enumerate(widths):
        p = lr.sel(width=width)
        for budget in cube["budget"].values:  # every observed point, plateau included
            run = cube.sel(width=width, budget=budget).isel(seed=0)
            ax.plot(run["curve_tokens"], run["curve_val_loss"], ".", color=f"C{i}", ms=3)
        curves = annealing_points(cube, width, study.settings)
        longest = max(c["horizon"].iloc[0] for c in curves)
        for j, c in enumerate(curves):
            pred = float(p["L0"]) + float(p["A"]) * c["S1"] ** -float(p["alpha"]) - float(p["C"]) * c["S2"]
            held = c["horizon"].iloc[0] == longest
            ax.plot(c["tokens"], pred, "--" if held else "-", color=f"C{i}", lw=1,
                    label=f"d = {width}" if j == 0 else None)
    observed = cube["curve_val_loss"].values
    ax.set(xscale="log", xlabel="training tokens", ylabel="validation loss (nats/token)",
           ylim=(np.nanmin(observed) - 0.1, np.nanmax(observed) + 0.1),
           title="loss curves and the LR-annealing law")
    ax.legend(fontsize=7)
    return fig


FIGURES = {
    "isoflop_curves": ("IsoFLOP profiles: final validation loss against N for each compute "
                       "budget, the parabola in ln N per budget and its minimum (Approach 2).",
                       draw_isoflop_curves),
    "frontier": ("Compute-optimal N*(C) by Approach 1 (envelope), 2 (IsoFLOP minima) and 3 "
                 "(parametric fit, with its 95 % bootstrap band); dashed: slope 0.5 (Hoffmann).",
                 draw_frontier),
    "loss_surface": ("Final loss of every run in the (N, D) plane with the iso-loss contours "
                     "of the Approach-3 fit and its compute-optimal frontier.", draw_loss_surface),
    "curve_fits": ("Validation-loss curves of each width (dots, one curve per horizon) and the "
                   "LR-annealing law fitted from 20 % of each run on (lines; dashed: the "
                   "held-out longest horizon). Every run first stalls near the unigram "
                   "entropy before it learns the grammar's structure.", draw_curve_fits),
}
